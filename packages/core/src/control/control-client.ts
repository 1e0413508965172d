/**
 * `app.control`: remote control of the workers (Celery's `app.control`), Python and
 * Celeriac alike, over the broker's pidbox.
 *
 * ```ts
 * await app.control.ping({ timeout: 1_000 });             // [{ 'celery@host': { ok: 'pong' } }]
 * await app.control.inspect().active();                   // { 'celery@host': [RequestInfo, ...] } or null
 * await app.control.revoke(taskId);                       // broadcast, no reply
 * ```
 */
import { randomUUID } from 'node:crypto';
import type { Celeriac } from '../app.js';
import type { ControlChannel } from '../brokers/broker.js';
import { ConfigurationError } from '../errors.js';
import { clockOf } from './lamport-clock.js';
import { REVOKE_EXPIRES_SECONDS } from './revoked-set.js';
import { decodeControlReply, encodeControlRequest, PIDBOX_EXCHANGE, REPLY_EXCHANGE } from './pidbox-message.js';

/** Which workers a command is for and how long to wait for replies. */
export interface ControlOptions {
  /** Node names (e.g. `['celery@host1']`); default every worker. */
  destination?: string[];
  /** Node-name pattern (with `matcher`), when no destination is given. */
  pattern?: string;
  /** How `pattern` matches: `glob` (default) or `pcre`. */
  matcher?: 'glob' | 'pcre';
  /** Milliseconds to wait for replies. Default 1,000 (Celery's 1.0 s). */
  timeout?: number;
  /** Stop after this many replies. Default: the number of destinations, else unlimited. */
  limit?: number;
}

/** Replies, one object per answering worker: `{ '<node>': reply }` (Celery's list form). */
export type ControlReplies = Record<string, unknown>[];

/** Celery's `app.control`. */
export class Control {
  private channel: Promise<ControlChannel> | undefined;

  constructor(private readonly app: Celeriac) {}

  private getChannel(): Promise<ControlChannel> {
    return (this.channel ??= this.openChannel().catch((err: unknown) => {
      this.channel = undefined;
      throw err;
    }));
  }

  private async openChannel(): Promise<ControlChannel> {
    const broker = await this.app.getBroker();
    if (!broker.openControlChannel) {
      throw new ConfigurationError(`The broker ${broker.displayUrl} has no broadcast support, so remote control is not available on it; use a redis://, amqp:// or memory:// broker.`);
    }
    return broker.openControlChannel();
  }

  /**
   * Send `command` to the workers. With `reply: true`, resolves with the replies
   * received within `timeout` (or up to `limit`); otherwise once sent, with `[]`.
   */
  async broadcast(command: string, options: ControlOptions & { arguments?: Record<string, unknown>; reply?: boolean } = {}): Promise<ControlReplies> {
    const channel = await this.getChannel();
    const timeoutMs = options.timeout ?? 1_000;
    const clock = clockOf(this.app);
    const base = {
      method: command,
      arguments: options.arguments ?? {},
      destination: options.destination?.length ? options.destination : null,
      pattern: options.pattern ?? null,
      matcher: options.pattern ? (options.matcher ?? null) : null,
      expires: timeoutMs > 0 ? (Date.now() + timeoutMs) / 1000 : 0,
    };
    if (!options.reply) {
      await channel.publishFanout(PIDBOX_EXCHANGE, encodeControlRequest({ ...base, clock: clock.forward() }));
      return [];
    }
    const oid = randomUUID();
    const ticket = randomUUID();
    const queue = await channel.openReplyQueue(REPLY_EXCHANGE, oid);
    try {
      await channel.publishFanout(PIDBOX_EXCHANGE, encodeControlRequest({ ...base, ticket, replyTo: { exchange: REPLY_EXCHANGE, routingKey: oid }, clock: clock.forward() }));
      const limit = options.limit ?? (options.destination?.length || Infinity);
      const deadline = Date.now() + timeoutMs;
      const replies: ControlReplies = [];
      while (replies.length < limit) {
        const left = deadline - Date.now();
        if (left <= 0) break;
        const message = await queue.next(Math.min(left, 1_000));
        if (!message) continue;
        const reply = decodeControlReply(message);
        if (!reply || reply.ticket !== ticket) continue;
        clock.adjust((message.headers as Record<string, unknown>).clock);
        replies.push(reply.replies);
      }
      return replies;
    } finally {
      await queue.close().catch(() => undefined);
    }
  }

  /** `inspect` commands for the given workers. */
  inspect(options: ControlOptions = {}): Inspect {
    return new Inspect(this, options);
  }

