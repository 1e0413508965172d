/**
 * The RabbitMQ `Consumer`: amqplib pushes deliveries (`basic.consume`, manual
 * acks) into a local buffer and `reserve` hands them out, waiting up to its timeout
 * when the buffer is empty. Consuming starts at the first `reserve`.
 *
 * Prefetch: the window is "messages handed out and not settled + the `max` of the
 * latest reserve" — the worker's free slots — so it equals concurrency × multiplier
 * plus every message the worker holds for a near ETA, Celery's rule of raising the
 * prefetch count while holding ETA messages. A channel consuming one queue starts
 * with that window as a per-consumer prefetch (`basic.qos` global=false, set before
 * basic.consume): with one consumer it is the same limit, and RabbitMQ enforces it
 * in the queue, where a channel-wide limit costs the queue a call to the channel's
 * limiter for every delivery (about half of RabbitMQ's CPU per message on the
 * drain, bench/amqp-qos-cost.ts). RabbitMQ applies a per-consumer prefetch only to
 * consumers started after it, so the first time the window must change (a held ETA
 * message, a parked one, a second queue) the channel switches for good to Celery's
 * channel-wide QoS (global=true, as Celery 5.2 sets it on RabbitMQ): a new consumer
 * with no limit of its own replaces the old one (basic.consume, then basic.cancel;
 * the old one's unsettled deliveries stay valid on the channel and count against the
 * channel-wide limit). Several queues use the channel-wide QoS from the start.
 * Quorum queues do not take a channel-wide QoS: there the prefetch is set per
 * consumer when consuming starts and never changes.
 *
 * Settling: `ack` → basic.ack (one `multiple` ack per batch where the batch is
 * everything unsettled up to its highest tag, see `ackAll`), `reject` → basic.nack(requeue), `restore` →
 * basic.nack(requeue: true) (RabbitMQ marks it redelivered), `defer` → a confirmed
 * copy in a delay queue (see amqp.ts), then basic.ack. Each delivery's `lease` is
 * the channel it came on: when the channel or connection is lost RabbitMQ requeues
 * what it held, and settling a delivery of a lost channel is a logged no-op (the
 * message is delivered again: at least once). After a loss the consumer reopens a
 * channel and consumes again as soon as the connection is back. Liveness is the
 * AMQP heartbeat; there is no upkeep (the broker expires delay queues itself).
 */
import { randomUUID } from 'node:crypto';
import type { Channel, ConsumeMessage } from 'amqplib';
import { MessageTooLarge } from '../errors.js';
import type { QueueSpec } from '../config.js';
import type { Logger } from '../logger.js';
import type { Consumer, ConsumerOptions, Delivery, EarlyAck, ReserveOptions } from './broker.js';
import { decodeDelivery } from './amqp-codec.js';
import { describeAmqpError } from './amqp-connection.js';
import { explainChannelError } from './amqp-errors.js';
import type { AmqpBroker } from './amqp.js';
import { rememberReplyTo } from '../backends/rpc-reply-to.js';

/** A delivery arrives; with a reserve waiting for more, wait this long for the rest of a burst. */
const COALESCE_MS = 2;

interface Waiter {
  max: number;
  resolve: () => void;
  timer: NodeJS.Timeout;
  coalesce?: NodeJS.Timeout;
}

export class AmqpConsumer implements Consumer {
  readonly id: string;
  private queueList: string[];
  private readonly log: Logger | undefined;
  private channel: Channel | undefined;
  private opening: Promise<Channel | undefined> | undefined;
  /** Increases with every channel opened; a delivery's lease. */
  private channelGen = 0;
  private readonly buffer: Delivery[] = [];
  /** Deliveries of the current channel not settled yet (buffered or handed out), by tag. */
  private readonly held = new Map<string, ConsumeMessage>();
  private readonly queueByTag = new Map<string, string>();
  private waiter: Waiter | undefined;
  private wantConsume = false;
  private closed = false;
  private qos = 0;
  private lastMax = 1;
  /** Consuming a quorum queue: per-consumer prefetch only, fixed when consuming starts. */
  private readonly quorum: boolean;
  /** How the current channel's prefetch is set (see the file comment). */
  private qosMode: 'consumer' | 'global' = 'consumer';
  /** Acks given since the last `flushAcks`, all of `pendingAckChannel`. */
  private pendingAcks: ConsumeMessage[] = [];
  private pendingAckChannel: Channel | undefined;
  private ackFlushScheduled = false;
  private readonly onConnected = () => {
    if (this.wantConsume && !this.closed) void this.ensureChannel();
  };

