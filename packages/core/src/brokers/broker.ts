import type { TaskMessage } from '../protocol/message.js';

/**
 * Where a message is published: Celery publishes task messages to the default
 * exchange `""` with the queue name as routing key.
 */
export interface Route {
  /** Exchange name; `""` means "the routing key is the queue". */
  exchange: string;
  routingKey: string;
  /** 0–9; on Redis 0 is consumed first (kombu buckets 0/3/6/9). */
  priority?: number;
}

/** One message of a `publishMany` batch. */
export interface PublishItem {
  message: TaskMessage;
  route: Route;
}

/**
 * A message handed to a consumer and not yet settled. Settle it exactly once with
 * `ack`, `reject` or `deferUntil`.
 */
export interface Delivery {
  /** The decoded message, or null when the transport framing itself is broken. */
  message: TaskMessage | null;
  /** Why `message` is null (malformed envelope, bad base64, ...). */
  decodeError?: Error;
  /** Size of the message as received, in bytes. */
  sizeBytes: number;
  /** The queue it was taken from. */
  queue: string;
  exchange: string;
  routingKey: string;
  /** Transport-unique id used to settle the message. */
  deliveryTag: string;
  /** True when the message was restored after a consumer died or gave it back. */
  redelivered: boolean;
}

/** Options for one `reserve` call. */
export interface ReserveOptions {
  /** Reserve at most this many messages (the free prefetch slots). */
  max: number;
  /** Block at most this long when no message is ready. */
  timeoutMs: number;
}

/**
 * One broker connection. Each transport lives in its own file behind this
 * interface and is chosen by URL scheme (see `createBroker`).
 */
export interface Broker {
  /** URL with any password masked, for banners and logs. */
  readonly displayUrl: string;
  /** Publish a task message. Resolves once the broker has it. */
  publish(message: TaskMessage, route: Route): Promise<void>;
  /**
   * Publish a batch in one round trip where the transport can (Redis: one
   * pipeline), in order: messages for the same queue and priority are consumed in
   * the order given. Each message is stored exactly as `publish` stores it.
   * Resolves once the broker has all of them. Transports without it are sent
   * one `publish` at a time.
   */
  publishMany?(batch: readonly PublishItem[]): Promise<void>;
  /**
   * Take up to `max` messages from `queues` (first queue first, higher priority
   * first) and record them as unacked in the same atomic step.
   * Resolves with an empty array after `timeoutMs` without messages.
   */
  reserve(queues: readonly string[], options: ReserveOptions): Promise<Delivery[]>;
  /** Acknowledge: the messages are gone for good. */
  ack(deliveries: readonly Delivery[]): Promise<void>;
  /** Reject one message; `requeue` puts it back at the end of its queue. */
  reject(delivery: Delivery, requeue: boolean): Promise<void>;
  /**
   * Hand a reserved message back to the broker to be delivered again at `eta`
   * (used for far-future ETA messages so no worker holds them in memory).
   */
  deferUntil(delivery: Delivery, eta: Date): Promise<void>;
  /** Remove every ready message from the queues; resolves with how many. */
  purge(queues: readonly string[]): Promise<number>;
  /** Number of ready messages in a queue (all priorities). */
  queueLength(queue: string): Promise<number>;
  /**
   * Called by a consuming worker every `intervalMs`: proves this consumer alive,
   * promotes due deferred messages and restores the unacked messages of dead
   * consumers.
   */
  heartbeat?(consumerId: string, ttlMs: number): Promise<void>;
  /**
   * The part of `heartbeat` that does not prove liveness (promotion of deferred
   * messages, restores), for workers that beat from a separate thread.
   */
  maintain?(): Promise<void>;
  /** Give back (restore) every message this consumer still holds unacked. */
  restoreUnacked?(deliveries: readonly Delivery[]): Promise<void>;
  /** Close connections. Pending publishes are flushed first. */
  close(): Promise<void>;
}
