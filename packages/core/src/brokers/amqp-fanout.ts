/**
 * Remote control (kombu's pidbox) and events over RabbitMQ: the `ControlChannel` of
 * the AMQP transport, declaring everything exactly as Celery 5.2 / kombu do, so
 * Python and Celeriac peers share the same exchanges and queues:
 *
 * - `celery.pidbox`: fanout exchange, non-durable. Each worker consumes its own
 *   queue `<node>.celery.pidbox` (non-durable, auto-delete, `x-message-ttl` 300000,
 *   `x-expires` 10000: Celery's `control_queue_ttl` 300 s / `control_queue_expires`
 *   10 s in ms, as kombu's `maybe_s_to_ms` writes them), without acks.
 * - `reply.celery.pidbox`: direct exchange, non-durable. A requester consumes
 *   `<oid>.reply.celery.pidbox` bound under `<oid>` (same queue arguments); workers
 *   publish `{"<node>": reply}` there.
 * - `celeryev`: topic exchange, durable (kombu's `Exchange('celeryev',
 *   type='topic')`), routing keys `worker.heartbeat`, `task.multi`, ... A receiver
 *   consumes `celeryev.<uuid>` bound with `#` (non-durable, auto-delete,
 *   `x-message-ttl` 5000, `x-expires` 60000: `event_queue_ttl` / `event_queue_expires`).
 *
 * Revoked ids are kept in the stream queue `celeriac.revoked` (amqp-revoked.ts).
 *
 * Messages travel in native AMQP fields (amqp-codec.ts). Subscriptions come back
 * on their own after a reconnection (queue declared, bound and consumed again);
 * publishes wait up to the connect timeout for a connection, like task publishes.
 */
import type { Channel, ConsumeMessage, Options } from 'amqplib';
import { REPLY_EXCHANGE } from '../control/pidbox-message.js';
import { EVENT_EXCHANGE } from '../events/event-message.js';
import type { TaskMessage } from '../protocol/message.js';
import type { ControlChannel, ReplyQueue, SubscribeOptions } from './broker.js';
import { amqpHeaders, decodeDelivery } from './amqp-codec.js';
import type { AmqpConnection } from './amqp-connection.js';
import { AmqpConnectionError } from './amqp-connection.js';
import { AmqpRevokedStream } from './amqp-revoked.js';

/** How Celery declares one exchange and the queues its subscribers read from it. */
export interface ExchangeSpec {
  type: 'fanout' | 'topic' | 'direct';
  durable: boolean;
  /** Binding key of a subscriber's queue. */
  bindingKey: string;
  /** `x-message-ttl` of a subscriber's queue, ms. */
  messageTtlMs: number;
  /** `x-expires` of a subscriber's queue, ms. */
  expiresMs: number;
}

const PIDBOX_QUEUE = { messageTtlMs: 300_000, expiresMs: 10_000 };

/** The exchange declarations Celery 5.2 uses (unknown names: a non-durable fanout, as a pidbox). */
export function exchangeSpec(exchange: string): ExchangeSpec {
  if (exchange === EVENT_EXCHANGE) return { type: 'topic', durable: true, bindingKey: '#', messageTtlMs: 5_000, expiresMs: 60_000 };
  if (exchange === REPLY_EXCHANGE || exchange.startsWith('reply.')) return { type: 'direct', durable: false, bindingKey: '', ...PIDBOX_QUEUE };
  return { type: 'fanout', durable: false, bindingKey: '', ...PIDBOX_QUEUE };
}

/** Arguments of a subscriber's queue, as kombu sends them. */
function queueOptions(spec: ExchangeSpec): Options.AssertQueue {
  return { durable: false, autoDelete: true, exclusive: false, arguments: { 'x-expires': spec.expiresMs, 'x-message-ttl': spec.messageTtlMs } };
}

/** amqplib publish options for a control or event message. */
function publishOptionsOf(message: TaskMessage): Options.Publish {
  const mode = message.properties.delivery_mode;
  return {
    contentType: message.contentType,
    contentEncoding: message.contentEncoding,
    headers: amqpHeaders(message.headers) as Options.Publish['headers'],
    deliveryMode: typeof mode === 'number' ? mode : 1,
  };
}

type Listener = (message: TaskMessage, routingKey: string) => void;

interface Subscription {
  exchange: string;
  queue: string;
  listener: Listener;
  channel?: Channel;
  /** The connection generation `channel` consumes on. */
  generation?: number;
  stopped: boolean;
}

