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
 * TLS (certificates through the `redis` option). The db is the URL path. Redis
 * Sentinel: `sentinel://host:26379;sentinel://host2:26379` with `masterName`; then
 * a publish resolves only once a replica has it (`waitForReplicas`, see
 * redis-replication.ts).
 *
 * Options (`RedisBrokerOptions`, also reachable as `broker_transport_options`):
 * `visibilityTimeout` (s, 3600), `prioritySteps` ([0, 3, 6, 9]),
 * `restoreVisibleIntervalMs` (30 000), `bindingCacheMs`
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
 * - `_celeriac.owned.<consumer>` — set of `<lease>\x06\x16<tag>`: the reservations a
 *   consumer holds unacked (a settle acts only if its member is still there).
 * - `_celeriac.inflight.<consumer>` — written by earlier Celeriac versions only (a blocked
 *   consumer BLMOVEd into it); still restored when such a consumer dies.
 * - `_celeriac.eta` — zset `<lease>\x06\x16<unacked entry>` → due unix ms, Redis clock (deferred messages).
 * - `_celeriac.redeliveries` — hash tag → times restored after its holder died or
 *   stalled (dead-consumer and visibility restores); cleared by the ack.
 * - `_celeriac.redeliveries.at` — zset tag → when that count last changed (Redis ms): a
 *   count a Python worker's ack left behind is deleted by upkeep after a day if nobody
 *   holds its message (`sweepRedeliveries`).
 *
 * A consumer waiting for messages never moves one: one blocking connection per ready
 * list (every priority list of every consumed queue) runs `BLMOVE list list LEFT
 * LEFT`, which returns when the list is non-empty and leaves it as it was; the
 * reserve script then takes the messages into `unacked`.
 *
 * Consuming goes through `openConsumer` (see redis-consumer.ts): each consumer's
 * heartbeats refresh its unacked_index scores (so a Python worker's visibility
 * restore never steals from a live Celeriac worker); its upkeep promotes due
 * deferred messages, restores dead consumers' messages and, every
 * `restoreVisibleIntervalMs`, runs kombu's visibility-timeout restore.
 * Deferred messages are promoted only by Celeriac consumers.
 *
 * Routing (`taskQueues`, exchanges): kombu's emulation, see redis-exchange.ts. Queues
 * are declared (their `_kombu.binding.*` members written) when consumed and before a
 * send to them; a named exchange's type comes from `taskQueues` (kombu's default
 * `direct` otherwise); fanout goes through PUBLISH (redis-fanout-inlet.ts).
 */
import type { Pipeline, Redis, RedisOptions } from 'ioredis';
import { closeRedisClient, createRedisClient, whenRedisReady, type ConnectionEvents } from '../redis-client.js';
import { resolveRedisConnection } from '../redis-connection.js';
import { ReplicationBarrier, replicaWaitFrom } from '../redis-replication.js';
import type { SentinelKwargs } from '../redis-sentinel.js';
import { ConfigurationError } from '../errors.js';
import { maskUrl } from '../mask-url.js';
import type { TaskMessage } from '../protocol/message.js';
import type { Broker, ConsumerOptions, ControlChannel, PublishItem, Route } from './broker.js';
import { RedisControlChannel } from './redis-fanout.js';
import { RedisConsumer, type RedisConsumerContext } from './redis-consumer.js';
import { encodeEnvelope, messagePriority } from './redis-envelope.js';
import { EnvelopeLpush } from './redis-lpush.js';
import { bindingSetKey, bindingWrites, fanoutChannel, fanoutSubscription, lookupQueues, parseBindingMember, type BindingRow } from './redis-exchange.js';
import { RedisFanoutInlet } from './redis-fanout-inlet.js';
import { DEFAULT_BROKER_ROUTING, QueueTopology, type BrokerRouting } from './queue-topology.js';
import type { QueueSpec } from '../config.js';

