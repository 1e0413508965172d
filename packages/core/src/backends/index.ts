import { ConfigurationError } from '../errors.js';
import { maskUrl } from '../mask-url.js';
import type { ConnectionEvents } from '../redis-client.js';
import type { WaitForRedisOptions } from '../wait-for-redis.js';
import type { ResultBackend } from './backend.js';
import { MemoryBackend } from './memory.js';

/** Pick a result backend by URL scheme: `memory://`, `redis://`, `rediss://`. */
export async function createBackend(
  url: string,
  options: { resultExpires: number; transportOptions?: Record<string, unknown>; connectionEvents?: ConnectionEvents; serializer?: string; accept?: readonly string[] },
): Promise<ResultBackend> {
  const scheme = url.split(':', 1)[0]!.toLowerCase();
  switch (scheme) {
    case 'memory':
      return new MemoryBackend(url);
    case 'redis':
    case 'rediss': {
      const { RedisBackend } = await import('./redis.js');
      return new RedisBackend(url, {
        ...options.transportOptions,
        resultExpires: options.resultExpires,
        connectionEvents: options.connectionEvents,
        serializer: options.serializer,
        accept: options.accept,
      });
    }
    case 'rpc':
      throw new ConfigurationError('The rpc:// result backend arrives with the RabbitMQ transport (roadmap step 2); use redis:// for now.');
    default:
      throw new ConfigurationError(`Unknown result backend scheme "${scheme}" in ${JSON.stringify(maskUrl(url))}: use memory://, redis:// or rediss://.`);
  }
}

/**
 * Resolve once the result backend at `url` answers (see `waitForBroker`); backends
 * without a server (memory://) resolve at once.
 */
export async function waitForBackend(url: string, transportOptions: Record<string, unknown>, wait: WaitForRedisOptions): Promise<void> {
  const scheme = url.split(':', 1)[0]!.toLowerCase();
  if (scheme !== 'redis' && scheme !== 'rediss') return;
  const { waitForRedis } = await import('../wait-for-redis.js');
  await waitForRedis(url, transportOptions.redis as Record<string, unknown> | undefined, wait);
}
