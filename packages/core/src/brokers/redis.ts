/**
 * Redis transport — kombu 5.2's Redis layout, so Python Celery producers and workers
 * share queues with Celeriac.
 *
 * Features: priorities (kombu buckets 0/3/6/9, 0 first), acks with kombu's unacked
 * hash, requeue, kombu's visibility-timeout restore, plus what Celeriac adds:
 * atomic reserve (a message is never only in a worker's memory), dead-consumer
 * restore within seconds, and broker-side ETA so far-future messages are not
 * redelivered after the visibility timeout. Needs Redis ≥ 6.2 (BLMOVE, RPOP count),
 * a single node (no cluster).
 *
 * Connection string: `redis://[[user]:password@]host[:port][/db]`, `rediss://...` for
 * TLS (certificates through the `redis` option). The db is the URL path.
 *
 * Options (`RedisBrokerOptions`, also reachable as `broker_transport_options`):
 * `consumerId`, `visibilityTimeout` (s, 3600), `prioritySteps` ([0, 3, 6, 9]),
 * `pollIntervalMs` (200), `restoreVisibleIntervalMs` (30 000), `bindingCacheMs`
 * (5 000), `redis` (extra ioredis options).
 *
 * Keys (kombu's; `\x06\x16` is kombu's separator):
 * - `<queue>`, `<queue>\x06\x163|6|9` — lists of envelopes (see redis-envelope.ts);
 *   producers LPUSH, consumers take from the right.
 * - `_kombu.binding.<exchange>` — set of `<routing key>\x06\x16<pattern>\x06\x16<queue>`.
 * - `unacked` — hash tag → `[<envelope>, "<exchange>", "<routing key>"]`;
 *   `unacked_index` — zset tag → unix seconds of delivery; `unacked_mutex` — lock
 *   of the visibility-timeout restore.
 *
 * Keys Celeriac adds (Python workers ignore them):
 * - `_celeriac.consumers` — zset consumer id → unix ms until which it is alive.
 * - `_celeriac.owned.<consumer>` — set of the tags a consumer holds unacked.
 * - `_celeriac.inflight.<consumer>` — list a blocked consumer BLMOVEs into; drained
 *   into `unacked` right away.
 * - `_celeriac.eta` — zset unacked entry → due unix ms (deferred messages).
 *
 * `heartbeat()` refreshes the consumer's unacked_index scores (so a Python worker's
 * visibility restore never steals from a live Celeriac worker), promotes due deferred
 * messages, restores dead consumers' messages and, every
 * `restoreVisibleIntervalMs`, runs kombu's visibility-timeout restore.
 * Deferred messages are promoted only by Celeriac workers' heartbeats.
 * Named exchanges are resolved as direct exchanges (exact routing-key match).
 */
import { randomUUID } from 'node:crypto';
import { Redis, type RedisOptions } from 'ioredis';
import { ConfigurationError, MessageDecodeError } from '../errors.js';
import { maskUrl } from '../mask-url.js';
import type { TaskMessage } from '../protocol/message.js';
import type { Broker, Delivery, PublishItem, ReserveOptions, Route } from './broker.js';
import { decodeEnvelope, encodeEnvelope, messagePriority } from './redis-envelope.js';
import { CONSUMERS, DEFERRED, inflightKey, ownedKey, UNACKED, UNACKED_INDEX, UNACKED_MUTEX } from './redis-keys.js';
import {
  DEFER_MESSAGE_LUA,
  HEARTBEAT_CONSUMER_LUA,
  PROMOTE_DEFERRED_LUA,
  RESERVE_MESSAGES_LUA,
  RESTORE_DEAD_CONSUMERS_LUA,
  RESTORE_TAGS_LUA,
  RESTORE_VISIBLE_LUA,
  RETIRE_CONSUMER_LUA,
} from './redis-scripts.js';