/** Options of the Redis transport. */
export interface RedisBrokerOptions {
  /** kombu `visibility_timeout`: seconds before anyone's unacked message is restored. Default 3600. */
  visibilityTimeout?: number;
  /** kombu `priority_steps`: ascending buckets, the first must be 0. Default [0, 3, 6, 9]. */
  prioritySteps?: number[];
  /** How often (ms) a consumer's upkeep also runs kombu's visibility-timeout restore. Default 30 000. */
  restoreVisibleIntervalMs?: number;
  /** How long (ms) the queues bound to a named exchange are cached. Default 5 000. */
  bindingCacheMs?: number;
  /** Extra ioredis options (TLS certificates, timeouts...). `keyPrefix` is refused. */
  redis?: RedisOptions;
  /** Where connection outages are reported (one line down, one on recovery). */
  connectionEvents?: ConnectionEvents;
  /** Settings-derived routing (`taskQueues`, default exchange...). Default: Celery's default queue only. */
  routing?: BrokerRouting;
  /** `sentinel://` URLs: the master group the sentinels watch (kombu's `master_name`, also accepted). Required there. */
  masterName?: string;
  /** `sentinel://` URLs: `{ password, username, socket_timeout }` for the sentinels (kombu's `sentinel_kwargs`). */
  sentinelKwargs?: SentinelKwargs;
  /** Replicas that must have a publish before it resolves (`WAIT`). Default 1 with `sentinel://`, 0 otherwise. */
  waitForReplicas?: number;
  /** How long a publish waits for them (ms). Default 1000. */
  waitForReplicasTimeoutMs?: number;
  /** Other `broker_transport_options` are accepted and ignored. */
  [option: string]: unknown;
}

