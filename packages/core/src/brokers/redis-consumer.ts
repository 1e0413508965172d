/**
 * The Redis transport's `Consumer`: atomic reserve into kombu's `unacked`, settling,
 * liveness (heartbeats from a thread, see `ConsumerHeartbeats`), upkeep (deferred
 * promotion, dead-consumer restore, kombu's visibility restore) and ETA parking.
 * Key layout: the top of `redis.ts`.
 */
import { randomUUID } from 'node:crypto';
import { Command, type Redis, type RedisOptions } from 'ioredis';
import { pino } from 'pino';
import { MessageDecodeError, MessageTooLarge } from '../errors.js';
import type { QueueSpec } from '../config.js';
import type { Logger } from '../logger.js';
import { dropRedisClient, duplicateRedisClient, whenRedisLost } from '../redis-client.js';
import { isConnectionError } from '../redis-connection.js';
import { ConsumerHeartbeats } from '../worker/consumer-heartbeats.js';
import type { Consumer, ConsumerOptions, Delivery, EarlyAck, IfWorkerLost, ReserveOptions, RunningTask } from './broker.js';
import { decodeEnvelope } from './redis-envelope.js';
import { CONSUMERS, DEFERRED, ownedKey, REDELIVERIES, REDELIVERIES_AT, UNACKED, UNACKED_INDEX, UNACKED_MUTEX } from './redis-keys.js';
import { runScriptNow } from './redis-script-now.js';
import { scripts } from './redis-scripts.js';

const SEP = '\x06\x16';
const PROMOTE_BATCH = 500;
const DEAD_BATCH = 1000;
/** A dead consumer stays listed (and re-checked) this long after its last heartbeat. */
const DEAD_RETENTION_MS = 3_600_000;
/** A redelivery count unchanged this long whose message nobody holds is deleted (see sweepRedeliveries). */
const REDELIVERY_COUNT_TTL_MS = 86_400_000;
/** Redelivery counts looked at per sweep. */
const SWEEP_BATCH = 500;
/** Longest single wake-up BLMOVE (s); a watcher re-arms after it. */
const WATCH_BLOCK_SECONDS = 5;
/** After a watcher connection fails, wait this long before reserving again. */
const WATCH_ERROR_PAUSE_MS = 200;
/** Backoff between ack attempts: first, and the longest. */
const ACK_RETRY_FIRST_MS = 100;
const ACK_RETRY_MAX_MS = 2000;
/** Once the consumer is closing, a failing ack is retried this much longer, then given up. */
const ACK_RETRY_AFTER_CLOSE_MS = 10_000;
/** At close, how long the last reserve may take to return once its connection is gone. */
const RESERVE_SETTLE_AT_CLOSE_MS = 1_000;

/** What a consumer shares with the `RedisBroker` that opened it. */
export interface RedisConsumerContext {
  /** The broker's command connection (auto-pipelined). */
  redis: Redis;
  /** Broker URL (unmasked), for the heartbeat thread's own connection. */
  url: string;
  /** The `redis` transport option: the heartbeat thread connects with it too (password, db, TLS). */
  redisOptions?: RedisOptions;
  /** Sentinel URLs: `masterName` and `sentinelKwargs`, for the heartbeat thread's connection too. */
  sentinelOptions?: Record<string, unknown>;
  steps: readonly number[];
  visibilityTimeout: number;
  restoreVisibleIntervalMs: number;
}

/** How a consumer declares and feeds the queues it adds or drops at run time (see `RedisBroker.openConsumer`). */
export interface RedisQueueFeed {
  /** Declare `queue` (bindings, fanout subscription), defining it from `spec` when given. */
  add(queue: string, spec?: QueueSpec): Promise<void>;
  /** Stop feeding `queue` (fanout subscription). */
  remove(queue: string): Promise<void>;
  close(): Promise<void>;
}

/** A blocking connection that waits for one ready list to be non-empty. */
interface ListWatcher {
  connection: Redis;
  /** The wake-up BLMOVE in progress, if any. */
  pending: Promise<void> | null;
  /**
   * Commands written on it and not yet answered. Its client does not resend them after
   * a reconnect (a queued reserve must not run twice) and leaves them unsettled, so the
   * connection's `close` fails them here.
   */
  unanswered: Set<Command>;
}