/** Options of the Redis transport. */
export interface RedisBrokerOptions {
  /** Id of this consumer (owned/inflight keys, heartbeats). Default: a random uuid. */
  consumerId?: string;
  /** kombu `visibility_timeout`: seconds before anyone's unacked message is restored. Default 3600. */
  visibilityTimeout?: number;
  /** kombu `priority_steps`: ascending buckets, the first must be 0. Default [0, 3, 6, 9]. */
  prioritySteps?: number[];
  /** With several lists to watch, the longest single block (ms) before all are checked again. Default 200. */
  pollIntervalMs?: number;
  /** How often (ms) `heartbeat()` also runs kombu's visibility-timeout restore. Default 30 000. */
  restoreVisibleIntervalMs?: number;
  /** How long (ms) the queues bound to a named exchange are cached. Default 5 000. */
  bindingCacheMs?: number;
  /** Extra ioredis options (TLS certificates, timeouts...). */
  redis?: RedisOptions;
  /** Other `broker_transport_options` are accepted and ignored. */
  [option: string]: unknown;
}

const SEP = '\x06\x16';
const PROMOTE_BATCH = 500;
/** Most values in one LPUSH of `publishMany` (keeps each command short for Redis). */
const LPUSH_CHUNK = 1000;
const DEAD_BATCH = 1000;
/** A dead consumer stays listed (and re-checked) this long after its last heartbeat. */
const DEAD_RETENTION_MS = 3_600_000;
/** After a priority message is seen on a queue, watch its priority lists this long. */
const PRIORITY_WATCH_MS = 600_000;

type ScriptName = 'reserveMessages' | 'restoreTags' | 'deferMessage' | 'heartbeatConsumer' | 'promoteDeferred' | 'restoreDeadConsumers' | 'retireConsumer' | 'restoreVisible';
type ScriptCall = (...args: (string | number)[]) => Promise<unknown>;

const SCRIPTS: Record<ScriptName, { lua: string; numberOfKeys?: number }> = {
  reserveMessages: { lua: RESERVE_MESSAGES_LUA },
  restoreTags: { lua: RESTORE_TAGS_LUA, numberOfKeys: 3 },
  deferMessage: { lua: DEFER_MESSAGE_LUA, numberOfKeys: 4 },
  heartbeatConsumer: { lua: HEARTBEAT_CONSUMER_LUA, numberOfKeys: 4 },
  promoteDeferred: { lua: PROMOTE_DEFERRED_LUA, numberOfKeys: 3 },
  restoreDeadConsumers: { lua: RESTORE_DEAD_CONSUMERS_LUA, numberOfKeys: 3 },
  retireConsumer: { lua: RETIRE_CONSUMER_LUA, numberOfKeys: 3 },
  restoreVisible: { lua: RESTORE_VISIBLE_LUA, numberOfKeys: 3 },
};


/** kombu's list for `queue` at `priority`: clamp 0..9, largest step ≤ p, step 0 = bare name. */
export function priorityListKey(queue: string, priority: number, steps: readonly number[] = [0, 3, 6, 9]): string {
  const p = Math.max(0, Math.min(9, Math.trunc(priority)));
  let bucket = steps[0] ?? 0;
  for (const step of steps) if (step <= p) bucket = step;
  return bucket === 0 ? queue : `${queue}${SEP}${bucket}`;
}

/** Celery's Redis transport (kombu layout) with Celeriac's reliability additions. */
export class RedisBroker implements Broker {
  readonly displayUrl: string;
  private id: string;
  private readonly redis: Redis;
  private blocking: Redis | undefined;
  private readonly scripts: Record<ScriptName, ScriptCall>;
  private readonly steps: readonly number[];
  private readonly visibilityTimeout: number;
  private readonly pollIntervalMs: number;
  private readonly restoreVisibleIntervalMs: number;
  private readonly bindingCacheMs: number;
  private readonly consumerIdGiven: boolean;
  private readonly declared = new Set<string>();
  private readonly bindings = new Map<string, { at: number; members: string[] }>();
  private readonly priorityWatchUntil = new Map<string, number>();
  private reserveLock: Promise<unknown> = Promise.resolve();
  private roundRobin = 0;
  private consumed = false;
  private closing = false;
  private closed: Promise<void> | undefined;
  private lastVisibleRestore = 0;

