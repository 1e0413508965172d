import type { ThreadResultTarget } from '../backends/backend.js';
import type { QueueSpec } from '../config.js';
import type { Logger } from '../logger.js';
import type { TaskMessage } from '../protocol/message.js';

/**
 * Where a message is published: Celery publishes task messages to the default
 * exchange `""` with the queue name as routing key.
 */
export interface Route {
  /** Exchange name; `""` means "the routing key is the queue". */
  exchange: string;
  routingKey: string;
  /** 0–9; on Redis 0 is consumed first (kombu buckets 0/3/6/9), on RabbitMQ 9. */
  priority?: number;
  /**
   * The queue the route was resolved for, when known: the transport declares it
   * (with its exchange and binding) before publishing, as Celery's `declare=[queue]`.
   */
  queue?: string;
}

/** One message of a `publishMany` batch. */
export interface PublishItem {
  message: TaskMessage;
  route: Route;
}

/**
 * A message handed to a consumer and not yet settled. Settle it exactly once with the
 * consumer's `ack`, `reject`, `defer` or `restore`.
 */
export interface Delivery {
  /** The decoded message, or null when the transport framing itself is broken. */
  message: TaskMessage | null;
  /** Why `message` is null (malformed envelope, bad base64, ...). */
  decodeError?: Error;
  /** Size of the message as received, in bytes. */
  sizeBytes: number;
  /** The task id, when the transport knows it without decoding (a message too large to be read). */
  taskId?: string;
  /** The queue it was taken from. */
  queue: string;
  exchange: string;
  routingKey: string;
  /** Transport-unique id used to settle the message. */
  deliveryTag: string;
  /**
   * Proof of this reservation, when the transport can hand a message to another
   * consumer while this one still has it (Redis: restored after a missed heartbeat).
   * Settling under a lease that is no longer current is a logged no-op.
   */
  lease?: string;
  /** True when the message was restored after a consumer died or gave it back. */
  redelivered: boolean;
  /**
   * Times the message was restored because its holder died or stalled while holding
   * it (not counting orderly give-backs), when the transport counts them. The worker
   * gives a message up past `workerMaxRedeliveries`.
   */
  redeliveries?: number;
}

/** What to do with a running task's message if its worker is lost (see `Consumer.taskStarting`). */
export type IfWorkerLost = 'ack' | 'requeue' | 'none';

/**
 * The task a started message runs: if the worker is lost while it runs and the
 * message is not requeued, the transport stores FAILURE (WorkerLostError) for it,
 * as Celery does for a lost worker (see `Consumer.taskStarting`).
 */
export interface RunningTask {
  id: string;
  groupId: string | null;
  parentId: string | null;
}

/** What `Consumer.ackBeforeRun` did with an early ack. */
export interface EarlyAck {
  /**
   * The ack has left this process (it is in the kernel's socket buffer, which the
   * kernel still delivers if the process dies next): the tasks may start now.
   * False: it could not be written at once (no connection, a busy socket); start
   * them once `landed` settles.
   */
  sent: boolean;
  /** Settles when the ack has landed (rejects only when it was given up, as `ack` does). */
  landed: Promise<void>;
}

/** Options for one `reserve` call. */
export interface ReserveOptions {
  /** Reserve at most this many messages (the free prefetch slots). */
  max: number;
  /** Block at most this long when no message is ready. */
  timeoutMs: number;
}

/** Options of `Broker.openConsumer`. */
export interface ConsumerOptions {
  /** Stable id of this consumer (ownership of its unacked messages, liveness). Default: a random uuid. */
  consumerId?: string;
  /** Seconds between liveness beats; a consumer that misses 5 counts as dead. Default 2. */
  heartbeatIntervalSeconds?: number;
  /** Beat from a worker thread, so a task blocking the event loop does not look like a dead consumer. Default true. */
  heartbeatThread?: boolean;
  /**
   * false: start no timers; liveness and upkeep then run only when the owner calls
   * the transport's own methods (tests). Default true.
   */
  autoUpkeep?: boolean;
  /** Where the consumer logs what it does on its own (failed beats, stale settles). Default: silent. */
  log?: Logger;
  /**
   * Messages larger than this many bytes (as stored on the broker) are delivered
   * unparsed: `message` null, `decodeError` a `MessageTooLarge`, `sizeBytes` set, so
   * the worker can reject them without paying for decoding. Default: no limit.
   */
  maxMessageBytes?: number;
  /**
   * Seconds without event-loop progress after which the consumer declares its owner
   * hung (`workerHangTimeout`) and settles what it holds on its own (see
   * `Consumer.taskStarting`). 0 or absent: never. Transports without a liveness
   * thread ignore it.
   */
  hangTimeoutSeconds?: number;
  /** Messages that can be started and not yet settled at once (sizes the hang watch's table). */
  startedCapacity?: number;
  /**
   * The event loop runs again after a declared hang: the owner must drop (not
   * settle, not run) every delivery it holds; the consumer settled them all.
   */
  onHangReleased?: () => void;
  /**
   * The worker's result backend, as the heartbeat thread can reach it: after settling
   * a hang it stores FAILURE (WorkerLostError) there for the started tasks passed to
   * `taskStarting` with a `task`. Absent: no FAILURE is stored for them.
   */
  lostResults?: ThreadResultTarget;
}

