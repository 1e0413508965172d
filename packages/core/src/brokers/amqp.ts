/**
 * RabbitMQ transport (AMQP 0-9-1 through amqplib), wire-compatible with Celery 5.2
 * on py-amqp: task messages in native AMQP fields (amqp-codec.ts), Celery's
 * topology — queue `celery` bound to the direct exchange `celery` with key
 * `celery`, durable; task messages published persistent to the default exchange
 * `""` with the queue as routing key unless a route names an exchange — and
 * `taskQueues` / `taskCreateMissingQueues` / `taskQueueMaxPriority` declared as
 * Celery declares them (queue-topology.ts).
 *
 * Publishing uses a confirm channel: `publish` resolves once RabbitMQ has the
 * message (persisted, for a durable queue), rejects with `AmqpConnectionError`
 * when the connection is gone (the app retries per `taskPublishRetryPolicy`), or
 * with a clear `AmqpChannelError` for a missing or mismatched queue/exchange.
 *
 * Connection string: `amqp://user:password@host:5672/vhost` (`amqps://` TLS,
 * `pyamqp://` accepted), or several joined by `;` for failover. Transport options:
 * `heartbeat` (s, 60), `socketOptions` (amqplib/TLS socket options).
 *
 * Far-future ETA messages are parked (`Consumer.defer`) in delay queues
 * `celeriac.delay.<ms>`: each holds messages for one power-of-two number of
 * milliseconds (`x-message-ttl`), so every message in it expires in arrival order,
 * and dead-letters them back to their queue through the default exchange (their
 * routing key is the queue name). The level is the largest power of two not
 * beyond the remaining delay, so a message never comes back late; it comes back
 * early at most log2(delay) times and is parked again, or held in memory once due
 * soon. What comes back is the original message, so Python workers run it too.
 */
import type { Channel, ChannelModel, ConfirmChannel, Message, Options } from 'amqplib';
import { maskUrl } from '../mask-url.js';
import type { TaskMessage } from '../protocol/message.js';
import type { ConnectionEvents } from '../redis-client.js';
import type { Broker, Consumer, ConsumerOptions, ControlChannel, PublishItem, Route } from './broker.js';
import { AmqpControlChannel } from './amqp-fanout.js';
import { publishOptions, republishOptions } from './amqp-codec.js';
import { AmqpConnection, AmqpConnectionError } from './amqp-connection.js';
import { AmqpConsumer } from './amqp-consumer.js';
import { AmqpChannelError, explainChannelError } from './amqp-errors.js';
import { parseAmqpUrls } from './amqp-url.js';
import { DEFAULT_BROKER_ROUTING, QueueTopology, type BrokerRouting, type QueueDeclaration } from './queue-topology.js';

/** Options of the AMQP transport. */
export interface AmqpBrokerOptions {
  /** Settings-derived routing (queues to declare). Default: Celery's default queue only. */
  routing?: BrokerRouting;
  /** AMQP heartbeat, seconds. Default 60. */
  heartbeat?: number;
  /** Connect timeout per attempt, ms. Default 4000. */
  connectTimeoutMs?: number;
  /**
   * Extra amqplib socket options (TLS `ca`, `cert`, `key`...). `noDelay` defaults to
   * true (TCP_NODELAY, as py-amqp sets it): with Nagle's algorithm on, small frames
   * (acks, QoS, publishes) wait for the peer's delayed TCP ACK, up to 40 ms on Linux.
   */
  socketOptions?: Record<string, unknown>;
  connectionEvents?: ConnectionEvents;
  [option: string]: unknown;
}


/** Prefix of the ETA delay queues and their exchanges. */
export const DELAY_PREFIX = 'celeriac.delay.';
/** Longest single park: 2^35 ms ≈ 1.1 years (a longer ETA is parked again when it comes back). */
const MAX_DELAY_LEVEL_MS = 2 ** 35;