  constructor(url: string, options: RedisBrokerOptions = {}) {
    this.displayUrl = maskUrl(url);
    this.consumerIdGiven = typeof options.consumerId === 'string' && options.consumerId !== '';
    this.id = this.consumerIdGiven ? options.consumerId! : randomUUID();
    this.steps = [...(options.prioritySteps ?? [0, 3, 6, 9])].sort((a, b) => a - b);
    if (options.globalKeyprefix) throw new ConfigurationError('broker_transport_options.global_keyprefix is not supported by the Celeriac Redis transport yet; remove it (and from the Python side) or use a separate Redis db.');
    if (this.steps[0] !== 0) throw new ConfigurationError(`prioritySteps must start with 0 (kombu's bare queue list), got ${JSON.stringify(options.prioritySteps)}.`);
    this.visibilityTimeout = options.visibilityTimeout ?? 3600;
    this.pollIntervalMs = options.pollIntervalMs ?? 200;
    this.restoreVisibleIntervalMs = options.restoreVisibleIntervalMs ?? 30_000;
    this.bindingCacheMs = options.bindingCacheMs ?? 5_000;
    this.redis = new Redis(url, { enableAutoPipelining: true, ...options.redis });
    const scripts: Partial<Record<ScriptName, ScriptCall>> = {};
    for (const [name, def] of Object.entries(SCRIPTS) as [ScriptName, (typeof SCRIPTS)[ScriptName]][]) {
      this.redis.defineCommand(name, def);
      const fn = (this.redis as unknown as Record<string, ScriptCall>)[name]!;
      scripts[name] = fn.bind(this.redis);
    }
    this.scripts = scripts as Record<ScriptName, ScriptCall>;
  }

  /** Id under which this instance owns unacked messages (the `consumerId` option). */
  get consumerId(): string {
    return this.id;
  }

  private get ownedKey(): string {
    return ownedKey(this.consumerId);
  }

  private get inflightKey(): string {
    return inflightKey(this.consumerId);
  }

  /** LPUSH the kombu envelope to the queue list of the message's priority (declaring the queue once). */
  async publish(message: TaskMessage, route: Route): Promise<void> {
    const priority = messagePriority(message, route);
    const envelope = encodeEnvelope(message, route);
    const pending: Promise<unknown>[] = [];
    if (route.exchange === '') {
      const queue = route.routingKey;
      if (queue === '') throw new ConfigurationError('Cannot publish to exchange "" with an empty routing key: name a queue.');
      if (!this.declared.has(queue)) {
        this.declared.add(queue);
        pending.push(this.redis.sadd(`_kombu.binding.${queue}`, `${queue}${SEP}${SEP}${queue}`).catch((err: unknown) => {
          this.declared.delete(queue);
          throw err;
        }));
      }
      pending.push(this.redis.lpush(priorityListKey(queue, priority, this.steps), envelope));
      this.notePriority(queue, priority);
    } else {
      for (const queue of await this.queuesBoundTo(route.exchange, route.routingKey)) {
        pending.push(this.redis.lpush(priorityListKey(queue, priority, this.steps), envelope));
        this.notePriority(queue, priority);
      }
    }
    await Promise.all(pending);
  }

