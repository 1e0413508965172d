import { ConfigurationError } from '../errors.js';
import { maskUrl } from '../mask-url.js';
import type { ConnectionEvents } from '../redis-client.js';
import type { WaitForRedisOptions } from '../wait-for-redis.js';
import type { Broker } from './broker.js';
import { MemoryBroker } from './memory.js';
import type { BrokerRouting } from './queue-topology.js';

/** Options passed from settings to whichever transport the URL selects. */
export interface BrokerFactoryOptions {
  /** `broker_transport_options`. */
  transportOptions?: Record<string, unknown>;
  /** Where connection outages are reported (one line down, one on recovery). */
  connectionEvents?: ConnectionEvents;
  /** Queues, exchanges and bindings from the settings (`routingFromSettings`), for transports that declare them. */
  routing?: BrokerRouting;
}

/**
 * Pick a transport by URL scheme: `memory://`, `redis://`, `rediss://`, `sentinel://`
 * (Redis Sentinel: a `;` list of sentinels plus the `masterName` transport option),
 * `amqp://`, `amqps://`, `pyamqp://` (a `;` list for failover).
 */
export async function createBroker(url: string, options: BrokerFactoryOptions = {}): Promise<Broker> {
  const scheme = url.split(':', 1)[0]!.toLowerCase();
  switch (scheme) {
    case 'memory':
      return new MemoryBroker(url, options.routing);
    case 'redis':
    case 'rediss':
    case 'sentinel': {
      const { RedisBroker } = await import('./redis.js');
      return new RedisBroker(url, { ...options.transportOptions, routing: options.routing, connectionEvents: options.connectionEvents });
    }
    case 'amqp':
    case 'amqps':
    case 'pyamqp': {
      const { AmqpBroker } = await import('./amqp.js');
      return new AmqpBroker(url, { ...options.transportOptions, routing: options.routing, connectionEvents: options.connectionEvents });
    }
    default:
      throw new ConfigurationError(`Unknown broker URL scheme "${scheme}" in ${JSON.stringify(maskUrl(url))}: use memory://, redis://, rediss://, sentinel://, amqp://, amqps:// or pyamqp://.`);
  }
}

/**
 * Resolve once the broker at `url` answers, retrying like Celery's start-up
 * (`Cannot connect to ...: Trying again in 2.00 seconds...`): Redis (wait-for-redis.ts)
 * and RabbitMQ (amqp-wait.ts); transports without a server (memory://) resolve at once. Throws when the retries run out or the error
 * cannot be fixed by waiting (wrong password, TLS problem...).
 */
export async function waitForBroker(url: string, transportOptions: Record<string, unknown>, wait: WaitForRedisOptions): Promise<void> {
  const scheme = url.split(':', 1)[0]!.toLowerCase();
  if (scheme === 'amqp' || scheme === 'amqps' || scheme === 'pyamqp') {
    const { waitForAmqp } = await import('./amqp-wait.js');
    return waitForAmqp(url, transportOptions, wait);
  }
  if (scheme !== 'redis' && scheme !== 'rediss' && scheme !== 'sentinel') return;
  const { waitForRedis } = await import('../wait-for-redis.js');
  await waitForRedis(url, transportOptions.redis as Record<string, unknown> | undefined, wait, transportOptions);
}