/** The delay level (ms, a power of two) for a message due in `delayMs`. */
export function delayLevel(delayMs: number): number {
  if (!(delayMs >= 1)) return 1;
  return Math.min(2 ** Math.floor(Math.log2(delayMs)), MAX_DELAY_LEVEL_MS);
}

/** Publish on a confirm channel; resolves on the broker's ack. */
function confirmPublish(ch: ConfirmChannel, exchange: string, routingKey: string, content: Buffer, options: Options.Publish): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    try {
      ch.publish(exchange, routingKey, content, options, (err: unknown) => (err ? reject(err) : resolve()));
    } catch (err) {
      reject(err);
    }
  });
}

/** A RabbitMQ broker connection (see the file comment). */
export class AmqpBroker implements Broker {
  readonly displayUrl: string;
  readonly topology: QueueTopology;
  readonly connection: AmqpConnection;
  private publisher: Promise<ConfirmChannel> | undefined;
  private publisherError: Error | undefined;
  private admin: Promise<Channel> | undefined;
  /** Names declared on the current connection generation. */
  private declared = new Map<string, Promise<void>>();
  private declaredGeneration = -1;
  private readonly consumers = new Set<AmqpConsumer>();
  private readonly controlChannels = new Set<AmqpControlChannel>();
  private readonly connectTimeoutMs: number;

  constructor(url: string, options: AmqpBrokerOptions = {}) {
    this.displayUrl = maskUrl(url);
    this.connectTimeoutMs = options.connectTimeoutMs ?? 4000;
    this.topology = new QueueTopology(options.routing ?? DEFAULT_BROKER_ROUTING);
    const endpoints = parseAmqpUrls(url, { heartbeatSeconds: typeof options.heartbeat === 'number' ? options.heartbeat : undefined });
    this.connection = new AmqpConnection(endpoints, { connectTimeoutMs: options.connectTimeoutMs, events: options.connectionEvents, socketOptions: { noDelay: true, ...options.socketOptions } });
    this.connection.on('lost', () => {
      this.publisher = undefined;
      this.admin = undefined;
    });
  }

  whenConnected(timeoutMs: number): Promise<boolean> {
    return this.connection.whenConnected(timeoutMs);
  }

  /** The live connection; waits up to the connect timeout for one being opened, then `AmqpConnectionError`. */
  private async model(): Promise<ChannelModel> {
    if (!this.connection.live) await this.connection.whenConnected(this.connectTimeoutMs);
    return this.connection.require();
  }

  /** The confirm channel of the live connection (opened on first use). */
  private async publishChannel(): Promise<ConfirmChannel> {
    if (this.publisher) return this.publisher;
    const model = await this.model();
    if (this.publisher) return this.publisher;
    const opening = model.createConfirmChannel().then((ch) => {
      ch.on('error', (err: Error) => (this.publisherError = err));
      ch.on('close', () => {
        if (this.publisher === opening) this.publisher = undefined;
      });
      this.publisherError = undefined;
      return ch;
    });
    opening.catch(() => {
      if (this.publisher === opening) this.publisher = undefined;
    });
    return (this.publisher = opening);
  }

  /** Forget `ch` as the publish channel and close it (the next publish opens another). */
  private dropPublishChannel(ch: ConfirmChannel): void {
    void this.publisher?.then((current) => {
      if (current !== ch) return;
      this.publisher = undefined;
      ch.close().catch(() => undefined);
    });
  }

  /** A plain channel for declarations and checks (a channel error closes it; the next call opens another). */
  private async adminChannel(): Promise<Channel> {
    if (this.admin) return this.admin;
    const model = await this.model();
    if (this.admin) return this.admin;
    const opening = model.createChannel().then((ch) => {
      ch.on('error', () => undefined); // reported through the failed operation
      ch.on('close', () => {
        if (this.admin === opening) this.admin = undefined;
      });
      return ch;
    });
    opening.catch(() => {
      if (this.admin === opening) this.admin = undefined;
    });
    return (this.admin = opening);
  }