  /**
   * Publish a batch in one MULTI/EXEC pipeline: all of it lands or none of it.
   * Envelopes for the same list go in one LPUSH (up to 1,000 values each), in
   * order, so they are consumed in the order given; each envelope is what
   * `publish` writes for that message.
   */
  async publishMany(batch: readonly PublishItem[]): Promise<void> {
    if (batch.length === 0) return;
    const lists = new Map<string, string[]>();
    const newQueues: string[] = [];
    for (const { message, route } of batch) {
      const priority = messagePriority(message, route);
      const envelope = encodeEnvelope(message, route);
      let queues: readonly string[];
      if (route.exchange === '') {
        if (route.routingKey === '') throw new ConfigurationError('Cannot publish to exchange "" with an empty routing key: name a queue.');
        queues = [route.routingKey];
        if (!this.declared.has(route.routingKey) && !newQueues.includes(route.routingKey)) newQueues.push(route.routingKey);
      } else {
        queues = await this.queuesBoundTo(route.exchange, route.routingKey);
      }
      for (const queue of queues) {
        const key = priorityListKey(queue, priority, this.steps);
        let envelopes = lists.get(key);
        if (!envelopes) lists.set(key, (envelopes = []));
        envelopes.push(envelope);
        this.notePriority(queue, priority);
      }
    }
    const multi = this.redis.multi();
    for (const queue of newQueues) multi.sadd(`_kombu.binding.${queue}`, `${queue}${SEP}${SEP}${queue}`);
    for (const [key, envelopes] of lists) {
      for (let i = 0; i < envelopes.length; i += LPUSH_CHUNK) multi.lpush(key, ...envelopes.slice(i, i + LPUSH_CHUNK));
    }
    throwFirstError(await multi.exec());
    for (const queue of newQueues) this.declared.add(queue);
  }

  /** Queues bound to a named exchange for a routing key (direct match), cached. */
  private async queuesBoundTo(exchange: string, routingKey: string): Promise<string[]> {
    const match = (members: string[]) =>
      members.flatMap((m) => {
        const [rk, , queue] = m.split(SEP);
        return rk === routingKey && queue ? [queue] : [];
      });
    const cached = this.bindings.get(exchange);
    if (cached && Date.now() - cached.at < this.bindingCacheMs) {
      const queues = match(cached.members);
      if (queues.length > 0) return queues;
    }
    const members = await this.redis.smembers(`_kombu.binding.${exchange}`);
    this.bindings.set(exchange, { at: Date.now(), members });
    const queues = match(members);
    if (queues.length === 0) {
      throw new ConfigurationError(
        `No queue is bound to exchange "${exchange}" with routing key "${routingKey}" (set _kombu.binding.${exchange} is ` +
          `${members.length ? 'missing that key' : 'empty'}). Start a worker consuming the queue first, or publish to exchange "" with the queue name as routing key.`,
      );
    }
    return [...new Set(queues)];
  }

  private notePriority(queue: string, priority: number): void {
    if (priorityListKey(queue, priority, this.steps) !== queue) this.priorityWatchUntil.set(queue, Date.now() + PRIORITY_WATCH_MS);
  }

  private watchesSeveralLists(queues: readonly string[]): boolean {
    if (queues.length > 1) return true;
    const until = this.priorityWatchUntil.get(queues[0]!);
    return until !== undefined && until > Date.now();
  }

  /**
   * Take up to `max` messages, recorded unacked in the same Lua step. When none is
   * ready, block with BLMOVE into this consumer's inflight list (never only in
   * memory) and take again. Calls on one instance run one at a time.
   */
  reserve(queues: readonly string[], options: ReserveOptions): Promise<Delivery[]> {
    const run = this.reserveLock.then(() => this.reserveNow(queues, options));
    this.reserveLock = run.catch(() => undefined);
    return run;
  }