  constructor(
    private readonly broker: AmqpBroker,
    queues: readonly string[],
    private readonly options: ConsumerOptions,
    private readonly onClosed: () => void,
  ) {
    this.id = options.consumerId ?? randomUUID();
    this.queueList = [...queues];
    this.log = options.log;
    this.quorum = queues.some((q) => broker.topology.declaration(q)?.arguments['x-queue-type'] === 'quorum');
    broker.connection.on('connected', this.onConnected);
  }

  /** The queues it consumes (changed by `addQueue` / `removeQueue`). */
  get queues(): readonly string[] {
    return this.queueList;
  }

  /** See `Consumer.addQueue`: declared (from `spec` when given), then consumed on the open channel. */
  async addQueue(queue: string, spec?: QueueSpec): Promise<void> {
    if (this.closed) throw new Error(`The consumer is closed; cannot start consuming from ${queue}.`);
    if (spec) this.broker.topology.define(spec);
    await this.broker.ensureQueue(queue);
    if (this.queueList.includes(queue)) return;
    this.queueList = [...this.queueList, queue];
    await this.opening?.catch(() => undefined);
    // A second consumer with its own prefetch would double the window: channel-wide first.
    if (this.channel) await this.switchToGlobalQos(this.channel, this.channelGen);
    await this.consumeOn(this.channel, this.channelGen, queue);
  }

  /** See `Consumer.removeQueue`: basic.cancel; its buffered deliveries go back to the queue. */
  async removeQueue(queue: string): Promise<void> {
    if (!this.queueList.includes(queue)) return;
    this.queueList = this.queueList.filter((q) => q !== queue);
    const ch = this.channel;
    for (const [tag, q] of this.queueByTag) {
      if (q !== queue) continue;
      this.queueByTag.delete(tag);
      if (ch) await ch.cancel(tag).catch(() => undefined);
    }
    for (let i = this.buffer.length - 1; i >= 0; i--) {
      const d = this.buffer[i]!;
      if (d.queue !== queue) continue;
      this.buffer.splice(i, 1);
      const msg = this.held.get(d.deliveryTag);
      this.held.delete(d.deliveryTag);
      if (msg && ch && d.lease === String(this.channelGen)) ch.nack(msg, false, true);
    }
  }

  /** basic.consume `queue` on `ch` unless it is consumed there already. */
  private async consumeOn(ch: Channel | undefined, gen: number, queue: string): Promise<void> {
    if (!ch || [...this.queueByTag.values()].includes(queue)) return;
    const { consumerTag } = await ch.consume(queue, (msg) => this.arrived(gen, queue, msg), { noAck: false });
    this.queueByTag.set(consumerTag, queue);
  }

  /** Deliveries handed out by `reserve` and not settled. */
  private get handedOut(): number {
    return this.held.size - this.buffer.length;
  }

  /** QoS = what the worker holds (handed out, unsettled) + its free slots (`max` of this reserve). */
  private setWindow(total: number): void {
    this.lastMax = Math.max(1, total - this.handedOut);
    const want = Math.max(1, total);
    if (!this.channel || want === this.qos || this.quorum) return;
    this.qos = want;
    if (this.qosMode === 'global') this.channel.prefetch(want, true).catch(() => undefined); // a failure closes the channel: handled there
    else void this.switchToGlobalQos(this.channel, this.channelGen);
  }