/**
 * A reserve written right behind a watcher's BLMOVE on the same connection: Redis runs
 * it the moment the wait ends, so a message that arrives on an idle queue is reserved
 * without the worker's own round trip (wake, then reserve).
 */
interface QueuedReserve {
  /** The BLMOVE ahead of it returned (a message came, or it timed out): the reserve's reply follows. */
  fired: boolean;
  /** What it took; [] when it took nothing or failed. */
  taken: Promise<Delivery[]>;
  /** What it asked for. */
  max: number;
  /** False once a hang was declared after it was written (see `ConsumerHeartbeats.reserving`). */
  stillOurs: () => boolean;
}

/** What `waitForAnyList` needs to queue a reserve behind the wait. */
interface ReserveSpec {
  keys: string[];
  keyQueues: string[];
  max: number;
  stillOurs: () => boolean;
}

/** After a queued reserve's connection failed, give back what it may have taken this long later (and retry until then). */
const LEASE_RESTORE_DELAY_MS = 1_000;
/** Attempts at that give-back before it is left to shutdown (which restores everything held). */
const LEASE_RESTORE_ATTEMPTS = 30;

const silent: Logger = pino({ level: 'silent' });

/** One consumer of a set of queues on Redis. */
export class RedisConsumer implements Consumer {
  readonly id: string;
  private queueList: string[];
  private readonly watchers = new Map<string, ListWatcher>();
  private readonly pendingAcks = new Set<Promise<void>>();
  /** When `close` was called. */
  private closedAt: number | undefined;
  private reserveLock: Promise<unknown> = Promise.resolve();
  private roundRobin = 0;
  /** The last reserve took fewer than it asked for: every list it read was empty then. */
  private listsDrained = false;
  /** The reserve queued behind the wait on a single queue's bare list, if armed. */
  private queuedReserve: QueuedReserve | null = null;
  private closing = false;
  private closed: Promise<void> | undefined;
  private lastVisibleRestore = 0;
  /** The socket the ack script last ran on: EVALSHA is safe there (a new socket may reach a restarted server). */
  private ackScriptSocket: object | undefined;
  private readonly heartbeats: ConsumerHeartbeats;
  private readonly log: Logger;

  constructor(
    private readonly ctx: RedisConsumerContext,
    queues: readonly string[],
    private readonly options: ConsumerOptions = {},
    private readonly feed?: RedisQueueFeed,
  ) {
    this.id = options.consumerId || randomUUID();
    this.queueList = [...queues];
    this.log = options.log ?? silent;
    this.heartbeats = new ConsumerHeartbeats({
      beat: () => this.beat(),
      upkeep: () => this.upkeep(),
      thread: options.heartbeatThread === false ? null : { brokerUrl: ctx.url, consumerId: this.id, transportOptions: { ...ctx.sentinelOptions, redis: ctx.redisOptions } },
      hang: options.hangTimeoutSeconds
        ? {
            timeoutSeconds: options.hangTimeoutSeconds,
            startedCapacity: options.startedCapacity ?? 1024,
            onReleased: options.onHangReleased ?? (() => undefined),
            lostResults: options.lostResults ?? null,
          }
        : null,
      intervalSeconds: options.heartbeatIntervalSeconds ?? 2,
      log: this.log,
    });
  }

  /** The queues it consumes, in priority order. */
  get queues(): readonly string[] {
    return this.queueList;
  }

  /** See `Consumer.addQueue`: declared (and subscribed, for a fanout binding) before it is reserved from. */
  async addQueue(queue: string, spec?: QueueSpec): Promise<void> {
    if (this.closing) throw new Error(`The consumer is closed; cannot start consuming from ${queue}.`);
    await this.feed?.add(queue, spec);
    if (!this.queueList.includes(queue)) this.queueList = [...this.queueList, queue];
  }

  /** See `Consumer.removeQueue`: reserves from then on skip it; its wake-up connections are closed. */
  async removeQueue(queue: string): Promise<void> {
    if (!this.queueList.includes(queue)) return;
    this.queueList = this.queueList.filter((q) => q !== queue);
    await this.feed?.remove(queue);
    for (const step of this.ctx.steps) {
      const list = step === 0 ? queue : `${queue}${SEP}${step}`;
      const watcher = this.watchers.get(list);
      if (!watcher) continue;
      this.watchers.delete(list);
      dropRedisClient(watcher.connection);
    }
  }

