/**
 * Celery's publish retry (`apply_async(retry=True, retry_policy=...)`): while the
 * broker is unreachable, retry the publish per the policy, then fail with
 * `BrokerUnavailable` naming the masked URL, instead of waiting on the client's
 * own reconnect loop. A publish is only sent on a live connection, so a failed
 * call does not leave a message queued to go out later.
 */
import type { Broker } from './brokers/broker.js';
import type { RetryPolicy } from './config.js';
import { BrokerUnavailable } from './errors.js';
import { describeRedisError, isConnectionError } from './redis-connection.js';

/** What `publishWithRetry` needs besides the publish itself. */
export interface PublishRetryOptions {
  broker: Broker;
  /** Masked broker URL, for the error. */
  displayUrl: string;
  /** Retry at all (Celery's `retry`). */
  retry: boolean;
  policy: RetryPolicy;
  /** How long the first attempt waits for a connection being opened (ms). */
  connectTimeoutMs: number;
  /** The last connection error seen (for the message), if known. */
  lastError?: () => string | undefined;
  /** What the error says was tried, before the URL. Default `publish to`. */
  action?: string;
}

/** Seconds to sleep before retry number `retry` (0-based), as kombu's `retry_over_time`. */
export function retryInterval(policy: RetryPolicy, retry: number): number {
  return Math.min(policy.intervalStart + policy.intervalStep * retry, policy.intervalMax);
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

async function connectedWithin(broker: Broker, ms: number): Promise<boolean> {
  if (!broker.whenConnected) return true;
  const deadline = Date.now() + ms;
  for (let round = 0; round < 1000; round++) {
    if (await broker.whenConnected(Math.max(0, deadline - Date.now()))) return true;
    const left = deadline - Date.now();
    if (left <= 0) return false;
    await sleep(Math.min(left, 25)); // an error came first: the client reconnects on its own
  }
  return false;
}

/**
 * Run `publish` (or any other broker operation) on a live connection, retrying per
 * the policy; throws `BrokerUnavailable` when it runs out.
 */
export async function publishWithRetry<T>(publish: () => Promise<T>, options: PublishRetryOptions): Promise<T> {
  const { broker, policy } = options;
  const retries = options.retry ? Math.trunc(policy.maxRetries) : 0;
  const started = Date.now();
  let reason = 'not connected';
  for (let attempt = 0; attempt <= retries; attempt++) {
    // First attempt: wait for the connection's first outcome; then the policy's sleeps.
    const connected =
      attempt === 0 ? !broker.whenConnected || (await broker.whenConnected(options.connectTimeoutMs)) : await connectedWithin(broker, retryInterval(policy, attempt - 1) * 1000);
    if (connected) {
      try {
        return await publish();
      } catch (err) {
        if (!isConnectionError(err)) throw err;
        reason = describeRedisError(err);
      }
    }
  }
  if (reason === 'not connected') reason = options.lastError?.() ?? reason;
  const seconds = ((Date.now() - started) / 1000).toFixed(2);
  throw new BrokerUnavailable(
    `Cannot ${options.action ?? 'publish to'} ${options.displayUrl}: the broker is unreachable (${reason}); gave up after ${retries + 1} attempt(s) in ${seconds} s ` +
      `(retryPolicy ${JSON.stringify(policy)}). Check that the broker is running, or raise retryPolicy/taskPublishRetryPolicy.maxRetries.`,
    options.displayUrl,
    retries + 1,
  );
}
