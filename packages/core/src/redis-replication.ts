/**
 * Waiting for Redis replication (`WAIT numreplicas timeout`) after a write, so a
 * write a caller was told succeeded survives a Sentinel failover.
 *
 * Redis replicates asynchronously: the master acknowledges a write before any
 * replica has it, and a failover promotes a replica, so a write the old master
 * acknowledged can be gone on the new one. `WAIT n t` returns once `n` replicas
 * acknowledged every write made *earlier on the same connection* (or after `t`
 * ms, with how many did). Sentinel promotes the replica with the most data among
 * those it can reach, so a write on `n ≥ 1` replicas is on the one promoted unless
 * that replica is lost too.
 *
 * Options (`broker_transport_options`, `result_backend_transport_options`):
 * - `waitForReplicas` (`wait_for_replicas`): replicas that must have a publish /
 *   stored result before it resolves. Default 1 with a `sentinel://` URL, 0 (off)
 *   with `redis://`.
 * - `waitForReplicasTimeoutMs` (`wait_for_replicas_timeout_ms`): how long to wait.
 *   Default 1000. When fewer replicas answer in time the write is reported failed
 *   (`ReplicationWaitError`): it is on the master and may still be delivered, so a
 *   producer's retry can make a duplicate (at-least-once), never a loss.
 */
import type { Redis } from 'ioredis';
import { CeleriacError, ConfigurationError } from './errors.js';

/** How many replicas must acknowledge a write, and for how long to wait. */
export interface ReplicaWait {
  replicas: number;
  timeoutMs: number;
}

/** A write the master took but fewer replicas than asked acknowledged in time: it may not survive a failover. */
export class ReplicationWaitError extends CeleriacError {
  override name = 'ReplicationWaitError';
}

/**
 * The replica wait the transport options ask for, or null (off). `sentinel`: the
 * URL is `sentinel://` (then on by default).
 */
export function replicaWaitFrom(options: Record<string, unknown>, sentinel: boolean, displayUrl: string): ReplicaWait | null {
  const replicas = options.waitForReplicas ?? options.wait_for_replicas ?? (sentinel ? 1 : 0);
  const timeoutMs = options.waitForReplicasTimeoutMs ?? options.wait_for_replicas_timeout_ms ?? 1000;
  if (typeof replicas !== 'number' || !Number.isInteger(replicas) || replicas < 0) {
    throw new ConfigurationError(`waitForReplicas for ${displayUrl} must be a whole number of replicas ≥ 0 (0 = do not wait), got ${JSON.stringify(replicas)}.`);
  }
  if (typeof timeoutMs !== 'number' || !Number.isInteger(timeoutMs) || timeoutMs <= 0) {
    throw new ConfigurationError(`waitForReplicasTimeoutMs for ${displayUrl} must be a whole number of milliseconds > 0, got ${JSON.stringify(timeoutMs)}.`);
  }
  return replicas === 0 ? null : { replicas, timeoutMs };
}

/**
 * `WAIT` after writes that have completed: calls made while the same connection is
 * up and no WAIT has been sent yet share one WAIT (it covers every earlier command
 * on the connection), so a burst of publishes costs one replication round trip.
 *
 * Called only once the write's reply arrived (a script's NOSCRIPT fallback sends
 * the real write later than the first call). A WAIT counts only on the connection
 * that carried the write: if the client reconnected in between (a failover), or
 * ioredis re-sent the WAIT on a new connection, it proves nothing and the write is
 * reported failed.
 */
export class ReplicationBarrier {
  private scheduled: { stream: unknown; done: Promise<void> } | null = null;

  constructor(
    private readonly redis: Redis,
    private readonly wait: ReplicaWait,
    private readonly displayUrl: string,
  ) {}

  /**
   * Resolves once the writes completed on the client so far are on `replicas`
   * replicas; rejects with `ReplicationWaitError` when fewer acknowledged in time or
   * the connection changed, or with the connection's error.
   */
  afterWrites(): Promise<void> {
    const stream = this.redis.stream as unknown;
    if (this.redis.status !== 'ready') return Promise.reject(this.failed('the connection was lost before the replicas acknowledged the write'));
    if (this.scheduled && this.scheduled.stream === stream) return this.scheduled.done;
    const entry = { stream, done: Promise.resolve() };
    entry.done = Promise.resolve().then(() => {
      if (this.scheduled === entry) this.scheduled = null;
      return this.redis.wait(this.wait.replicas, this.wait.timeoutMs).then((acked) => {
        if ((this.redis.stream as unknown) !== stream) throw this.failed('the connection changed before the replicas acknowledged the write');
        if (acked < this.wait.replicas) throw this.failed(`${acked} of ${this.wait.replicas} replica(s) acknowledged it within ${this.wait.timeoutMs} ms (WAIT)`);
      });
    });
    this.scheduled = entry;
    return entry.done;
  }

  private failed(why: string): ReplicationWaitError {
    return new ReplicationWaitError(
      `${this.displayUrl}: the write reached the master but ${why}, so a failover could lose it. Retrying is safe (at-least-once). ` +
        'If replicas are down for good, lower waitForReplicas (0 = do not wait) or raise waitForReplicasTimeoutMs.',
    );
  }
}