/**
 * One consumer of a fixed set of queues, opened with `Broker.openConsumer`. It owns
 * everything a transport needs to deliver messages reliably to one worker:
 *
 * - reservation: `reserve` hands out messages, each one owned by this consumer until
 *   it is settled (`ack`, `reject`, `defer`, `restore`), exactly once;
 * - liveness: the consumer proves itself alive to the broker on its own (Redis:
 *   heartbeats from a thread) so peers can restore what a dead consumer held;
 * - upkeep: periodic broker-side work (Redis: promotion of deferred messages,
 *   restores of dead consumers' messages, kombu's visibility-timeout restore);
 * - ETA parking: `defer` hands a message back to be delivered again at its ETA.
 *
 * The worker talks only to this interface and never checks which transport it has.
 *
 * Pull and push transports: `reserve` is a pull API. A push transport (RabbitMQ
 * through amqplib: `channel.consume` with `basic.qos` prefetch) fits by buffering
 * what the broker pushes in a local queue and resolving `reserve` from it (waiting
 * up to `timeoutMs` when the buffer is empty); its prefetch count stands in for
 * `max`. Settling maps to `basic.ack` / `basic.nack(requeue)`; liveness is the
 * AMQP connection heartbeat; `defer` republishes to a delay queue (or the
 * delayed-message exchange) and acks; `restore` nacks with requeue; `close`
 * cancels the consumer and closes the channel, which returns unacked messages.
 */
export interface Consumer {
  /** This consumer's id in the broker. */
  readonly id: string;
  /** The queues it consumes, in priority order (changed by `addQueue` / `removeQueue`). */
  readonly queues: readonly string[];
  /**
   * Start consuming `queue` too (Celery's `add_consumer`): declared as `taskQueues`
   * says, or from `spec` when the queue is not configured yet. Resolves once the next
   * reserve takes from it. Transports without it cannot change queues at run time.
   */
  addQueue?(queue: string, spec?: QueueSpec): Promise<void>;
  /**
   * Stop consuming `queue` (Celery's `cancel_consumer`). Messages already handed out
   * are settled as usual; RabbitMQ's unhanded prefetched ones go back to the queue.
   */
  removeQueue?(queue: string): Promise<void>;
  /**
   * Up to `max` messages (first queue first, higher priority first), each recorded
   * as held by this consumer in the same atomic step. Resolves with an empty array
   * after `timeoutMs` without messages, or once the consumer is closing.
   */
  reserve(options: ReserveOptions): Promise<Delivery[]>;
  /**
   * Acknowledge: the messages are gone for good. Settling a message this consumer no
   * longer owns (it was restored to another consumer meanwhile) is a logged no-op.
   */
  ack(deliveries: readonly Delivery[]): Promise<void>;
  /**
   * Early ack of messages about to run (Celery acks before running): like `ack`,
   * but written to the broker before this returns, so the caller starts the tasks
   * without waiting a round trip for the reply, and a task that then kills the
   * process still cannot come back. Optional: without it the worker awaits `ack`.
   */
  ackBeforeRun?(deliveries: readonly Delivery[]): EarlyAck;
  /** Reject one message; `requeue` puts it back at the end of its queue. */
  reject(delivery: Delivery, requeue: boolean): Promise<void>;
  /**
   * Hand a held message back to be delivered again at `eta` (used for far-future ETA
   * messages so no worker holds them in memory).
   */
  defer(delivery: Delivery, eta: Date): Promise<void>;
  /** Give messages back untouched, to be consumed next, marked redelivered. */
  restore(deliveries: readonly Delivery[]): Promise<void>;
  /**
   * Hang watch (transports that watch the event loop, see
   * `ConsumerOptions.hangTimeoutSeconds`): `delivery`'s task starts running now. If the
   * loop then hangs before the message is settled, the consumer settles it as Celery
   * settles a lost worker's message, by `ifLost`: `ack` (acks late), `requeue` (acks
   * late + reject on worker lost), or `none` (acknowledged already, before the run);
   * messages not started go back to the queue. An early-ack message is passed with
   * `ack` before its early ack is written, and stays started until `taskFinished`.
   * `task`: the task to store FAILURE (WorkerLostError) for when the hang is settled
   * (absent: it stores no result, or it is requeued). False when a hang is being
   * settled: the message may have been given back, do not run it.
   */
  taskStarting?(delivery: Delivery, ifLost: IfWorkerLost, task?: RunningTask): boolean;
  /**
   * Hang watch: the task of an early-ack message has finished and recorded its
   * outcome (a late-ack message stops counting as started when it is settled).
   */
  taskFinished?(delivery: Delivery): void;
  /**
   * Stop: end a blocked `reserve`, give back whatever this consumer still holds and
   * stop its liveness (last, so a long shutdown never looks like a dead consumer).
   */
  close(): Promise<void>;
}

