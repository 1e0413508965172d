import { ConfigurationError } from '../errors.js';
import { maskUrl } from '../mask-url.js';
import type { ConnectionEvents } from '../redis-client.js';
import type { WaitForRedisOptions } from '../wait-for-redis.js';
import type { Broker } from '../brokers/broker.js';
import type { ResultBackend } from './backend.js';
import { MemoryBackend } from './memory.js';

/** What `createBackend` needs besides the URL. */
export interface BackendFactoryOptions {
  /** `result_expires`, seconds. */
  resultExpires: number;
  transportOptions?: Record<string, unknown>;
  connectionEvents?: ConnectionEvents;
  /** rpc://: the app's producer broker (results travel over it). */
  broker?: () => Promise<Broker>;
  /** rpc://: this process's reply queue (`app.oid`). */
  replyTo?: string;
  /** rpc://: `result_persistent`. */
  persistent?: boolean;
  /** `result_serializer`. */
  serializer?: string;
  /** `result_accept_content`. */
  accept?: readonly string[];
}

/** Pick a result backend by URL scheme: `memory://`, `redis://`, `rediss://`, `sentinel://` (with `masterName`), `rpc://`. */
export async function createBackend(url: string, options: BackendFactoryOptions): Promise<ResultBackend> {
  const scheme = url.split(':', 1)[0]!.toLowerCase();
  switch (scheme) {
    case 'memory':
      return new MemoryBackend(url);
    case 'redis':
    case 'rediss':
    case 'sentinel': {
      const { RedisBackend } = await import('./redis.js');
      return new RedisBackend(url, {
        ...options.transportOptions,
        resultExpires: options.resultExpires,
        connectionEvents: options.connectionEvents,
        serializer: options.serializer,
        accept: options.accept,
      });
    }
    case 'rpc': {
      if (!options.broker || !options.replyTo) {
        throw new ConfigurationError('The rpc:// result backend travels over the app\'s broker connection: set resultBackend: "rpc://" on an app (createApp) with an amqp:// broker.');
      }
      const { RpcBackend } = await import('./rpc.js');
      return new RpcBackend({ broker: options.broker, replyTo: options.replyTo, resultExpires: options.resultExpires, persistent: options.persistent });
    }
    default:
      throw new ConfigurationError(`Unknown result backend scheme "${scheme}" in ${JSON.stringify(maskUrl(url))}: use memory://, redis://, rediss://, sentinel:// or rpc://.`);
  }
}

/**
 * Resolve once the result backend at `url` answers (see `waitForBroker`); backends
 * without a server (memory://) resolve at once.
 */
export async function waitForBackend(url: string, transportOptions: Record<string, unknown>, wait: WaitForRedisOptions): Promise<void> {
  const scheme = url.split(':', 1)[0]!.toLowerCase();
  if (scheme !== 'redis' && scheme !== 'rediss' && scheme !== 'sentinel') return;
  const { waitForRedis } = await import('../wait-for-redis.js');
  await waitForRedis(url, transportOptions.redis as Record<string, unknown> | undefined, wait, transportOptions);
}