  /**
   * Move `ch` from a per-consumer prefetch to the channel-wide one (see the file
   * comment): new consumers get no limit of their own, the channel gets the window,
   * and each queue's consumer is replaced (consume first, then cancel the old one, so
   * the queue is never left unconsumed). A failure closes the channel: handled there.
   */
  private async switchToGlobalQos(ch: Channel, gen: number): Promise<void> {
    if (this.qosMode === 'global' || this.quorum) return;
    this.qosMode = 'global';
    try {
      await ch.prefetch(0, false);
      await ch.prefetch(this.qos, true);
      for (const [oldTag, queue] of [...this.queueByTag]) {
        if (gen !== this.channelGen || this.closed) return;
        if (!this.queueByTag.has(oldTag)) continue; // removeQueue cancelled it meanwhile
        if (this.queueList.includes(queue)) {
          const { consumerTag } = await ch.consume(queue, (msg) => this.arrived(gen, queue, msg), { noAck: false });
          if (gen !== this.channelGen) return;
          this.queueByTag.set(consumerTag, queue);
        }
        this.queueByTag.delete(oldTag);
        await ch.cancel(oldTag);
      }
    } catch {
      // The channel closes on a failed method: channelClosed reopens it (per-consumer again).
    }
  }

  private ensureChannel(): Promise<Channel | undefined> {
    if (this.channel) return Promise.resolve(this.channel);
    if (this.opening) return this.opening;
    const model = this.broker.connection.live;
    if (!model || this.closed) return Promise.resolve(undefined);
    const gen = ++this.channelGen;
    const opening = (async (): Promise<Channel | undefined> => {
      const ch = await model.createChannel();
      let closeError: Error | undefined;
      ch.on('error', (err: Error) => (closeError = err));
      ch.on('close', () => this.channelClosed(gen, closeError));
      this.qos = Math.max(1, this.handedOut + this.lastMax);
      // One queue (or quorum queues): a per-consumer prefetch; several: channel-wide.
      const mode = this.quorum || this.queues.length === 1 ? 'consumer' : 'global';
      this.qosMode = mode;
      await ch.prefetch(this.qos, mode === 'global');
      for (const queue of this.queues) {
        try {
          const { consumerTag } = await ch.consume(queue, (msg) => this.arrived(gen, queue, msg), { noAck: false });
          this.queueByTag.set(consumerTag, queue);
        } catch (err) {
          throw explainChannelError(closeError ?? err, { queue, what: `consume from queue ${JSON.stringify(queue)}` });
        }
      }
      if (this.closed || gen !== this.channelGen) {
        await ch.close().catch(() => undefined);
        return undefined;
      }
      // Queues added while the channel was opening.
      for (const queue of this.queues) await this.consumeOn(ch, gen, queue);
      this.channel = ch;
      if (this.queueByTag.size > 1) void this.switchToGlobalQos(ch, gen);
      return ch;
    })();
    this.opening = opening;
    opening
      .catch((err: unknown) => {
        this.log?.error({ err }, `Cannot consume from ${this.queues.join(', ')} on ${this.broker.displayUrl}: ${(err as Error).message}`);
      })
      .finally(() => {
        if (this.opening === opening) this.opening = undefined;
      });
    return opening.catch(() => undefined);
  }

  private channelClosed(gen: number, err: Error | undefined): void {
    if (gen !== this.channelGen) return;
    const lost = this.held.size;
    this.channel = undefined;
    this.buffer.length = 0;
    this.held.clear();
    this.queueByTag.clear();
    this.channelGen++;
    if (this.closed) return;
    if (err) {
      const reason = describeAmqpError(err);
      const timedOut = /acknowledg(e)?ment timed out|consumer_timeout|delivery acknowledgement/i.test(reason);
      this.log?.warn(
        { reason, unsettled: lost },
        timedOut
          ? `RabbitMQ closed the consumer channel: a delivery stayed unacknowledged past its consumer_timeout (${reason}); ${lost} message(s) go back to the queue. Raise consumer_timeout or lower workerEtaHoldSeconds.`
          : `RabbitMQ closed the consumer channel (${reason}); ${lost} unsettled message(s) go back to the queue; consuming again`,
      );
      // A channel error on a live connection: reopen after a pause (the connection's own loss reopens on reconnect).
      setTimeout(() => {
        if (this.wantConsume && !this.closed) void this.ensureChannel();
      }, 1000).unref();
    }
  }

