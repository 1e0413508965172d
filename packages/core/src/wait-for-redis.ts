/**
 * A worker's start-up connection, as Celery's consumer does it: until the broker
 * (and a Redis result backend) answer, print
 * `Cannot connect to redis://...: Connection refused. Trying again in 2.00 seconds... (1/100)`
 * and wait 2, 4, 6 ... up to 30 s between tries (kombu's `ensure_connection`),
 * at most `brokerConnectionMaxRetries` times. A wrong password, a database out of
 * range, a TLS certificate problem or a cluster node is not retried: it throws at
 * once with the reason and the fix.
 */
import type { Logger } from './logger.js';
import { resolveRedisConnection } from './redis-connection.js';
import { probeRedis, RedisConnectError } from './redis-probe.js';

/** How to wait (from the app's settings). */
export interface WaitForRedisOptions {
  /** `brokerConnectionRetry`. */
  retry: boolean;
  /** `brokerConnectionMaxRetries`; 0 or null = forever. */
  maxRetries: number | null;
  /** `brokerConnectionTimeout`, in ms: one attempt's limit. */
  timeoutMs: number;
  log: Logger;
}

/** kombu's `ensure_connection` sleep before retry `n` (1-based): 2, 4, 6 ... 30 s. */
export function startupRetryInterval(n: number): number {
  return Math.min(2 * n, 30);
}

/**
 * Resolve once the Redis server at `url` accepts our login and database (other
 * schemes: at once). Throws a `RedisConnectError` when it is not retryable or the
 * retries run out.
 */
export async function waitForRedis(
  url: string,
  redisOptions: Record<string, unknown> | undefined,
  options: WaitForRedisOptions,
  /** The whole transport options: `master_name` and `sentinel_kwargs` for `sentinel://` URLs. */
  transportOptions: Record<string, unknown> = {},
): Promise<void> {
  const scheme = url.split(':', 1)[0]!.toLowerCase();
  if (scheme !== 'redis' && scheme !== 'rediss' && scheme !== 'sentinel') return;
  const settings = resolveRedisConnection(url, redisOptions, transportOptions);
  const max = options.maxRetries && options.maxRetries > 0 ? Math.trunc(options.maxRetries) : Infinity;
  for (let retry = 1; ; retry++) {
    try {
      await probeRedis(settings, options.timeoutMs);
      return;
    } catch (err) {
      if (!(err instanceof RedisConnectError) || !err.retryable) throw err;
      if (!options.retry) throw new RedisConnectError(err.displayUrl, err.reason, false, 'Not retrying: brokerConnectionRetry is false.');
      if (retry > max) {
        throw new RedisConnectError(err.displayUrl, err.reason, false, `Gave up after ${max} retries (brokerConnectionMaxRetries); start Redis or fix the URL.`);
      }
      const seconds = startupRetryInterval(retry);
      options.log.error(
        { url: settings.displayUrl, reason: err.reason, retry, maxRetries: max === Infinity ? null : max },
        `Cannot connect to ${settings.displayUrl}: ${err.reason}. Trying again in ${seconds.toFixed(2)} seconds... (${retry}/${max === Infinity ? 'inf' : max})`,
      );
      await new Promise((r) => setTimeout(r, seconds * 1000));
    }
  }
}