  /** Begin liveness and upkeep (unless `autoUpkeep: false`). Called by `RedisBroker.openConsumer`. */
  async start(): Promise<void> {
    if (this.options.autoUpkeep !== false) await this.heartbeats.start();
  }

  private get ownedKey(): string {
    return ownedKey(this.id);
  }

  /**
   * Take up to `max` messages, recorded unacked in the same Lua step. When none is
   * ready, wait until any ready list (every priority list of every queue) is
   * non-empty and take again. Calls run one at a time.
   */
  reserve(options: ReserveOptions): Promise<Delivery[]> {
    const run = this.reserveLock.then(() => this.reserveNow(options));
    this.reserveLock = run.catch(() => undefined);
    return run;
  }

  private async reserveNow({ max, timeoutMs }: ReserveOptions): Promise<Delivery[]> {
    // Nothing is reserved while a hang is being released: it would be caught in the release.
    await this.heartbeats.whileHangReleases(() => !this.closing);
    const stillOurs = this.heartbeats.reserving();
    const queues = this.queues;
    if (queues.length === 0 && !this.closing && max > 0) {
      // Every queue cancelled (remote control): wait, do not spin.
      await new Promise((r) => setTimeout(r, Math.min(timeoutMs, 1000)));
      return [];
    }
    if (queues.length === 0 || max <= 0 || this.closing) return [];
    const shift = this.roundRobin % queues.length;
    const order = [...queues.slice(shift), ...queues.slice(0, shift)];
    const keys: string[] = [];
    const keyQueues: string[] = [];
    for (const step of this.ctx.steps) {
      for (const queue of order) {
        keys.push(step === 0 ? queue : `${queue}${SEP}${step}`);
        keyQueues.push(queue);
      }
    }
    const deadline = Date.now() + timeoutMs;
    // One queue: a reserve rides behind the wait on its bare list (where priority 0 lands).
    const spec: ReserveSpec | undefined = queues.length === 1 ? { keys, keyQueues, max, stillOurs } : undefined;
    for (;;) {
      // The queues changed while waiting (add/cancel consumer): the next reserve takes from the new set.
      if (this.queueList !== queues) return [];
      const queued = this.queuedReserve;
      if (queued?.fired) {
        this.queuedReserve = null;
        const got = await queued.taken;
        if (got.length > 0) {
          if (!queued.stillOurs()) {
            // As below: a hang was declared since it was written (its token is older than this call's).
            await this.restore(got);
            return [];
          }
          this.listsDrained = got.length < queued.max;
          this.roundRobin++;
          return got;
        }
        // It took nothing (the wait timed out, or another consumer was first): reserve as usual.
      } else if (this.listsDrained && deadline > Date.now() && !this.closing) {
        // The last reserve emptied every list: wait for one to fill (at once if one has
        // since) instead of a reserve that would most likely come back empty. Armed on
        // the next loop turn: the early acks, runs and result writes of what that
        // reserve brought go out first. Then reserve (also after a timeout: the caller
        // asked for what is ready).
        this.listsDrained = false;
        await new Promise((resolve) => setImmediate(resolve));
        const remaining = deadline - Date.now();
        if (remaining > 0 && !this.closing) await this.waitForAnyList(keys, remaining, spec);
        continue;
      }
      const got = await this.takeReady(keys, keyQueues, max);
      // An empty reply waits below; a short one waits at the start of the next reserve.
      this.listsDrained = got.length > 0 && got.length < max;
      if (got.length > 0 && !stillOurs()) {
        // A hang was declared while this reserve was under way (the loop was blocked with
        // it pending): what it took may have been released already, or not. Give it back
        // under its lease: a no-op for what the release took, back in front for the rest.
        await this.restore(got);
        return [];
      }
      if (got.length > 0) {
        this.roundRobin++;
        return got;
      }
      const remaining = deadline - Date.now();
      if (remaining <= 0 || this.closing) return [];
      const woken = await this.waitForAnyList(keys, remaining, spec);
      // Timed out with a reserve still queued behind the wait: nothing came (it would have
      // ended the wait), so the next call waits again instead of reserving first.
      if (!woken && this.queuedReserve && !this.queuedReserve.fired) this.listsDrained = true;
    }
  }

