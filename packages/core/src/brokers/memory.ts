/**
 * Memory transport — the embedded default.
 *
 * Features: queues with priorities (Redis order: 0 first), acks, requeue, deferred
 * (ETA) messages. Connection string: `memory://` (one namespace per process;
 * `memory://name` gives separate ones). No options. Messages live in this process
 * only: a producer and a worker must share the process (the demo, tests).
 */
import { ConfigurationError } from '../errors.js';
import { processWide } from '../process-state.js';
import { randomUUID } from 'node:crypto';
import type { TaskMessage } from '../protocol/message.js';
import type { Broker, Consumer, ConsumerOptions, ControlChannel, Delivery, PublishItem, ReserveOptions, Route } from './broker.js';
import { MemoryControlChannel, MemoryFanoutHub } from './memory-fanout.js';
import { QueueTopology, type BrokerRouting } from './queue-topology.js';
import { lookupQueues, topicPattern } from './redis-exchange.js';

interface Stored {
  message: TaskMessage;
  queue: string;
  exchange: string;
  routingKey: string;
  priority: number;
  redelivered: boolean;
}

/** One in-process namespace shared by every MemoryBroker with the same URL. */
class MemoryHub {
  /** queue → messages, lowest priority number first, FIFO within a priority. */
  readonly queues = new Map<string, Stored[]>();
  readonly unacked = new Map<string, Stored>();
  readonly deferred: { due: number; stored: Stored }[] = [];
  private waiters = new Set<() => void>();
  private timer: NodeJS.Timeout | undefined;

  push(stored: Stored, front = false): void {
    let list = this.queues.get(stored.queue);
    if (!list) this.queues.set(stored.queue, (list = []));
    if (front) list.unshift(stored);
    else {
      let i = list.length;
      while (i > 0 && list[i - 1]!.priority > stored.priority) i--;
      list.splice(i, 0, stored);
    }
    for (const wake of this.waiters) wake();
  }

  take(queues: readonly string[], max: number): Stored[] {
    const out: Stored[] = [];
    while (out.length < max) {
      let best: Stored[] | undefined;
      for (const q of queues) {
        const list = this.queues.get(q);
        if (list && list.length > 0 && (!best || list[0]!.priority < best[0]!.priority)) best = list;
      }
      if (!best) break;
      out.push(best.shift()!);
    }
    return out;
  }

  wait(timeoutMs: number): Promise<void> {
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(t);
        this.waiters.delete(done);
        resolve();
      };
      const t = setTimeout(done, timeoutMs);
      this.waiters.add(done);
    });
  }

  /** End every blocked wait now (a consumer is closing). */
  wakeAll(): void {
    for (const wake of this.waiters) wake();
  }

  defer(stored: Stored, due: number): void {
    this.deferred.push({ due, stored });
    this.deferred.sort((a, b) => a.due - b.due);
    this.schedulePromotion();
  }

  private schedulePromotion(): void {
    clearTimeout(this.timer);
    const next = this.deferred[0];
    if (!next) return;
    this.timer = setTimeout(() => {
      const now = Date.now();
      while (this.deferred.length > 0 && this.deferred[0]!.due <= now) this.push(this.deferred.shift()!.stored);
      this.schedulePromotion();
    }, Math.max(0, next.due - Date.now()));
    this.timer.unref();
  }
}

/** One hub per URL per process, shared by every copy of the package (see process-state.ts). */
const hubs = processWide('memory-broker-hubs', () => new Map<string, MemoryHub>());
/** Fanout state (remote control, events) of each hub, shared the same way. */
const fanoutHubs = processWide('memory-broker-fanout-hubs', () => new WeakMap<MemoryHub, MemoryFanoutHub>());

/** The in-process broker. */
export class MemoryBroker implements Broker {
  readonly displayUrl: string;
  private readonly hub: MemoryHub;

  /** Queues, exchanges and bindings from the settings (named exchanges route through them). */
  private readonly topology: QueueTopology | undefined;

  constructor(url = 'memory://', routing?: BrokerRouting) {
    this.displayUrl = url;
    this.topology = routing ? new QueueTopology(routing) : undefined;
    let hub = hubs.get(url);
    if (!hub) hubs.set(url, (hub = new MemoryHub()));
    this.hub = hub;
  }

  /** Remote control and events between the apps and workers of this process. */
  async openControlChannel(): Promise<ControlChannel> {
    let fanout = fanoutHubs.get(this.hub);
    if (!fanout) fanoutHubs.set(this.hub, (fanout = new MemoryFanoutHub()));
    return new MemoryControlChannel(fanout);
  }

  async publish(message: TaskMessage, route: Route): Promise<void> {
    const priority = Math.min(9, Math.max(0, route.priority ?? 0));
    for (const queue of this.queuesFor(route)) {
      this.hub.push({ message, queue, exchange: route.exchange, routingKey: route.routingKey, priority, redelivered: false });
    }
  }