/** The AMQP transport's broadcast/reply channel (see the top of this file). */
export class AmqpControlChannel implements ControlChannel {
  private publisher: Promise<Channel> | undefined;
  private readonly subscriptions = new Set<Subscription>();
  private readonly replyChannels = new Set<Channel>();
  /** Exchanges declared on each publish channel (declared once per channel, not per publish). */
  private readonly declared = new WeakMap<Channel, Set<string>>();
  private closed = false;
  /** Where revoked ids outlive the workers (beyond Celery). */
  private readonly revokedStream: AmqpRevokedStream;
  private readonly onLost = () => (this.publisher = undefined);
  private readonly onConnected = () => {
    if (this.closed) return;
    for (const sub of this.subscriptions) void this.consume(sub).catch(() => undefined);
  };

  constructor(
    private readonly connection: AmqpConnection,
    private readonly displayUrl: string,
    private readonly connectTimeoutMs: number,
  ) {
    connection.on('connected', this.onConnected);
    connection.on('lost', this.onLost);
    this.revokedStream = new AmqpRevokedStream(connection, displayUrl, connectTimeoutMs);
  }

  private async openChannel(): Promise<Channel> {
    if (this.closed) throw new AmqpConnectionError(`The control channel to ${this.displayUrl} is closed`);
    if (!this.connection.live) await this.connection.whenConnected(this.connectTimeoutMs);
    const ch = await this.connection.require().createChannel();
    ch.on('error', () => undefined); // reported through the failed operation
    return ch;
  }

  private publishChannel(): Promise<Channel> {
    if (this.publisher) return this.publisher;
    const opening = this.openChannel().then((ch) => {
      ch.on('close', () => {
        if (this.publisher === opening) this.publisher = undefined;
      });
      return ch;
    });
    opening.catch(() => {
      if (this.publisher === opening) this.publisher = undefined;
    });
    return (this.publisher = opening);
  }

  private static async declareExchange(ch: Channel, exchange: string): Promise<void> {
    const spec = exchangeSpec(exchange);
    await ch.assertExchange(exchange, spec.type, { durable: spec.durable, autoDelete: false });
  }

  /** Declare the exchange (as kombu's `declare=[exchange]`) and publish; waits for a full socket buffer to drain. */
  private async publish(exchange: string, routingKey: string, message: TaskMessage): Promise<void> {
    const ch = await this.publishChannel();
    try {
      let declared = this.declared.get(ch);
      if (!declared) this.declared.set(ch, (declared = new Set()));
      if (!declared.has(exchange)) {
        await AmqpControlChannel.declareExchange(ch, exchange);
        declared.add(exchange);
      }
      if (!ch.publish(exchange, routingKey, message.body, publishOptionsOf(message))) {
        // A full socket buffer: wait for it to drain (or for the channel to go, when the publish is lost anyway).
        await new Promise<void>((resolve) => {
          ch.once('drain', resolve);
          ch.once('close', resolve);
        });
      }
    } catch (err) {
      throw new AmqpConnectionError(`Could not publish to exchange ${JSON.stringify(exchange)} on ${this.displayUrl}: ${(err as Error).message}`);
    }
  }

  async subscribe(exchange: string, onMessage: Listener, options: SubscribeOptions = {}): Promise<() => Promise<void>> {
    const queue = options.queue ?? `${exchange}.${Math.random().toString(36).slice(2)}`;
    const sub: Subscription = { exchange, queue, listener: onMessage, stopped: false };
    this.subscriptions.add(sub);
    try {
      await this.consume(sub);
    } catch (err) {
      this.subscriptions.delete(sub);
      throw err;
    }
    return async () => {
      sub.stopped = true;
      this.subscriptions.delete(sub);
      const ch = sub.channel;
      sub.channel = undefined;
      // Cancelling the only consumer deletes the auto-delete queue (kombu's behaviour too).
      if (ch) await ch.close().catch(() => undefined);
    };
  }