  /**
   * Resolve when one of `lists` may have a message, or after `waitMs`. Each list has
   * its own blocking connection running `BLMOVE list list LEFT LEFT`: it returns as
   * soon as the list is non-empty and puts the element back where it was, so the
   * wake-up never moves a message (nothing is ever only in this consumer's hands or
   * in a list kombu does not know). A watcher still blocked when this returns stays
   * armed for the next wait.
   */
  private async waitForAnyList(lists: readonly string[], waitMs: number, spec?: ReserveSpec): Promise<boolean> {
    let timer: NodeJS.Timeout | undefined;
    const wakes: Promise<boolean>[] = [new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(false), waitMs)))];
    for (const list of lists) wakes.push(this.watch(list, list === lists[0] ? spec : undefined).then(() => true));
    try {
      return await Promise.race(wakes);
    } finally {
      clearTimeout(timer);
    }
  }

  /**
   * Arm `list`'s watcher (unless armed). With `spec`, and no reserve queued yet, a
   * reserve is written right behind the BLMOVE on the same connection (see `QueuedReserve`).
   */
  private watch(list: string, spec?: ReserveSpec): Promise<void> {
    const armed = this.watchers.get(list) ?? this.newWatcher(list);
    if (armed.pending) return armed.pending;
    const waited = sendOn(armed, new Command('blmove', [list, list, 'LEFT', 'LEFT', WATCH_BLOCK_SECONDS]));
    if (spec && !this.queuedReserve && armed.connection.status === 'ready') this.queuedReserve = this.queueReserve(armed, spec, waited);
    armed.pending = waited
      .then(
        () => undefined,
        async (err: unknown) => {
          if (this.closing) return;
          // No connection: the outage is reported once by the connection itself.
          if (isConnectionError(err)) this.log.debug({ err, list }, 'Waiting for messages failed (no connection); retrying');
          else this.log.warn({ err, list }, 'Waiting for messages failed; retrying');
          await new Promise((r) => setTimeout(r, WATCH_ERROR_PAUSE_MS));
        },
      )
      .finally(() => (armed.pending = null));
    return armed.pending;
  }

  /** `list`'s blocking connection, whose unanswered commands fail when it closes. */
  private newWatcher(list: string): ListWatcher {
    const connection = duplicateRedisClient(this.ctx.redis, { enableAutoPipelining: false, autoResendUnfulfilledCommands: false });
    const watcher: ListWatcher = { connection, pending: null, unanswered: new Set() };
    connection.on('close', () => {
      if (watcher.unanswered.size === 0) return;
      const lost = new Error('Connection is closed (a wake-up connection dropped before its reply)');
      for (const command of watcher.unanswered) command.reject(lost);
      watcher.unanswered.clear();
    });
    this.watchers.set(list, watcher);
    return watcher;
  }

  /** Write the reserve of `spec` on `watcher`'s connection behind its BLMOVE `waited`. */
  private queueReserve(watcher: ListWatcher, spec: ReserveSpec, waited: Promise<unknown>): QueuedReserve {
    const leasePrefix = `${randomUUID()}:`;
    const [name, commandArgs] = scripts.reserveMessages.commandArgs([UNACKED, UNACKED_INDEX, this.ownedKey], this.reserveArgs(spec.max, spec.keyQueues, leasePrefix, this.id), true, spec.keys);
    const taken = sendOn(watcher, new Command(name, commandArgs, { replyEncoding: 'utf8' })).then(
      (reply) => this.toDeliveries(scripts.reserveMessages.parseReply(reply), spec.keyQueues),
      (err: unknown) => {
        queued.fired = true;
        if (this.queuedReserve === queued) this.queuedReserve = null;
        // NOSCRIPT: it did not run (the next reserve loads the script). Otherwise the
        // connection failed and whether it ran is unknown: give back what it may have taken.
        if (!(err instanceof Error && err.message.startsWith('NOSCRIPT')) && !this.closing) this.restoreLeaseLater(leasePrefix, spec.keyQueues[0]!);
        return [];
      },
    );
    const queued: QueuedReserve = { fired: false, taken, max: spec.max, stillOurs: spec.stillOurs };
    // Registered before the watcher's own reaction (`armed.pending`): `fired` is set when the wait ends.
    const fire = () => (queued.fired = true);
    waited.then(fire, fire);
    return queued;
  }

  /** Give back what the reserve with `leasePrefix` took, once its connection is surely gone; retried while Redis is away. */
  private restoreLeaseLater(leasePrefix: string, queue: string, attempt = 0): void {
    const timer = setTimeout(() => {
      if (this.closing) return; // shutdown restores everything still held
      scripts.restoreLease.run(this.ctx.redis, this.settleKeys, [leasePrefix, queue]).then(
        (restored) => {
          if (restored > 0) this.log.warn({ restored, queue }, `Gave back ${restored} message(s) reserved over a connection that failed before its reply arrived`);
        },
        (err: unknown) => {
          if (attempt + 1 < LEASE_RESTORE_ATTEMPTS) this.restoreLeaseLater(leasePrefix, queue, attempt + 1);
          else this.log.warn({ err, queue }, 'Could not give back the messages of a reserve whose reply was lost; they are given back at shutdown');
        },
      );
    }, LEASE_RESTORE_DELAY_MS);
    timer.unref();
  }

  /**
   * reserveMessages' ARGV. Over maxBytes, the script sends the message's size and task
   * id, not the message. With `aliveConsumer`, it takes nothing unless that consumer's
   * heartbeat is current (a queued reserve runs even while its worker is frozen).
   */
  private reserveArgs(max: number, keyQueues: readonly string[], leasePrefix = `${randomUUID()}:`, aliveConsumer = ''): (string | number)[] {
    const maxBytes = this.options.maxMessageBytes ?? Infinity;
    return [max, `${randomUUID()}-`, leasePrefix, Number.isFinite(maxBytes) ? Math.max(1, Math.floor(maxBytes)) : 0, aliveConsumer, ...keyQueues];
  }

  private async takeReady(keys: string[], keyQueues: string[], max: number): Promise<Delivery[]> {
    // Written now (not at the auto-pipeline's setImmediate): the tasks wait on this round trip.
    const reply = await runScriptNow(this.ctx.redis, scripts.reserveMessages, [UNACKED, UNACKED_INDEX, this.ownedKey], this.reserveArgs(max, keyQueues), keys);
    return this.toDeliveries(reply, keyQueues);
  }

  /** reserveMessages' reply as deliveries. */
  private toDeliveries(reply: readonly string[], keyQueues: readonly string[]): Delivery[] {
    const maxBytes = this.options.maxMessageBytes ?? Infinity;
    const deliveries: Delivery[] = [];
    for (let i = 0; i < reply.length; i += 6) {
      const queue = keyQueues[Number(reply[i + 2]) - 1]!;
      deliveries.push(toDelivery(reply[i]!, reply[i + 1]!, queue, reply[i + 3]!, Number(reply[i + 4]), Number(reply[i + 5]), maxBytes));
    }
    return deliveries;
  }

  private get settleKeys(): [string, string, string] {
    return [UNACKED, UNACKED_INDEX, this.ownedKey];
  }

  /** Log the settles skipped because another consumer holds the message now. */
  private skipped(tags: readonly string[], action: string): void {
    for (const tag of tags) {
      this.log.warn(
        { deliveryTag: tag, consumer: this.id },
        `Message ${tag} was restored to another consumer while this one was unresponsive; this consumer no longer holds it, so its ${action} was skipped (the current holder settles it).`,
      );
    }
  }

  /**
   * Acknowledge a batch in one round trip (kombu's ZREM + HDEL), only what this
   * consumer still holds. A failed ack (Redis away) is retried with backoff until it
   * lands: acks are idempotent under leases, and an ack that never lands makes a
   * finished task run again. Once the consumer is closing, retries stop after
   * `ACK_RETRY_AFTER_CLOSE_MS` and the ack rejects.
   */
  ack(deliveries: readonly Delivery[]): Promise<void> {
    if (deliveries.length === 0) return Promise.resolve();
    return this.tracked(this.ackUntilLanded(deliveries), deliveries);
  }

  /**
   * See `Consumer.ackBeforeRun`. The ack script is written with `sendCommand` (past
   * ioredis's auto-pipelining, which waits for `setImmediate`) and counts as sent only
   * if the socket took all of it synchronously (`writableLength` 0 after the write):
   * then its bytes are in the kernel, which delivers them even if a task kills the
   * process right after. The first run on a socket sends EVAL with the source (the
   * server may not know the script); a failed write or reply (NOSCRIPT after a SCRIPT
   * FLUSH, an outage) goes on as `ack`: retried until it lands. Until it lands the
   * hang watch holds the message as started-to-drop, so a loop that hangs first still
   * has it acknowledged (by the heartbeat thread), never given back; it stays
   * started until `taskFinished` (a hang during the run stores FAILURE for it).
   */
  ackBeforeRun(deliveries: readonly Delivery[]): EarlyAck {
    if (deliveries.length === 0) return { sent: true, landed: Promise.resolve() };
    const args = ackArgs(deliveries);
    const redis = this.ctx.redis;
    const socket = redis.stream as typeof redis.stream | undefined;
    let sent = false;
    let landing: Promise<void>;
    if (!this.closing && redis.status === 'ready' && socket?.writable && socket.writableLength === 0) {
      const [name, commandArgs] = scripts.ackMessages.commandArgs(this.settleKeys, args, this.ackScriptSocket === socket);
      const command = new Command(name, commandArgs, { replyEncoding: 'utf8' });
      redis.sendCommand(command);
      sent = socket.writableLength === 0;
      landing = command.promise.then((reply) => scripts.ackMessages.parseReply(reply)).then(
        (stale) => {
          this.ackScriptSocket = socket;
          this.skipped(stale, 'ack');
        },
        () => this.ackUntilLanded(deliveries, args),
      );
    } else landing = this.ackUntilLanded(deliveries, args);
    return { sent, landed: this.tracked(landing, null) };
  }

  /** Keep `landing` among the acks shutdown waits for; `settles` stop counting as started once it settles. */
  private tracked(landing: Promise<void>, settles: readonly Delivery[] | null): Promise<void> {
    this.pendingAcks.add(landing);
    return landing.finally(() => {
      this.pendingAcks.delete(landing);
      if (settles) for (const d of settles) this.heartbeats.settled(d);
    });
  }

  private async ackUntilLanded(deliveries: readonly Delivery[], args = ackArgs(deliveries)): Promise<void> {
    for (let attempt = 0; ; attempt++) {
      try {
        this.skipped(await scripts.ackMessages.run(this.ctx.redis, this.settleKeys, args), 'ack');
        if (attempt > 0) this.log.warn({ count: deliveries.length, attempts: attempt + 1 }, `Acknowledged ${deliveries.length} message(s) after ${attempt + 1} attempts`);
        return;
      } catch (err) {
        if (this.closedAt !== undefined && Date.now() - this.closedAt > ACK_RETRY_AFTER_CLOSE_MS) {
          this.log.error(
            { err, deliveryTags: deliveries.map((d) => d.deliveryTag) },
            `Giving up acknowledging ${deliveries.length} message(s) at shutdown after ${attempt + 1} attempts; they will be delivered again`,
          );
          throw err;
        }
        if (attempt === 0) this.log.warn({ err, count: deliveries.length }, `Ack of ${deliveries.length} message(s) failed; retrying until it lands`);
        await new Promise((r) => setTimeout(r, Math.min(ACK_RETRY_MAX_MS, ACK_RETRY_FIRST_MS * 2 ** attempt)));
      }
    }
  }

  /** `requeue`: back of the line (LPUSH), marked redelivered, like kombu. Otherwise: ack. */
  async reject(delivery: Delivery, requeue: boolean): Promise<void> {
    if (!requeue) return this.ack([delivery]);
    try {
      this.skipped(await scripts.restoreTags.run(this.ctx.redis, this.settleKeys, ['1', delivery.deliveryTag, delivery.lease ?? '', delivery.queue]), 'requeue');
    } finally {
      this.heartbeats.settled(delivery);
    }
  }

  /**
   * Move the message to the broker-side ETA zset; upkeep puts it back at `eta`. The
   * due time is stored on Redis's clock (Redis TIME + the delay from now), the clock
   * promotion reads, so a skewed worker clock cannot promote early or late.
   */
  async defer(delivery: Delivery, eta: Date): Promise<void> {
    try {
      const args = [delivery.deliveryTag, delivery.lease ?? randomUUID(), Math.max(0, eta.getTime() - Date.now())] as const;
      const moved = await scripts.deferMessage.run(this.ctx.redis, [UNACKED, UNACKED_INDEX, this.ownedKey, DEFERRED], args);
      if (moved === 0) this.skipped([delivery.deliveryTag], 'deferral');
    } finally {
      this.heartbeats.settled(delivery);
    }
  }

  /** See `Consumer.taskStarting`: recorded for the heartbeat thread's hang watch. */
  taskStarting(delivery: Delivery, ifLost: IfWorkerLost, task?: RunningTask): boolean {
    return this.heartbeats.taskStarting(delivery, delivery.deliveryTag, ifLost, task);
  }

  /** See `Consumer.taskFinished`. */
  taskFinished(delivery: Delivery): void {
    this.heartbeats.settled(delivery);
  }

  /** Give messages back untouched: front of their queue (RPUSH), marked redelivered. */
  async restore(deliveries: readonly Delivery[]): Promise<void> {
    for (let i = 0; i < deliveries.length; i += 1000) {
      const batch = deliveries.slice(i, i + 1000);
      const args = batch.flatMap((d) => [d.deliveryTag, d.lease ?? '', d.queue]);
      try {
        this.skipped(await scripts.restoreTags.run(this.ctx.redis, this.settleKeys, ['0', ...args]), 'restore');
      } finally {
        for (const d of batch) this.heartbeats.settled(d);
      }
    }
  }

  /**
   * Delete redelivery counts unchanged for `ageMs` whose message nobody holds (a Python
   * worker acked it: kombu's ack does not know them). Runs with the visibility restore;
   * public for tests. Resolves with how many were deleted.
   */
  sweepRedeliveries(ageMs = REDELIVERY_COUNT_TTL_MS): Promise<number> {
    return scripts.sweepRedeliveries.run(this.ctx.redis, [UNACKED, REDELIVERIES, REDELIVERIES_AT], [ageMs, SWEEP_BATCH]);
  }

  /**
   * Prove this consumer alive for `ttlMs` (default: 5 heartbeat intervals), then
   * run `upkeep`. Runs on its own timer; public for tests that drive it by hand.
   */
  async beat(ttlMs = this.heartbeats.ttlMs): Promise<void> {
    if (this.closing) return;
    await scripts.heartbeatConsumer.run(this.ctx.redis, [UNACKED, UNACKED_INDEX, CONSUMERS, this.ownedKey], [this.id, Math.round(ttlMs)]);
    await this.upkeep();
  }

  /**
   * Promote due deferred messages, restore dead consumers' messages and (every
   * `restoreVisibleIntervalMs`) run kombu's visibility-timeout restore. Runs on
   * its own timer; public for tests that drive it by hand.
   */
  async upkeep(): Promise<void> {
    if (this.closing) return;
    const { redis, steps } = this.ctx;
    const promoting = scripts.promoteDeferred.run(redis, [UNACKED, UNACKED_INDEX, DEFERRED], [PROMOTE_BATCH, ...steps]);
    const restoring = scripts.restoreDeadConsumers.run(redis, [UNACKED, UNACKED_INDEX, CONSUMERS], [this.id, DEAD_RETENTION_MS, DEAD_BATCH]);
    let visible: Promise<number> | undefined;
    const now = Date.now();
    if (now - this.lastVisibleRestore >= this.ctx.restoreVisibleIntervalMs) {
      this.lastVisibleRestore = now;
      visible = scripts.restoreVisible.run(redis, [UNACKED, UNACKED_INDEX, UNACKED_MUTEX], [randomUUID(), this.ctx.visibilityTimeout, DEAD_BATCH]);
      // At the same (rare) cadence: counts a Python worker's ack left behind.
      void this.sweepRedeliveries().catch((err) => this.log.debug({ err }, 'Sweeping redelivery counts failed; will retry'));
    }
    const [promotedFirst] = await Promise.all([promoting, restoring, visible]);
    let promoted = promotedFirst;
    for (let round = 0; promoted === PROMOTE_BATCH && round < 20; round++) {
      promoted = await scripts.promoteDeferred.run(redis, [UNACKED, UNACKED_INDEX, DEFERRED], [PROMOTE_BATCH, ...steps]);
    }
  }

  /**
   * Stop blocking, let pending acks land (retried up to `ACK_RETRY_AFTER_CLOSE_MS`),
   * give back what this consumer still holds, stop beating.
   */
  close(): Promise<void> {
    return (this.closed ??= this.shutdown());
  }

  private async shutdown(): Promise<void> {
    this.closing = true;
    this.closedAt = Date.now();
    for (const watcher of this.watchers.values()) dropRedisClient(watcher.connection);
    // A queued reserve whose reply came but was not handed out: give it back untouched
    // (not as lost: retire below would count a redelivery for each).
    const queued = this.queuedReserve;
    this.queuedReserve = null;
    if (queued?.fired) {
      const got = await queued.taken;
      if (got.length > 0) await this.restore(got).catch((err: unknown) => this.log.debug({ err }, 'Giving back a queued reserve at close failed; retire restores it'));
    }
    // No more fanout copies pushed for this consumer (copies go to the shared queue list, so nothing waits on it).
    void this.feed?.close().catch((err: unknown) => this.log.debug({ err }, 'Closing the fanout subscription failed'));
    // Pending acks first (retried up to ACK_RETRY_AFTER_CLOSE_MS): an ack that lands now
    // keeps a finished task from being given back below.
    await Promise.allSettled([...this.pendingAcks]);
    // Not connected, or the connection drops while the last reserve is pending: fail what is
    // queued for it instead of waiting on the client's reconnects.
    const lost = whenRedisLost(this.ctx.redis);
    await Promise.race([this.reserveLock, lost.promise]);
    lost.cancel();
    if (this.ctx.redis.status !== 'ready') dropRedisClient(this.ctx.redis);
    // Bounded: liveness must stop (and the thread end) even if a reserve never settles.
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([this.reserveLock, new Promise((resolve) => (timer = setTimeout(resolve, RESERVE_SETTLE_AT_CLOSE_MS)))]);
    clearTimeout(timer);
    await this.heartbeats.stop();
    if (this.ctx.redis.status === 'ready') await scripts.retireConsumer.run(this.ctx.redis, [UNACKED, UNACKED_INDEX, CONSUMERS], [this.id]);
  }
}