  /** Run one operation on the admin channel, translating channel errors. */
  async onAdmin<T>(what: string, queue: string | undefined, op: (ch: Channel) => Promise<T>): Promise<T> {
    const ch = await this.adminChannel();
    try {
      return await op(ch);
    } catch (err) {
      if (!this.connection.live) throw new AmqpConnectionError(`Connection to ${this.displayUrl} lost while trying to ${what}`);
      throw explainChannelError(err, { queue, what });
    }
  }

  /** Declare once per connection (cached; a failure is not cached). */
  private once(key: string, declare: () => Promise<void>): Promise<void> {
    if (this.declaredGeneration !== this.connection.generation) {
      this.declared = new Map();
      this.declaredGeneration = this.connection.generation;
    }
    let p = this.declared.get(key);
    if (!p) {
      p = declare();
      this.declared.set(key, p);
      p.catch(() => this.declared.delete(key));
    }
    return p;
  }

  /**
   * Make sure `queue` exists: declare it (exchange, queue, bindings) as
   * `taskQueues` / kombu's `Queue(name)` says, or, when it is not configured and
   * `taskCreateMissingQueues` is off, check it exists (clear 404 otherwise).
   */
  ensureQueue(queue: string): Promise<void> {
    return this.once(`q:${queue}`, async () => {
      const decl = this.topology.declaration(queue);
      if (!decl) {
        await this.onAdmin(`use queue ${JSON.stringify(queue)}`, queue, (ch) => ch.checkQueue(queue));
        return;
      }
      await this.declareQueue(decl);
    });
  }

  private async declareQueue(decl: QueueDeclaration): Promise<void> {
    const what = `declare queue ${JSON.stringify(decl.name)}`;
    await this.onAdmin(what, decl.name, async (ch) => {
      for (const b of decl.bindings) await ch.assertExchange(b.exchange, b.exchangeType, { durable: true, autoDelete: false });
      await ch.assertQueue(decl.name, { durable: decl.durable, autoDelete: decl.autoDelete, arguments: decl.arguments });
      for (const b of decl.bindings) await ch.bindQueue(decl.name, b.exchange, b.routingKey);
    });
  }

  /** Declare what a route needs before publishing (Celery's `declare=[queue]`). */
  private async prepare(route: Route): Promise<void> {
    if (route.queue !== undefined) await this.ensureQueue(route.queue);
    if (route.exchange === '') {
      if (route.queue === undefined) await this.ensureQueue(route.routingKey);
      return;
    }
    const type = this.topology.exchangeType(route.exchange);
    if (type) {
      // Every configured queue bound to this exchange, so a topic or fanout publish reaches them all.
      for (const q of this.topology.configuredQueues) {
        if (q.bindings.some((b) => b.exchange === route.exchange)) await this.ensureQueue(q.name);
      }
      return;
    }
    await this.once(`x:${route.exchange}`, () =>
      this.onAdmin(`publish to exchange ${JSON.stringify(route.exchange)}`, undefined, (ch) => ch.checkExchange(route.exchange)).then(() => undefined),
    );
  }

  private async send(exchange: string, routingKey: string, content: Buffer, options: Options.Publish): Promise<void> {
    const ch = await this.publishChannel();
    try {
      await confirmPublish(ch, exchange, routingKey, content, options);
    } catch (err) {
      const channelErr = this.publisherError;
      if (channelErr && typeof (channelErr as { code?: unknown }).code === 'number' && this.connection.live) {
        throw explainChannelError(channelErr, { what: `publish to exchange ${JSON.stringify(exchange)} with routing key ${JSON.stringify(routingKey)}` });
      }
      if (err instanceof AmqpChannelError) throw err;
      // A nack on a live channel: RabbitMQ refused the message (e.g. a quorum queue whose
      // leader died while this channel published to it: RabbitMQ 3.10 keeps nacking on that
      // channel after a new leader is elected). The retry goes out on a fresh channel.
      if (this.connection.live) this.dropPublishChannel(ch);
      throw new AmqpConnectionError(`Publish to ${this.displayUrl} not confirmed: ${(err as Error)?.message ?? err}`);
    }
  }