/**
 * Broadcast and reply messaging for remote control (Celery's pidbox) and events
 * (`celeryev`), opened with `Broker.openControlChannel`. Fanout exchanges deliver a
 * copy to every subscriber (Redis: kombu's PUBLISH/PSUBSCRIBE emulation); replies go
 * to a direct exchange whose bound queue the requester reads (Redis: kombu's
 * `_kombu.binding.<exchange>` set and a list per reply queue).
 */
export interface ControlChannel {
  /**
   * Receive every message published to the fanout `exchange` from now on (with the
   * routing key it was published under). Resolves once subscribed, with a function
   * that stops the subscription.
   */
  subscribe(exchange: string, onMessage: (message: TaskMessage, routingKey: string) => void, options?: SubscribeOptions): Promise<() => Promise<void>>;
  /** Publish `message` to every subscriber of the fanout `exchange`. */
  publishFanout(exchange: string, message: TaskMessage, routingKey?: string): Promise<void>;
  /** Publish to the queue bound to the direct `exchange` under `routingKey`; dropped when nothing is bound (as AMQP does). */
  publishDirect(exchange: string, routingKey: string, message: TaskMessage): Promise<void>;
  /** Declare a queue bound to the direct `exchange` under `routingKey`, to read replies from. */
  openReplyQueue(exchange: string, routingKey: string): Promise<ReplyQueue>;
  /**
   * Keep revoked task ids in the broker until `expiresAtMs` (unix ms), so a worker
   * that was offline when the revoke was broadcast learns about it when it starts.
   * Transports without storage omit it.
   */
  persistRevoked?(ids: readonly string[], expiresAtMs: number): Promise<void>;
  /** Revoked ids kept in the broker and not expired: id → unix seconds revoked. */
  loadRevoked?(): Promise<Map<string, number>>;
  /** Close the channel's connections (subscriptions end). */
  close(): Promise<void>;
}

/** Options of `ControlChannel.subscribe`. */
export interface SubscribeOptions {
  /**
   * The subscriber's queue, on transports with real queues (RabbitMQ): Celery's
   * `<node>.celery.pidbox` for a worker's mailbox, `celeryev.<uuid>` for an event
   * receiver. Default: `<exchange>.<random>`. Redis and memory ignore it.
   */
  queue?: string;
}

/** A requester's reply queue (see `ControlChannel.openReplyQueue`). */
export interface ReplyQueue {
  /** The next message, or null after `timeoutMs` without one. */
  next(timeoutMs: number): Promise<TaskMessage | null>;
  /** Unbind and delete the queue. */
  close(): Promise<void>;
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
  /** Open a consumer of `queues` (see `Consumer`). Close it before the broker. */
  openConsumer(queues: readonly string[], options?: ConsumerOptions): Promise<Consumer>;
  /** Remove every ready message from the queues; resolves with how many. */
  purge(queues: readonly string[]): Promise<number>;
  /** Number of ready messages in a queue (all priorities). */
  queueLength(queue: string): Promise<number>;
  /**
   * Resolves true once connected, false on the next connection error or after
   * `timeoutMs` (publish retries wait on it). Brokers without a connection omit it.
   */
  whenConnected?(timeoutMs: number): Promise<boolean>;
  /**
   * Open the broadcast/reply channel that remote control and events use. Transports
   * without fanout omit it (their workers then answer no remote control).
   */
  openControlChannel?(): Promise<ControlChannel>;
  /** Close connections. Pending publishes are flushed first. */
  close(): Promise<void>;
}