/** ackMessages' ARGV: tag, lease, "1" when the message has a redelivery count to forget. */
function ackArgs(deliveries: readonly Delivery[]): string[] {
  const args: string[] = [];
  for (const d of deliveries) args.push(d.deliveryTag, d.lease ?? '', d.redeliveries ? '1' : '0');
  return args;
}

/**
 * A reserved message as a `Delivery`. `sizeBytes` is the envelope's size on Redis; over
 * `maxBytes` the script sent its task id (or "") in place of the envelope.
 */
function toDelivery(raw: string, deliveryTag: string, queue: string, lease: string, redeliveries: number, sizeBytes: number, maxBytes: number): Delivery {
  if (sizeBytes > maxBytes) {
    const decodeError = new MessageTooLarge(`${sizeBytes} bytes > ${maxBytes}: rejected before it was read from Redis.`);
    const tooLarge: Delivery = { message: null, decodeError, sizeBytes, queue, exchange: '', routingKey: queue, deliveryTag, lease, redelivered: false, redeliveries };
    if (raw) tooLarge.taskId = raw;
    return tooLarge;
  }
  try {
    const decoded = decodeEnvelope(raw);
    return { message: decoded.message, sizeBytes, queue, exchange: decoded.exchange, routingKey: decoded.routingKey, deliveryTag, lease, redelivered: decoded.redelivered, redeliveries };
  } catch (err) {
    const decodeError = err instanceof Error ? err : new MessageDecodeError(String(err));
    return { message: null, decodeError, sizeBytes, queue, exchange: '', routingKey: queue, deliveryTag, lease, redelivered: false, redeliveries };
  }
}

/** Write `command` on `watcher`'s connection, tracked until answered (see `ListWatcher.unanswered`). */
function sendOn(watcher: ListWatcher, command: Command): Promise<unknown> {
  watcher.unanswered.add(command);
  const answered = () => void watcher.unanswered.delete(command);
  command.promise.then(answered, answered);
  void watcher.connection.sendCommand(command);
  return command.promise;
}