  private arrived(gen: number, queue: string, msg: ConsumeMessage | null): void {
    if (gen !== this.channelGen || this.closed) return;
    if (msg === null) {
      // Cancelled by the server (queue deleted): consume again after a pause, which says why if it fails.
      this.log?.warn({ queue }, `RabbitMQ cancelled the consumer of queue ${JSON.stringify(queue)} (deleted?); consuming again`);
      const ch = this.channel;
      this.channel = undefined;
      void ch?.close().catch(() => undefined);
      return;
    }
    const tag = `${gen}:${msg.fields.deliveryTag}`;
    const sizeBytes = msg.content.length;
    const max = this.options.maxMessageBytes;
    const tooLarge = max !== undefined && sizeBytes > max;
    const deliveryCount = msg.properties.headers?.['x-delivery-count'];
    // rpc:// results go to the sender's reply queue: remember it for this task id.
    const taskId = msg.properties.headers?.id;
    if (typeof taskId === 'string' && typeof msg.properties.replyTo === 'string' && msg.properties.replyTo !== '') rememberReplyTo(taskId, msg.properties.replyTo);
    const delivery: Delivery = {
      message: tooLarge ? null : decodeDelivery(msg),
      ...(tooLarge ? { decodeError: new MessageTooLarge(`${sizeBytes} bytes > ${max}: rejected before parsing.`) } : {}),
      sizeBytes,
      queue,
      exchange: msg.fields.exchange,
      routingKey: msg.fields.routingKey,
      deliveryTag: tag,
      lease: String(gen),
      redelivered: msg.fields.redelivered,
      ...(typeof deliveryCount === 'number' ? { redeliveries: deliveryCount } : {}),
    };
    this.held.set(tag, msg);
    this.buffer.push(delivery);
    const w = this.waiter;
    if (!w) return;
    if (this.buffer.length >= w.max) w.resolve();
    else w.coalesce ??= setTimeout(w.resolve, COALESCE_MS);
  }

  async reserve({ max, timeoutMs }: ReserveOptions): Promise<Delivery[]> {
    if (this.closed || max <= 0) return [];
    this.wantConsume = true;
    this.lastMax = max;
    // The worker's whole window: what it holds now plus the slots it asks to fill. The
    // worker frees a slot in the same step as it settles its message here, so the
    // unsettled count and `max` agree (no waiting for acks that are still on their way).
    const window = this.handedOut + max;
    if (this.buffer.length < max) {
      const deadline = Date.now() + timeoutMs;
      if (!this.channel) {
        if (!(await this.broker.connection.whenConnected(timeoutMs))) return [];
        await this.ensureChannel();
      }
      this.setWindow(window);
      if (this.buffer.length === 0 && this.channel && !this.closed) {
        await new Promise<void>((resolve) => {
          const done = () => {
            clearTimeout(w.timer);
            clearTimeout(w.coalesce);
            if (this.waiter === w) this.waiter = undefined;
            resolve();
          };
          const w: Waiter = { max, resolve: done, timer: setTimeout(done, Math.max(0, deadline - Date.now())) };
          this.waiter = w;
        });
      }
    }
    if (this.closed) return [];
    return this.buffer.splice(0, max);
  }

  /** The amqplib message behind a delivery, if this consumer still holds it on the current channel. */
  private holding(d: Delivery, action: string): ConsumeMessage | undefined {
    const msg = d.lease === String(this.channelGen) && this.channel ? this.held.get(d.deliveryTag) : undefined;
    if (!msg) {
      this.log?.debug({ deliveryTag: d.deliveryTag, id: d.message?.headers.id }, `Not ${action}ing message: its channel was lost, RabbitMQ delivers it again`);
      return undefined;
    }
    this.held.delete(d.deliveryTag);
    return msg;
  }

  /**
   * See `Consumer.ackBeforeRun`: basic.ack has no reply to wait for, so the tasks may
   * start at once. The frame is not on the socket yet: this consumer hands the
   * iteration's acks to amqplib at `setImmediate` (see `ackAll`) and amqplib writes
   * them at its next `setImmediate`, so a task that kills the process synchronously
   * (or within that loop iteration) comes back, as it did when amqplib alone held the
   * frame until its `setImmediate`. A delivery of a lost channel is not acked (RabbitMQ
   * delivers it again), as with `ack`.
   */
  ackBeforeRun(deliveries: readonly Delivery[]): EarlyAck {
    this.ackAll(deliveries);
    return { sent: true, landed: Promise.resolve() };
  }

  async ack(deliveries: readonly Delivery[]): Promise<void> {
    this.ackAll(deliveries);
  }