  private async reserveNow(queues: readonly string[], { max, timeoutMs }: ReserveOptions): Promise<Delivery[]> {
    if (queues.length === 0 || max <= 0 || this.closing) return [];
    this.consumed = true;
    const shift = this.roundRobin % queues.length;
    const order = [...queues.slice(shift), ...queues.slice(0, shift)];
    const keys: string[] = [];
    const keyQueues: string[] = [];
    for (const step of this.steps) {
      for (const queue of order) {
        keys.push(step === 0 ? queue : `${queue}${SEP}${step}`);
        keyQueues.push(queue);
      }
    }
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const got = await this.takeReady(keys, keyQueues, order.length, max, order[0]!);
      if (got.length > 0) {
        this.roundRobin++;
        return got;
      }
      const remaining = deadline - Date.now();
      if (remaining <= 0 || this.closing) return [];
      const waitMs = Math.max(1, this.watchesSeveralLists(order) ? Math.min(remaining, this.pollIntervalMs) : remaining);
      try {
        await this.blockingConnection().blmove(order[0]!, this.inflightKey, 'RIGHT', 'LEFT', (waitMs / 1000).toFixed(3));
      } catch (err) {
        if (this.closing) return [];
        throw err;
      }
    }
  }

  private blockingConnection(): Redis {
    return (this.blocking ??= this.redis.duplicate({ enableAutoPipelining: false }));
  }

  private async takeReady(keys: string[], keyQueues: string[], queueCount: number, max: number, inflightQueue: string): Promise<Delivery[]> {
    const reply = (await this.scripts.reserveMessages(
      keys.length + 4,
      UNACKED,
      UNACKED_INDEX,
      this.ownedKey,
      this.inflightKey,
      ...keys,
      max,
      `${randomUUID()}-`,
      inflightQueue,
      ...keyQueues,
    )) as (string | number)[];
    const deliveries: Delivery[] = [];
    for (let i = 0; i < reply.length; i += 3) {
      const source = Number(reply[i + 2]);
      const queue = source === 0 ? inflightQueue : keyQueues[source - 1]!;
      if (source > queueCount) this.priorityWatchUntil.set(queue, Date.now() + PRIORITY_WATCH_MS);
      deliveries.push(toDelivery(String(reply[i]), String(reply[i + 1]), queue));
    }
    return deliveries;
  }

  /** Acknowledge a batch in one round trip (kombu's ZREM + HDEL, plus ownership). */
  async ack(deliveries: readonly Delivery[]): Promise<void> {
    if (deliveries.length === 0) return;
    const tags = deliveries.map((d) => d.deliveryTag);
    const results = await this.redis.multi().zrem(UNACKED_INDEX, ...tags).hdel(UNACKED, ...tags).srem(this.ownedKey, ...tags).exec();
    throwFirstError(results);
  }

  /** `requeue`: back of the line (LPUSH), marked redelivered, like kombu. Otherwise: ack. */
  async reject(delivery: Delivery, requeue: boolean): Promise<void> {
    if (!requeue) return this.ack([delivery]);
    await this.scripts.restoreTags(UNACKED, UNACKED_INDEX, this.ownedKey, '1', delivery.deliveryTag, delivery.queue);
  }

  /** Move the message to the broker-side ETA zset; a heartbeat puts it back at `eta`. */
  async deferUntil(delivery: Delivery, eta: Date): Promise<void> {
    await this.scripts.deferMessage(UNACKED, UNACKED_INDEX, this.ownedKey, DEFERRED, delivery.deliveryTag, eta.getTime());
  }

  /** Give messages back untouched by this consumer: front of their queue (RPUSH), marked redelivered. */
  async restoreUnacked(deliveries: readonly Delivery[]): Promise<void> {
    for (let i = 0; i < deliveries.length; i += 1000) {
      const args = deliveries.slice(i, i + 1000).flatMap((d) => [d.deliveryTag, d.queue]);
      await this.scripts.restoreTags(UNACKED, UNACKED_INDEX, this.ownedKey, '0', ...args);
    }
  }

  /**
   * Keep this consumer alive for `ttlMs`, promote due deferred messages, restore
   * dead consumers' messages and (every `restoreVisibleIntervalMs`) run kombu's
   * visibility-timeout restore. One round trip (more only for large promotions).
   * `consumerId` should be the `consumerId` option; a broker created without one
   * adopts it if it has not reserved yet, otherwise its own id is used.
   */
  async heartbeat(consumerId: string, ttlMs: number): Promise<void> {
    if (this.closing) return;
    if (consumerId !== this.id && !this.consumerIdGiven && !this.consumed) this.id = consumerId;
    const pipeline = this.scriptPipeline();
    pipeline.heartbeatConsumer(UNACKED, UNACKED_INDEX, CONSUMERS, this.ownedKey, this.consumerId, Math.round(ttlMs));
    await this.runMaintenance(pipeline, 1);
  }

  /**
   * The part of `heartbeat()` that is not about this consumer being alive: promote
   * due deferred messages, restore dead consumers' messages, kombu's visibility
   * restore. For workers whose liveness is proven elsewhere (a heartbeat thread).
   */
  async maintain(): Promise<void> {
    if (this.closing) return;
    await this.runMaintenance(this.scriptPipeline(), 0);
  }

  private scriptPipeline() {
    return this.redis.pipeline() as unknown as Record<ScriptName, (...args: (string | number)[]) => unknown> & {
      exec(): Promise<[Error | null, unknown][] | null>;
    };
  }

  /** Queue the maintenance scripts after `before` others, run, and finish large promotions. */
  private async runMaintenance(pipeline: ReturnType<RedisBroker['scriptPipeline']>, before: number): Promise<void> {
    pipeline.promoteDeferred(UNACKED, UNACKED_INDEX, DEFERRED, PROMOTE_BATCH, ...this.steps);
    pipeline.restoreDeadConsumers(UNACKED, UNACKED_INDEX, CONSUMERS, this.consumerId, DEAD_RETENTION_MS, DEAD_BATCH);
    const now = Date.now();
    if (now - this.lastVisibleRestore >= this.restoreVisibleIntervalMs) {
      this.lastVisibleRestore = now;
      pipeline.restoreVisible(UNACKED, UNACKED_INDEX, UNACKED_MUTEX, randomUUID(), this.visibilityTimeout, DEAD_BATCH);
    }
    const results = await pipeline.exec();
    throwFirstError(results);
    let promoted = Number(results?.[before]?.[1] ?? 0);
    for (let round = 0; promoted === PROMOTE_BATCH && round < 20; round++) {
      promoted = Number(await this.scripts.promoteDeferred(UNACKED, UNACKED_INDEX, DEFERRED, PROMOTE_BATCH, ...this.steps));
    }
  }

  /** Delete every ready message (all priority lists) of the queues; resolves with how many. */
  async purge(queues: readonly string[]): Promise<number> {
    if (queues.length === 0) return 0;
    const multi = this.redis.multi();
    const lists = queues.flatMap((q) => this.steps.map((s) => priorityListKey(q, s, this.steps)));
    for (const list of lists) multi.llen(list);
    multi.del(...lists);
    const results = await multi.exec();
    throwFirstError(results);
    return results!.slice(0, lists.length).reduce((sum, [, n]) => sum + Number(n), 0);
  }

  /** Ready messages in a queue, all priority lists together. */
  async queueLength(queue: string): Promise<number> {
    const lengths = await Promise.all(this.steps.map((s) => this.redis.llen(priorityListKey(queue, s, this.steps))));
    return lengths.reduce((a, b) => a + b, 0);
  }

  /**
   * Stop blocking, give back what this consumer still holds (when it consumed) and
   * close both connections.
   */
  close(): Promise<void> {
    return (this.closed ??= this.shutdown());
  }

  private async shutdown(): Promise<void> {
    this.closing = true;
    this.blocking?.disconnect();
    await this.reserveLock;
    try {
      if (this.consumed) await this.scripts.retireConsumer(UNACKED, UNACKED_INDEX, CONSUMERS, this.consumerId);
    } finally {
      await this.redis.quit().catch(() => this.redis.disconnect());
    }
  }
}

function toDelivery(raw: string, deliveryTag: string, queue: string): Delivery {
  const sizeBytes = Buffer.byteLength(raw);
  try {
    const decoded = decodeEnvelope(raw);
    return { message: decoded.message, sizeBytes, queue, exchange: decoded.exchange, routingKey: decoded.routingKey, deliveryTag, redelivered: decoded.redelivered };
  } catch (err) {
    const decodeError = err instanceof Error ? err : new MessageDecodeError(String(err));
    return { message: null, decodeError, sizeBytes, queue, exchange: '', routingKey: queue, deliveryTag, redelivered: false };
  }
}

function throwFirstError(results: [Error | null, unknown][] | null): void {
  if (!results) throw new Error('Redis transaction was aborted.');
  for (const [err] of results) if (err) throw err;
}