  /**
   * Declare, bind and consume a subscription's queue on a channel of its own; again
   * after a reconnection, or a second after the channel alone was closed (a channel
   * error, the queue deleted by an operator).
   */
  private async consume(sub: Subscription): Promise<void> {
    if (sub.stopped || this.closed) return;
    if (sub.channel && sub.generation === this.connection.generation) return; // consuming on the live connection
    const spec = exchangeSpec(sub.exchange);
    const ch = await this.openChannel();
    const generation = this.connection.generation;
    try {
      await AmqpControlChannel.declareExchange(ch, sub.exchange);
      await ch.assertQueue(sub.queue, queueOptions(spec));
      await ch.bindQueue(sub.queue, sub.exchange, spec.bindingKey);
      await ch.consume(
        sub.queue,
        (msg: ConsumeMessage | null) => {
          if (!msg || sub.stopped) return;
          sub.listener(decodeDelivery(msg), msg.fields.routingKey);
        },
        { noAck: true },
      );
      if (sub.stopped || this.closed) {
        await ch.close().catch(() => undefined);
        return;
      }
      sub.channel = ch;
      sub.generation = generation;
      ch.on('close', () => {
        if (sub.channel !== ch) return;
        sub.channel = undefined;
        if (sub.stopped || this.closed) return;
        // A lost connection comes back through 'connected'; a channel closed on its own is reopened here.
        setTimeout(() => {
          if (this.connection.live && !sub.channel) void this.consume(sub).catch(() => undefined);
        }, 1_000).unref();
      });
    } catch (err) {
      await ch.close().catch(() => undefined);
      throw new AmqpConnectionError(`Could not consume ${JSON.stringify(sub.queue)} from exchange ${JSON.stringify(sub.exchange)} on ${this.displayUrl}: ${(err as Error).message}`);
    }
  }

  publishFanout(exchange: string, message: TaskMessage, routingKey = ''): Promise<void> {
    return this.publish(exchange, routingKey, message);
  }

  publishDirect(exchange: string, routingKey: string, message: TaskMessage): Promise<void> {
    return this.publish(exchange, routingKey, message);
  }

  async openReplyQueue(exchange: string, routingKey: string): Promise<ReplyQueue> {
    const queue = `${routingKey}.${exchange}`;
    const ch = await this.openChannel();
    this.replyChannels.add(ch);
    const items: TaskMessage[] = [];
    let waiter: ((m: TaskMessage | null) => void) | undefined;
    let closed = false;
    const wake = (m: TaskMessage | null) => {
      const w = waiter;
      waiter = undefined;
      w?.(m);
    };
    ch.on('close', () => wake(null));
    try {
      await AmqpControlChannel.declareExchange(ch, exchange);
      await ch.assertQueue(queue, queueOptions(exchangeSpec(exchange)));
      await ch.bindQueue(queue, exchange, routingKey);
      await ch.consume(
        queue,
        (msg) => {
          if (!msg) return;
          const message = decodeDelivery(msg);
          if (waiter) wake(message);
          else items.push(message);
        },
        { noAck: true },
      );
    } catch (err) {
      this.replyChannels.delete(ch);
      await ch.close().catch(() => undefined);
      throw new AmqpConnectionError(`Could not open the reply queue ${JSON.stringify(queue)} on ${this.displayUrl}: ${(err as Error).message}`);
    }
    return {
      next: (timeoutMs) => {
        const item = items.shift();
        if (item) return Promise.resolve(item);
        if (closed) return Promise.resolve(null);
        return new Promise<TaskMessage | null>((resolve) => {
          const timer = setTimeout(() => wake(null), timeoutMs);
          waiter = (m) => {
            clearTimeout(timer);
            resolve(m);
          };
        });
      },
      close: async () => {
        if (closed) return;
        closed = true;
        wake(null);
        this.replyChannels.delete(ch);
        await ch.deleteQueue(queue).catch(() => undefined);
        await ch.close().catch(() => undefined);
      },
    };
  }

  /** Append to the `celeriac.revoked` stream, confirmed (nothing when RabbitMQ has no streams: one warning). */
  persistRevoked(ids: readonly string[], expiresAtMs: number): Promise<void> {
    return this.revokedStream.persist(ids, expiresAtMs);
  }

  /** Read the `celeriac.revoked` stream up to now; unexpired ids only. */
  loadRevoked(): Promise<Map<string, number>> {
    return this.revokedStream.load();
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.revokedStream.close();
    this.connection.off('connected', this.onConnected);
    this.connection.off('lost', this.onLost);
    const channels = [...this.subscriptions].map((s) => s.channel);
    for (const sub of this.subscriptions) sub.stopped = true;
    this.subscriptions.clear();
    const publisher = this.publisher;
    this.publisher = undefined;
    await Promise.all([...channels, ...this.replyChannels].map((ch) => ch?.close().catch(() => undefined)));
    this.replyChannels.clear();
    if (publisher) await (await publisher.catch(() => undefined))?.close().catch(() => undefined);
  }
}