  /**
   * Exchange `""` or one `taskQueues` does not bind: the routing key names the queue.
   * A configured exchange: the configured queues bound to it that the key reaches
   * (direct: equal key, topic: kombu's pattern, fanout: all).
   */
  private queuesFor(route: Route): string[] {
    const type = route.exchange === '' ? undefined : this.topology?.exchangeType(route.exchange);
    if (!type) return [route.routingKey];
    const rows = this.topology!.configuredQueues.flatMap((q) =>
      q.bindings.filter((b) => b.exchange === route.exchange).map((b) => ({ routingKey: b.routingKey, pattern: type === 'topic' ? topicPattern(b.routingKey) : '', queue: q.name })),
    );
    const queues = lookupQueues(type, rows, route.routingKey);
    if (queues.length === 0) {
      throw new ConfigurationError(`No queue is bound to ${type} exchange "${route.exchange}" with routing key "${route.routingKey}" in taskQueues; the message would be lost.`);
    }
    return queues;
  }

  async publishMany(batch: readonly PublishItem[]): Promise<void> {
    for (const { message, route } of batch) void this.publish(message, route);
  }

  /** A consumer in this process: no liveness to prove, promotion runs on the hub's timer. */
  async openConsumer(queues: readonly string[], options: ConsumerOptions = {}): Promise<Consumer> {
    return new MemoryConsumer(this.hub, [...queues], options.consumerId ?? randomUUID());
  }

  async purge(queues: readonly string[]): Promise<number> {
    let n = 0;
    for (const q of queues) {
      n += this.hub.queues.get(q)?.length ?? 0;
      this.hub.queues.delete(q);
    }
    return n;
  }

  async queueLength(queue: string): Promise<number> {
    return this.hub.queues.get(queue)?.length ?? 0;
  }

  async close(): Promise<void> {}
}

/** The memory transport's consumer: what it holds lives in the hub's unacked map. */
class MemoryConsumer implements Consumer {
  private readonly held = new Set<string>();
  private closing = false;

  constructor(
    private readonly hub: MemoryHub,
    public queues: readonly string[],
    readonly id: string,
  ) {}

  async addQueue(queue: string): Promise<void> {
    if (!this.queues.includes(queue)) this.queues = [...this.queues, queue];
    this.hub.wakeAll();
  }

  async removeQueue(queue: string): Promise<void> {
    this.queues = this.queues.filter((q) => q !== queue);
  }

  async reserve({ max, timeoutMs }: ReserveOptions): Promise<Delivery[]> {
    if (this.closing) return [];
    let taken = this.hub.take(this.queues, max);
    if (taken.length === 0 && timeoutMs > 0) {
      await this.hub.wait(timeoutMs);
      if (this.closing) return [];
      taken = this.hub.take(this.queues, max);
    }
    return taken.map((stored) => {
      const deliveryTag = randomUUID();
      this.hub.unacked.set(deliveryTag, stored);
      this.held.add(deliveryTag);
      return {
        message: stored.message,
        sizeBytes: stored.message.body.length,
        queue: stored.queue,
        exchange: stored.exchange,
        routingKey: stored.routingKey,
        deliveryTag,
        redelivered: stored.redelivered,
      };
    });
  }

  /** The stored message when this consumer still holds the delivery (and forget it). */
  private release(deliveryTag: string): Stored | undefined {
    if (!this.held.delete(deliveryTag)) return undefined;
    const stored = this.hub.unacked.get(deliveryTag);
    this.hub.unacked.delete(deliveryTag);
    return stored;
  }

  /** Back to the front of its queue, marked redelivered (the last one given is consumed first, as on Redis). */
  private giveBack(deliveryTag: string): void {
    const stored = this.release(deliveryTag);
    if (stored) this.hub.push({ ...stored, redelivered: true }, true);
  }

  async ack(deliveries: readonly Delivery[]): Promise<void> {
    for (const d of deliveries) this.release(d.deliveryTag);
  }

  async reject(delivery: Delivery, requeue: boolean): Promise<void> {
    const stored = this.release(delivery.deliveryTag);
    if (stored && requeue) this.hub.push({ ...stored, redelivered: true });
  }

  async defer(delivery: Delivery, eta: Date): Promise<void> {
    const stored = this.release(delivery.deliveryTag);
    if (stored) this.hub.defer(stored, eta.getTime());
  }

  async restore(deliveries: readonly Delivery[]): Promise<void> {
    for (const d of deliveries) this.giveBack(d.deliveryTag);
  }

  async close(): Promise<void> {
    this.closing = true;
    this.hub.wakeAll();
    for (const tag of [...this.held]) this.giveBack(tag);
  }
}