  /**
   * basic.ack `deliveries`, coalesced: the acks of one event-loop iteration go out
   * together at `setImmediate` (see `flushAcks`). amqplib itself only writes a
   * channel's frames to the socket from `setImmediate` (its Mux), so an early ack was
   * never on the socket before its task started; now it gets there one loop iteration
   * later than before, and the iteration's batches (one per early-ack turn, one per
   * late-ack flush) cost one `multiple` basic.ack frame (one socket write, one frame
   * RabbitMQ parses) instead of one each. `close` writes what is pending first.
   */
  private ackAll(deliveries: readonly Delivery[]): void {
    const ch = this.channel;
    if (!ch) {
      for (const d of deliveries) this.holding(d, 'ack'); // logs: RabbitMQ delivers it again
      return;
    }
    // Pending acks of a channel lost since are dropped: their tags mean nothing on this one.
    if (this.pendingAckChannel !== ch) this.pendingAcks = [];
    this.pendingAckChannel = ch;
    for (const d of deliveries) {
      const msg = this.holding(d, 'ack');
      if (msg) this.pendingAcks.push(msg);
    }
    if (this.pendingAcks.length === 0) return;
    if (!this.ackFlushScheduled) {
      this.ackFlushScheduled = true;
      setImmediate(this.flushAcks);
    }
  }

  /**
   * Write the pending acks in as few frames as is safe. A `multiple` ack settles every
   * unacked delivery of the channel up to its tag, so it may only cover tags below the
   * oldest delivery still held unsettled (buffered, handed out, or being parked): the
   * pending tags below that one go out as one `multiple` ack at the highest of them,
   * the others (completed out of order) as single acks. Tags of one channel rise in
   * arrival order, which is `held`'s insertion order, so its first entry is the oldest.
   * Deliveries rejected or restored meanwhile are not held either, but their basic.nack
   * was written before this frame, so RabbitMQ no longer counts them as unacked. Acks
   * of a channel lost meanwhile are dropped (RabbitMQ delivers those messages again).
   */
  private readonly flushAcks = (): void => {
    this.ackFlushScheduled = false;
    const msgs = this.pendingAcks;
    const ch = this.pendingAckChannel;
    this.pendingAcks = [];
    this.pendingAckChannel = undefined;
    if (!ch || ch !== this.channel || msgs.length === 0) return;
    if (msgs.length === 1) {
      ch.ack(msgs[0]!);
      return;
    }
    const oldestHeld = this.held.values().next().value as ConsumeMessage | undefined;
    const below = oldestHeld?.fields.deliveryTag ?? Infinity;
    let upTo: ConsumeMessage | undefined;
    for (const msg of msgs) {
      if (msg.fields.deliveryTag < below) {
        if (!upTo || msg.fields.deliveryTag > upTo.fields.deliveryTag) upTo = msg;
      } else ch.ack(msg);
    }
    if (upTo) ch.ack(upTo, true);
  };

  async reject(delivery: Delivery, requeue: boolean): Promise<void> {
    const msg = this.holding(delivery, 'reject');
    if (msg) this.channel!.nack(msg, false, requeue);
  }

  async restore(deliveries: readonly Delivery[]): Promise<void> {
    for (const d of deliveries) {
      const msg = this.holding(d, 'restor');
      if (msg) this.channel!.nack(msg, false, true);
    }
  }

  async defer(delivery: Delivery, eta: Date): Promise<void> {
    const msg = delivery.lease === String(this.channelGen) ? this.held.get(delivery.deliveryTag) : undefined;
    if (!msg) return;
    await this.broker.publishDelayed(delivery.queue, msg, eta.getTime() - Date.now());
    // Confirmed in the delay queue: now let go of the original.
    if (this.held.get(delivery.deliveryTag) === msg && delivery.lease === String(this.channelGen)) {
      this.held.delete(delivery.deliveryTag);
      this.channel?.ack(msg);
    }
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.waiter?.resolve();
    this.broker.connection.off('connected', this.onConnected);
    await this.opening?.catch(() => undefined);
    this.flushAcks(); // acks given before close go out ahead of channel.close
    const ch = this.channel;
    this.channel = undefined;
    this.buffer.length = 0;
    this.held.clear();
    // Closing the channel hands back every unacknowledged delivery (marked redelivered).
    if (ch) await ch.close().catch(() => undefined);
    this.onClosed();
  }
}