  async publish(message: TaskMessage, route: Route): Promise<void> {
    await this.model();
    await this.prepare(route);
    await this.send(route.exchange, route.routingKey, message.body, publishOptions(message, route));
  }

  async publishMany(batch: readonly PublishItem[]): Promise<void> {
    await this.model();
    const seen = new Set<string>();
    for (const { route } of batch) {
      const key = `${route.queue ?? ''}\0${route.exchange}\0${route.routingKey}`;
      if (seen.has(key)) continue;
      seen.add(key);
      await this.prepare(route);
    }
    await Promise.all(batch.map(({ message, route }) => this.send(route.exchange, route.routingKey, message.body, publishOptions(message, route))));
  }

  /** Park a received message for `delayMs` (see the file comment), confirmed before resolving. */
  async publishDelayed(queue: string, msg: Message, delayMs: number): Promise<void> {
    const level = delayLevel(delayMs);
    const name = `${DELAY_PREFIX}${level}`;
    await this.once(`d:${name}`, () =>
      this.onAdmin(`declare the delay queue ${name}`, name, async (ch) => {
        await ch.assertExchange(name, 'fanout', { durable: true, autoDelete: false });
        await ch.assertQueue(name, { durable: true, autoDelete: false, arguments: { 'x-message-ttl': level, 'x-dead-letter-exchange': '' } });
        await ch.bindQueue(name, name, '');
      }),
    );
    await this.send(name, queue, msg.content, republishOptions(msg));
  }

  /** Publish a raw payload (result messages of the rpc backend), confirmed. */
  async publishRaw(exchange: string, routingKey: string, content: Buffer, options: Options.Publish): Promise<void> {
    await this.model();
    return this.send(exchange, routingKey, content, options);
  }

  async openConsumer(queues: readonly string[], options: ConsumerOptions = {}): Promise<Consumer> {
    if (!(await this.connection.whenConnected(30_000))) {
      throw new AmqpConnectionError(`Cannot consume from ${this.displayUrl}: not connected (${this.connection.lastFailure ?? 'no answer'})`);
    }
    for (const q of queues) await this.ensureQueue(q);
    const consumer = new AmqpConsumer(this, queues, options, () => this.consumers.delete(consumer));
    this.consumers.add(consumer);
    return consumer;
  }

  async purge(queues: readonly string[]): Promise<number> {
    let total = 0;
    for (const q of queues) total += await this.ifQueueExists(q, (ch) => ch.purgeQueue(q).then((r) => r.messageCount));
    return total;
  }

  async queueLength(queue: string): Promise<number> {
    return this.ifQueueExists(queue, (ch) => ch.checkQueue(queue).then((r) => r.messageCount));
  }

  /** Run `op` on `queue`, or return 0 when it does not exist (like an empty Redis list). */
  private async ifQueueExists(queue: string, op: (ch: Channel) => Promise<number>): Promise<number> {
    try {
      return await this.onAdmin(`inspect queue ${JSON.stringify(queue)}`, queue, op);
    } catch (err) {
      if (err instanceof AmqpChannelError && err.code === 404) return 0;
      throw err;
    }
  }

  /** Celery's pidbox and `celeryev` exchanges on RabbitMQ (see amqp-fanout.ts). */
  async openControlChannel(): Promise<ControlChannel> {
    const channel = new AmqpControlChannel(this.connection, this.displayUrl, this.connectTimeoutMs);
    this.controlChannels.add(channel);
    return channel;
  }

  async close(): Promise<void> {
    for (const c of [...this.controlChannels]) await c.close();
    this.controlChannels.clear();
    for (const c of [...this.consumers]) await c.close();
    await this.connection.close();
  }
}