  /** Ping the workers: `[{ '<node>': { ok: 'pong' } }, ...]`. */
  ping(options: ControlOptions = {}): Promise<ControlReplies> {
    return this.broadcast('ping', { ...options, reply: true });
  }

  /**
   * Revoke tasks: every worker discards them when they arrive (state REVOKED);
   * with `terminate`, running ones are stopped where the pool can stop them.
   */
  async revoke(taskIds: string | string[], options: ControlOptions & { terminate?: boolean; signal?: string; reply?: boolean } = {}): Promise<ControlReplies> {
    const ids = Array.isArray(taskIds) ? taskIds : [taskIds];
    // Kept in the broker too (beyond Celery): a worker offline now learns it when it starts.
    const channel = await this.getChannel();
    await channel.persistRevoked?.(ids, Date.now() + REVOKE_EXPIRES_SECONDS * 1000);
    return this.broadcast('revoke', {
      ...options,
      arguments: { task_id: ids.length === 1 ? ids[0] : ids, terminate: options.terminate ?? false, signal: options.signal ?? 'SIGTERM' },
    });
  }

  /**
   * Celery's `add_consumer`: the workers start consuming `queue` (declared as
   * `taskQueues` says, else from `exchange` / `exchangeType` / `routingKey`).
   * With `reply: true`, resolves with `[{ '<node>': { ok: 'add consumer <queue>' } }]`.
   */
  addConsumer(
    queue: string,
    options: ControlOptions & { exchange?: string; exchangeType?: 'direct' | 'topic' | 'fanout'; routingKey?: string; queueArguments?: Record<string, unknown>; reply?: boolean } = {},
  ): Promise<ControlReplies> {
    const args: Record<string, unknown> = { queue, exchange: options.exchange ?? null, exchange_type: options.exchangeType ?? 'direct', routing_key: options.routingKey ?? null };
    if (options.queueArguments) args.queue_arguments = options.queueArguments;
    return this.broadcast('add_consumer', { ...options, arguments: args });
  }

  /** Celery's `cancel_consumer`: the workers stop consuming `queue` (`{ ok: 'no longer consuming from <queue>' }`). */
  cancelConsumer(queue: string, options: ControlOptions & { reply?: boolean } = {}): Promise<ControlReplies> {
    return this.broadcast('cancel_consumer', { ...options, arguments: { queue } });
  }

  /** Ask the workers to shut down (warm). */
  shutdown(options: ControlOptions = {}): Promise<ControlReplies> {
    return this.broadcast('shutdown', options);
  }

  /** Close the control connections (the app's `close()` does it too). */
  async close(): Promise<void> {
    const channel = this.channel;
    this.channel = undefined;
    if (channel) await (await channel.catch(() => undefined))?.close();
  }
}

/** Merge `[{a: x}, {b: y}]` into `{a: x, b: y}`; null when nobody answered (Celery's `_prepare`). */
function byNode(replies: ControlReplies): Record<string, unknown> | null {
  if (replies.length === 0) return null;
  return Object.assign({}, ...replies) as Record<string, unknown>;
}

/** Celery's `app.control.inspect()`: each method resolves with `{ node: reply }`, or null when no worker answered. */
export class Inspect {
  constructor(
    private readonly control: Control,
    private readonly options: ControlOptions,
  ) {}

  private async request(method: string, args: Record<string, unknown> = {}): Promise<Record<string, unknown> | null> {
    return byNode(await this.control.broadcast(method, { ...this.options, arguments: args, reply: true }));
  }

  ping() {
    return this.request('ping');
  }
  stats() {
    return this.request('stats');
  }
  active(safe = false) {
    return this.request('active', { safe });
  }
  reserved() {
    return this.request('reserved');
  }
  scheduled() {
    return this.request('scheduled');
  }
  revoked() {
    return this.request('revoked');
  }
  /** Registered task names; with Celery attribute names (`registered('name', 'rate_limit')`) each line adds ` [attr=value ...]` for those that are set. */
  registered(...taskinfoitems: string[]) {
    return this.request('registered', taskinfoitems.length ? { taskinfoitems } : {});
  }
  activeQueues() {
    return this.request('active_queues');
  }
  conf(withDefaults = false) {
    return this.request('conf', { with_defaults: withDefaults });
  }
  report() {
    return this.request('report');
  }
  queryTask(ids: string | string[]) {
    return this.request('query_task', { ids: Array.isArray(ids) ? ids : [ids] });
  }
  clock() {
    return this.request('clock');
  }
}
