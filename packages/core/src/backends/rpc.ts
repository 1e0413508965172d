/**
 * `rpc://` result backend, Celery 5.2's RPC backend on the wire: results travel as
 * messages back to the process that sent the task, over the broker (RabbitMQ).
 *
 * - Sending: before the first task message, the sender declares its reply queue,
 *   named by its oid (`app.oid`, the message's `reply_to`): not durable,
 *   auto-delete, `x-expires` = `resultExpires` in ms.
 * - Worker: every state (STARTED, RETRY, SUCCESS, FAILURE, REVOKED, custom) is
 *   published to the default exchange `""` with the task message's `reply_to` as
 *   routing key, `correlation_id` = task id, `delivery_mode` 1, body
 *   `{"task_id", "status", "result", "traceback", "children"}` (Python's JSON).
 *   The `reply_to` is what the AMQP consumer saw on the task message
 *   (rpc-reply-to.ts).
 * - Reader: consumes its reply queue (no-ack) from the first read and keeps the
 *   latest state per task id (correlation id, else the body's `task_id`).
 *
 * What rpc cannot do (Celery's limits, made clear errors here): read the result of
 * a task another process sent (it went to that process's queue), keep results
 * after the reader exits, chords and saved group results. Needs an `amqp://`
 * broker.
 */
import type { Channel, ConsumeMessage } from 'amqplib';
import type { Broker } from '../brokers/broker.js';
import { AmqpBroker } from '../brokers/amqp.js';
import { CeleriacError, ConfigurationError, TimeoutError } from '../errors.js';
import { dumpsPython, loadsPython } from '../protocol/python-json.js';
import { READY_STATES, type TaskState } from '../states.js';
import type { ResultBackend, ResultDocument, WaitOptions } from './backend.js';
import { forgetReplyTo, replyToFor, trackReplyTo } from './rpc-reply-to.js';

/** Options of the rpc backend (given by the app). */
export interface RpcBackendOptions {
  /** The app's producer broker (results are published and read on its connection). */
  broker: () => Promise<Broker>;
  /** This process's reply queue: the `reply_to` of the tasks it sends (`app.oid`). */
  replyTo: string;
  /** `result_expires` in seconds: the reply queue's `x-expires`. 0 = none. */
  resultExpires: number;
  /** `result_persistent`: publish results with delivery_mode 2. Default false (Celery's). */
  persistent?: boolean;
}

/** An rpc:// limitation hit: says what rpc cannot do and what to use instead. */
export class RpcBackendLimitation extends CeleriacError {
  override name = 'RpcBackendLimitation';
}

const MAX_REMEMBERED = 100_000;

interface Waiter {
  resolve(doc: ResultDocument): void;
}

function isReady(status: string): boolean {
  return (READY_STATES as ReadonlySet<string>).has(status);
}

/** Celery's RPC result backend. */
export class RpcBackend implements ResultBackend {
  readonly displayUrl = 'rpc://';
  /** Tasks this process sent (only their results can arrive here). */
  private readonly sent = new Set<string>();
  /** Latest state per task id, from the reply queue. */
  private readonly latest = new Map<string, ResultDocument>();
  private readonly waiters = new Map<string, Set<Waiter>>();
  private declared: { generation: number; done: Promise<void> } | undefined;
  private consumer: { generation: number; channel: Promise<Channel> } | undefined;
  private reading = false;
  private closed = false;
  private amqp: AmqpBroker | undefined;

  constructor(private readonly options: RpcBackendOptions) {
    trackReplyTo();
  }

  private async broker(): Promise<AmqpBroker> {
    if (this.amqp) return this.amqp;
    const broker = await this.options.broker();
    if (!(broker instanceof AmqpBroker)) {
      throw new ConfigurationError(`The rpc:// result backend sends results as AMQP messages and needs an amqp:// broker; the broker is ${broker.displayUrl}. Use resultBackend redis://... with this broker.`);
    }
    this.amqp = broker;
    broker.connection.on('connected', () => {
      if (this.reading && !this.closed) void this.consume().catch(() => undefined);
    });
    return broker;
  }

  /** Declare this process's reply queue (once per connection), as Celery's client does. */
  private async declareReplyQueue(): Promise<AmqpBroker> {
    const broker = await this.broker();
    const generation = broker.connection.generation;
    if (this.declared?.generation !== generation) {
      const args: Record<string, unknown> = {};
      if (this.options.resultExpires > 0) args['x-expires'] = Math.trunc(this.options.resultExpires * 1000);
      const queue = this.options.replyTo;
      const done = broker
        .onAdmin(`declare the rpc reply queue ${JSON.stringify(queue)}`, queue, (ch) => ch.assertQueue(queue, { durable: false, autoDelete: true, arguments: args }))
        .then(() => undefined);
      this.declared = { generation, done };
      done.catch(() => (this.declared = undefined));
    }
    await this.declared.done;
    return broker;
  }

  /** Called by the app before it publishes tasks: declare the reply queue, remember the ids. */
  async prepareSend(taskIds: readonly string[]): Promise<void> {
    for (const id of taskIds) {
      this.sent.add(id);
      if (this.sent.size > MAX_REMEMBERED) this.sent.delete(this.sent.values().next().value as string);
    }
    await this.declareReplyQueue();
  }