const SEP = '\x06\x16';
/** Most values in one LPUSH of `publishMany` (keeps each command short for Redis). */
const LPUSH_CHUNK = 1000;

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
  /** Queues, exchanges and bindings from the settings. */
  readonly topology: QueueTopology;
  private readonly redis: Redis;
  private readonly ctx: RedisConsumerContext;
  private readonly bindingCacheMs: number;
  private readonly declared = new Set<string>();
  private readonly bindings = new Map<string, { at: number; rows: BindingRow[] }>();
  private readonly consumers = new Set<RedisConsumer>();
  private readonly controlChannels = new Set<RedisControlChannel>();
  private readonly db: number;
  /** `waitForReplicas`: publishes resolve once replicas have them (on by default with Sentinel). */
  private readonly replication: ReplicationBarrier | null;
  private closed: Promise<void> | undefined;

  constructor(
    private readonly url: string,
    options: RedisBrokerOptions = {},
  ) {
    this.displayUrl = maskUrl(url);
    const steps = [...(options.prioritySteps ?? [0, 3, 6, 9])].sort((a, b) => a - b);
    if (options.globalKeyprefix) throw new ConfigurationError('broker_transport_options.global_keyprefix is not supported by the Celeriac Redis transport yet; remove it (and from the Python side) or use a separate Redis db.');
    if (steps[0] !== 0) throw new ConfigurationError(`prioritySteps must start with 0 (kombu's bare queue list), got ${JSON.stringify(options.prioritySteps)}.`);
    this.bindingCacheMs = options.bindingCacheMs ?? 5_000;
    this.topology = new QueueTopology(options.routing ?? DEFAULT_BROKER_ROUTING);
    const connection = resolveRedisConnection(url, options.redis, options);
    this.db = connection.db;
    this.redis = createRedisClient(connection, { redis: { enableAutoPipelining: true, ...options.redis }, events: options.connectionEvents });
    const wait = replicaWaitFrom(options, connection.sentinel !== undefined, this.displayUrl);
    this.replication = wait && new ReplicationBarrier(this.redis, wait, this.displayUrl);
    this.ctx = {
      redis: this.redis,
      url,
      redisOptions: options.redis,
      sentinelOptions: connection.sentinel ? { masterName: connection.sentinel.masterName, sentinelKwargs: options.sentinelKwargs ?? options.sentinel_kwargs } : undefined,
      steps,
      visibilityTimeout: options.visibilityTimeout ?? 3600,
      restoreVisibleIntervalMs: options.restoreVisibleIntervalMs ?? 30_000,
    };
  }

  private get steps(): readonly number[] {
    return this.ctx.steps;
  }

  /** Open a consumer: it beats (liveness) and runs upkeep on its own until closed. */
  async openConsumer(queues: readonly string[], options: ConsumerOptions = {}): Promise<RedisConsumer> {
    if (this.closed) throw new Error('The Redis broker is closed; open consumers before closing it.');
    const inlet = new RedisFanoutInlet(this.redis, this.steps, options.log);
    const consumer = new RedisConsumer(this.ctx, queues, options, {
      add: (queue, spec) => this.startFeeding(inlet, queue, spec),
      remove: (queue) => inlet.remove(queue),
      close: () => inlet.close(),
    });
    this.consumers.add(consumer);
    try {
      for (const queue of queues) await this.startFeeding(inlet, queue);
    } catch (err) {
      await inlet.close();
      this.consumers.delete(consumer);
      throw err;
    }
    await consumer.start();
    return consumer;
  }

  /**
   * Declare a consumed queue (kombu's consumer declares it too) and, when it is bound
   * to a fanout exchange, subscribe to kombu's topic for it.
   */
  private async startFeeding(inlet: RedisFanoutInlet, queue: string, spec?: QueueSpec): Promise<void> {
    const decl = spec ? this.topology.define(spec) : this.topology.declaration(queue);
    if (!decl) return;
    await this.declareQueue(queue, true);
    for (const b of decl.bindings) if (b.exchangeType === 'fanout') await inlet.add(queue, fanoutSubscription(this.db, b.exchange, b.routingKey));
  }

  /** Write `queue`'s binding members as `taskQueues` / kombu's `Queue(name)` says (once per broker unless `force`). */
  private async declareQueue(queue: string, force = false): Promise<void> {
    if (this.declared.has(queue) && !force) return;
    const decl = this.topology.declaration(queue);
    this.declared.add(queue);
    if (!decl) return;
    try {
      await Promise.all(bindingWrites(decl).map(([key, member]) => this.redis.sadd(key, member)));
    } catch (err) {
      this.declared.delete(queue);
      throw err;
    }
  }

  /** Declare what a route needs: its queue, and every configured queue bound to its named exchange. */
  private async prepare(route: Route): Promise<void> {
    if (route.queue !== undefined) await this.declareQueue(route.queue);
    if (route.exchange === '') {
      if (route.queue === undefined && route.routingKey !== '') await this.declareQueue(route.routingKey);
      return;
    }
    if (this.declared.has(`x:${route.exchange}`)) return;
    for (const q of this.topology.configuredQueues) {
      if (q.bindings.some((b) => b.exchange === route.exchange)) await this.declareQueue(q.name);
    }
    this.declared.add(`x:${route.exchange}`);
  }

  /** Where a route's message goes: queue lists, or a fanout channel to PUBLISH on. */
  private async targets(route: Route): Promise<{ queues: string[] } | { channel: string }> {
    if (route.exchange === '') {
      if (route.routingKey === '') throw new ConfigurationError('Cannot publish to exchange "" with an empty routing key: name a queue.');
      return { queues: [route.routingKey] };
    }
    const type = this.topology.exchangeType(route.exchange) ?? 'direct';
    if (type === 'fanout') return { channel: fanoutChannel(this.db, route.exchange, route.routingKey) };
    return { queues: await this.queuesBoundTo(route.exchange, type, route.routingKey) };
  }

  /** kombu's fanout and reply emulation (remote control, events): see redis-fanout.ts. */
  async openControlChannel(): Promise<ControlChannel> {
    if (this.closed) throw new Error('The Redis broker is closed.');
    const channel = new RedisControlChannel(this.redis, this.db);
    this.controlChannels.add(channel);
    return channel;
  }

  /**
   * LPUSH the kombu envelope to the list of the message's priority of every queue
   * the route reaches (declaring them first), or PUBLISH it on a fanout exchange.
   */
  async publish(message: TaskMessage, route: Route): Promise<void> {
    const priority = messagePriority(message, route);
    const envelope = encodeEnvelope(message, route);
    if (route.exchange === '' && route.routingKey !== '' && this.declared.has(route.queue ?? route.routingKey)) {
      // The common case, declared already: one LPUSH.
      const lpush = new EnvelopeLpush(priorityListKey(route.routingKey, priority, this.steps), [envelope]);
      await this.redis.sendCommand(lpush);
      if (this.replication) await this.replication.afterWrites();
      return;
    }
    await this.prepare(route);
    const to = await this.targets(route);
    if ('channel' in to) {
      checkFanoutReceived(await this.redis.publish(to.channel, envelope), route);
      return;
    }
    await Promise.all(to.queues.map((queue) => this.redis.lpush(priorityListKey(queue, priority, this.steps), envelope)));
    if (this.replication) await this.replication.afterWrites();
  }

  /**
   * Publish a batch in one MULTI/EXEC pipeline (or, for up to 1,000 messages to
   * one list, one LPUSH): all of it lands or none of it.
   * Envelopes for the same list go in one LPUSH (up to 1,000 values each), in
   * order, so they are consumed in the order given; each envelope is what
   * `publish` writes for that message.
   */
  async publishMany(batch: readonly PublishItem[]): Promise<void> {
    if (batch.length === 0) return;
    const lists = new Map<string, string[]>();
    const fanouts: { channel: string; envelope: string; route: Route }[] = [];
    // Targets per distinct route of the batch (queues declared, bindings looked up once).
    const targetsOf = new Map<string, { queues: string[] } | { channel: string }>();
    for (const { message, route } of batch) {
      const priority = messagePriority(message, route);
      const envelope = encodeEnvelope(message, route);
      const routeKey = `${route.queue ?? ''}\0${route.exchange}\0${route.routingKey}`;
      let to = targetsOf.get(routeKey);
      if (!to) {
        await this.prepare(route);
        to = await this.targets(route);
        targetsOf.set(routeKey, to);
      }
      if ('channel' in to) {
        fanouts.push({ channel: to.channel, envelope, route });
        continue;
      }
      for (const queue of to.queues) {
        const key = priorityListKey(queue, priority, this.steps);
        let envelopes = lists.get(key);
        if (!envelopes) lists.set(key, (envelopes = []));
        envelopes.push(envelope);
      }
    }
    if (fanouts.length === 0 && lists.size === 1) {
      const [[key, envelopes]] = lists;
      if (envelopes.length <= LPUSH_CHUNK) {
        // One LPUSH is atomic by itself: no MULTI/EXEC around it, and its bytes go to the
        // socket as built (a pipeline copies all its commands into one more Buffer).
        await this.redis.sendCommand(new EnvelopeLpush(key, envelopes));
        if (this.replication) await this.replication.afterWrites();
        return;
      }
    }
    const multi = this.redis.multi();
    // multi() is typed as a ChainableCommander; it is a Pipeline, which takes Command objects.
    const pipeline = multi as unknown as Pipeline;
    for (const [key, envelopes] of lists) {
      // Each LPUSH's bytes built at once (see redis-lpush.ts): what multi.lpush(key, ...envelopes) sends.
      for (let i = 0; i < envelopes.length; i += LPUSH_CHUNK) pipeline.sendCommand(new EnvelopeLpush(key, envelopes.slice(i, i + LPUSH_CHUNK)));
    }
    for (const f of fanouts) multi.publish(f.channel, f.envelope);
    const results = await multi.exec();
    throwFirstError(results);
    const received = results!.slice(results!.length - fanouts.length);
    fanouts.forEach((f, i) => checkFanoutReceived(Number(received[i]![1]), f.route));
    if (this.replication) await this.replication.afterWrites();
  }

  /** Queues bound to a named direct or topic exchange that `routingKey` reaches (kombu's lookup), cached. */
  private async queuesBoundTo(exchange: string, type: 'direct' | 'topic', routingKey: string): Promise<string[]> {
    const cached = this.bindings.get(exchange);
    if (cached && Date.now() - cached.at < this.bindingCacheMs) {
      const queues = lookupQueues(type, cached.rows, routingKey);
      if (queues.length > 0) return queues;
    }
    const members = await this.redis.smembers(bindingSetKey(exchange));
    const rows = members.map(parseBindingMember).filter((r): r is BindingRow => r !== null);
    this.bindings.set(exchange, { at: Date.now(), rows });
    const queues = lookupQueues(type, rows, routingKey);
    if (queues.length === 0) {
      throw new ConfigurationError(
        `No queue is bound to ${type} exchange "${exchange}" with routing key "${routingKey}" (set _kombu.binding.${exchange} is ` +
          `${members.length ? 'missing that key' : 'empty'}). Declare the queue in taskQueues, start a worker consuming it first, or publish to exchange "" with the queue name as routing key.`,
      );
    }
    return queues;
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

  /** Resolves true once connected, false on the next connection error or after `timeoutMs`. */
  whenConnected(timeoutMs: number): Promise<boolean> {
    return whenRedisReady(this.redis, timeoutMs);
  }

  /** Close open consumers (each gives back what it holds), then the connection. */
  close(): Promise<void> {
    return (this.closed ??= this.shutdown());
  }

  private async shutdown(): Promise<void> {
    try {
      await Promise.all([...this.consumers].map((c) => c.close()));
      await Promise.all([...this.controlChannels].map((c) => c.close()));
    } finally {
      await closeRedisClient(this.redis);
    }
  }
}

/**
 * kombu's fanout is PUB/SUB: a message nobody is subscribed to is gone. Rather than
 * lose it silently, the send fails with the reason and the fix.
 */
function checkFanoutReceived(receivers: number, route: Route): void {
  if (receivers > 0) return;
  throw new ConfigurationError(
    `Nobody is subscribed to fanout exchange "${route.exchange}" (routing key "${route.routingKey}") on Redis: kombu's Redis fanout is PUBLISH/SUBSCRIBE, ` +
      'so the message would be lost. Start a worker consuming a queue bound to that exchange first (RabbitMQ keeps fanout copies in durable queues).',
  );
}

function throwFirstError(results: [Error | null, unknown][] | null): void {
  if (!results) throw new Error('Redis transaction was aborted.');
  for (const [err] of results) if (err) throw err;
}