  /** Start (or resume after a reconnect) consuming the reply queue. */
  private async consume(): Promise<void> {
    const broker = await this.declareReplyQueue();
    const generation = broker.connection.generation;
    if (this.consumer?.generation === generation) {
      await this.consumer.channel;
      return;
    }
    const channel = (async () => {
      const ch = await broker.connection.require().createChannel();
      ch.on('error', () => undefined);
      ch.on('close', () => {
        if (this.consumer?.channel === channel) this.consumer = undefined;
      });
      await ch.consume(this.options.replyTo, (msg) => msg && this.received(msg), { noAck: true });
      return ch;
    })();
    this.consumer = { generation, channel };
    channel.catch(() => {
      if (this.consumer?.channel === channel) this.consumer = undefined;
    });
    await channel;
  }

  private received(msg: ConsumeMessage): void {
    let body: Record<string, unknown>;
    try {
      body = loadsPython(msg.content.toString('utf8')) as Record<string, unknown>;
    } catch {
      return; // not a result message
    }
    if (!body || typeof body !== 'object') return;
    const id = typeof msg.properties.correlationId === 'string' ? msg.properties.correlationId : String(body.task_id ?? '');
    if (!id || typeof body.status !== 'string') return;
    const doc: ResultDocument = {
      status: body.status as TaskState,
      result: body.result ?? null,
      traceback: (body.traceback as string | null | undefined) ?? null,
      children: (body.children as ResultDocument['children'] | undefined) ?? [],
      date_done: (body.date_done as string | null | undefined) ?? null,
      task_id: id,
    };
    this.latest.delete(id);
    this.latest.set(id, doc);
    if (this.latest.size > MAX_REMEMBERED) this.latest.delete(this.latest.keys().next().value as string);
    if (!isReady(doc.status)) return;
    const waiting = this.waiters.get(id);
    this.waiters.delete(id);
    for (const w of waiting ?? []) w.resolve(doc);
  }

  private checkOwn(taskId: string): void {
    if (this.sent.has(taskId) || this.latest.has(taskId)) return;
    throw new RpcBackendLimitation(
      `Cannot read the result of task ${taskId} with rpc://: rpc results are messages sent to the reply queue of the process that sent the task, ` +
        `and this process did not send it (or no longer remembers it). Read it in the sending process, or use a result backend that stores results (resultBackend redis://...).`,
    );
  }

  async storeResult(doc: ResultDocument): Promise<void> {
    await this.storeResults([doc]);
  }

  async storeResults(docs: readonly ResultDocument[]): Promise<void> {
    const broker = await this.broker();
    const sends: Promise<void>[] = [];
    for (const doc of docs) {
      const replyTo = replyToFor(doc.task_id) ?? (this.sent.has(doc.task_id) ? this.options.replyTo : undefined);
      if (!replyTo) {
        throw new RpcBackendLimitation(
          `Cannot send the ${doc.status} state of task ${doc.task_id} over rpc://: its task message had no reply_to (or was not received in this process), so there is no reply queue to send it to.`,
        );
      }
      const body = dumpsPython({ task_id: doc.task_id, status: doc.status, result: doc.result, traceback: doc.traceback, children: doc.children });
      sends.push(
        broker.publishRaw('', replyTo, Buffer.from(body, 'utf8'), {
          contentType: 'application/json',
          contentEncoding: 'utf-8',
          correlationId: doc.task_id,
          deliveryMode: this.options.persistent ? 2 : 1,
          priority: 0,
          headers: {},
        }),
      );
      if (isReady(doc.status)) forgetReplyTo(doc.task_id);
    }
    await Promise.all(sends);
  }

  async getResult(taskId: string): Promise<ResultDocument | null> {
    this.checkOwn(taskId);
    this.reading = true;
    await this.consume();
    return this.latest.get(taskId) ?? null;
  }

  async waitForResult(taskId: string, options: WaitOptions): Promise<ResultDocument> {
    this.checkOwn(taskId);
    this.reading = true;
    await this.consume();
    const known = this.latest.get(taskId);
    if (known && isReady(known.status)) return known;
    return new Promise<ResultDocument>((resolve, reject) => {
      let timer: NodeJS.Timeout | undefined;
      const waiter: Waiter = {
        resolve: (doc) => {
          clearTimeout(timer);
          resolve(doc);
        },
      };
      let set = this.waiters.get(taskId);
      if (!set) this.waiters.set(taskId, (set = new Set()));
      set.add(waiter);
      if (options.timeoutMs !== undefined) {
        timer = setTimeout(() => {
          this.waiters.get(taskId)?.delete(waiter);
          reject(new TimeoutError(`The result of task ${taskId} did not arrive on rpc:// within ${options.timeoutMs} ms.`));
        }, options.timeoutMs);
      }
    });
  }

  /** Results are messages already consumed: forgetting drops the local copy. */
  async forget(taskId: string): Promise<void> {
    this.latest.delete(taskId);
  }

  async close(): Promise<void> {
    this.closed = true;
    const consumer = this.consumer;
    this.consumer = undefined;
    const ch = await consumer?.channel.catch(() => undefined);
    await ch?.close().catch(() => undefined);
  }
}
