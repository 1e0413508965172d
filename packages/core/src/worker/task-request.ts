import type { Celeriac } from '../app.js';
import type { ResultBackend } from '../backends/backend.js';
import type { Delivery } from '../brokers/broker.js';
import { addToChord, replaceTask } from '../canvas/replace.js';
import type { Signature } from '../canvas/signature.js';
import { MaxRetriesExceededError, Retry } from '../errors.js';
import { toExceptionDocument, tracebackOf } from '../protocol/exceptions.js';
import { argsRepr, kwargsRepr } from '../protocol/python-repr.js';
import { buildTaskMessage, type DecodedTask } from '../protocol/task-message.js';
import { States, type TaskState } from '../states.js';
import type { Task } from '../task.js';
import type { DeliveryInfo, RetryOptions, TaskContext } from '../task-context.js';
import { childTuple, resultDocument } from './result-document.js';
import { requestContextFromMessage, type RequestContext } from '../web/request-context.js';

/**
 * The worker's `TaskContext`: one per run of a received message. `retry`
 * re-publishes the message as Celery 5.2 does (same id, retries + 1, eta, the
 * original parent (itself when none), same queue and priority, custom headers
 * dropped, `replaced_task_nesting` and the original `origin` in the properties).
 */
export class TaskRequest implements TaskContext {
  readonly calledDirectly = false;
  readonly deliveryInfo: DeliveryInfo;
  private controller: AbortController | undefined;

  constructor(
    readonly decoded: DecodedTask,
    readonly delivery: Delivery,
    readonly task: Task<never[], unknown>,
    readonly hostname: string,
    readonly app: Celeriac,
    private readonly backend: ResultBackend | null,
  ) {
    const priority = delivery.message?.properties.priority;
    this.deliveryInfo = {
      exchange: delivery.exchange,
      routingKey: delivery.routingKey,
      priority: typeof priority === 'number' ? priority : null,
      redelivered: delivery.redelivered,
    };
  }

  /**
   * Aborted at the soft time limit (or the hard one); `signal` is what the task sees.
   * Made on first use: most runs have no time limit and never read it.
   */
  get abortController(): AbortController {
    return (this.controller ??= new AbortController());
  }

  /** True once `abortController` exists (a run without one was never aborted). */
  get hasAbortController(): boolean {
    return this.controller !== undefined;
  }

  get signal(): AbortSignal {
    return this.abortController.signal;
  }

  /** The message properties plus Celery's `delivery_info` (exchange, routing_key, priority, redelivered). */
  get properties(): Readonly<Record<string, unknown>> {
    const d = this.deliveryInfo;
    return {
      ...this.delivery.message?.properties,
      delivery_info: { exchange: d.exchange, routing_key: d.routingKey, priority: d.priority, redelivered: d.redelivered },
    };
  }

  get id() {
    return this.decoded.id;
  }
  get name() {
    return this.decoded.name;
  }
  get args() {
    return this.decoded.args;
  }
  get kwargs() {
    return this.decoded.kwargs;
  }
  get retries() {
    return this.decoded.retries;
  }
  get eta() {
    return this.decoded.eta;
  }
  get expires() {
    return this.decoded.expires;
  }
  get headers() {
    return this.decoded.headers;
  }
  /** The sending web request's id and trace context, from the message headers. */
  get requestContext(): RequestContext | undefined {
    return requestContextFromMessage(this.decoded.headers);
  }
  get parentId() {
    return this.decoded.parentId;
  }
  get rootId() {
    return this.decoded.rootId;
  }
  get groupId() {
    return this.decoded.groupId;
  }
  get groupIndex() {
    return this.decoded.groupIndex;
  }

  /** How many times this task was replaced (`Task.replace`); 0 unless the message says otherwise. */
  get replacedTaskNesting(): number {
    const fromHeaders = this.headers.replaced_task_nesting;
    const fromProperties = this.delivery.message?.properties.replaced_task_nesting;
    const n = typeof fromHeaders === 'number' ? fromHeaders : fromProperties;
    return typeof n === 'number' && Number.isSafeInteger(n) ? n : 0;
  }

  /** Acks late? The task option wins over the app setting. */
  get acksLate(): boolean {
    return this.task.options.acksLate ?? this.app.settings.taskAcksLate;
  }

  /** Requeue (instead of ack) when the worker is lost mid-run? Only with acks late, as in Celery. */
  get rejectOnWorkerLost(): boolean {
    return this.task.options.rejectOnWorkerLost ?? this.app.settings.taskRejectOnWorkerLost;
  }

  /** Should results be stored for this run? */
  get ignoreResult(): boolean {
    return this.decoded.ignoreResult || (this.task.options.ignoreResult ?? this.app.settings.taskIgnoreResult);
  }

  async retry(options: RetryOptions = {}): Promise<never> {
    const maxRetries = options.maxRetries !== undefined ? options.maxRetries : this.task.options.maxRetries !== undefined ? this.task.options.maxRetries : this.app.settings.taskMaxRetries;
    if (maxRetries !== null && this.retries >= maxRetries) {
      if (options.exc !== undefined) throw options.exc;
      throw new MaxRetriesExceededError(`Can't retry ${this.name}[${this.id}] args:${argsRepr(this.args)} kwargs:${kwargsRepr(this.kwargs)}`);
    }
    const delaySeconds = options.countdown ?? this.task.options.defaultRetryDelay ?? this.app.settings.taskDefaultRetryDelay;
    const when = options.eta ?? new Date(Date.now() + delaySeconds * 1000);
    const { embed } = this.decoded;
    const message = buildTaskMessage({
      taskName: this.name,
      taskId: this.id,
      args: this.args,
      kwargs: this.kwargs,
      eta: when,
      expires: this.expires,
      retries: this.retries + 1,
      groupId: this.groupId,
      groupIndex: this.groupIndex,
      rootId: this.rootId,
      // Celery passes request.parent_id on; send_task fills a missing one with the current task (itself).
      parentId: this.parentId ?? this.id,
      shadow: this.decoded.shadow,
      timeLimit: this.decoded.timeLimit,
      ignoreResult: this.decoded.ignoreResult,
      callbacks: embed.callbacks,
      errbacks: embed.errbacks,
      chain: embed.chain,
      chord: embed.chord,
      origin: this.app.origin,
      replyTo: (this.delivery.message?.properties.reply_to as string | undefined) ?? this.app.oid,
      priority: this.deliveryInfo.priority,
      serializer: this.task.options.serializer ?? this.app.settings.taskSerializer,
      // Celery 5.2 passes these execution options on, and kombu files unknown options
      // under properties: the original origin and the replace nesting (w08, w09b).
      extraProperties: { replaced_task_nesting: this.replacedTaskNesting, origin: typeof this.headers.origin === 'string' ? this.headers.origin : null },
    });
    await this.app.publishMessage(message, { exchange: this.delivery.exchange, routingKey: this.delivery.routingKey, priority: this.deliveryInfo.priority ?? undefined });
    const seconds = Math.max(0, Math.round((when.getTime() - Date.now()) / 1000));
    throw new Retry(`Retry in ${seconds}s${options.exc !== undefined ? `: ${String((options.exc as Error)?.message ?? options.exc)}` : ''}`, options.exc, when);
  }

  /** Celery's `Task.replace` (canvas/replace.ts). */
  replace(sig: Signature): Promise<never> {
    return replaceTask(this.app, this.canvasView(), sig);
  }

  /** Celery's `Task.add_to_chord` (canvas/replace.ts). */
  addToChord(sig: Signature, lazy = false): Promise<unknown> {
    return addToChord(this.app, this.canvasView(), sig, lazy);
  }

  private canvasView() {
    return { id: this.id, rootId: this.rootId, groupId: this.groupId, groupIndex: this.groupIndex, embed: this.decoded.embed, replacedTaskNesting: this.replacedTaskNesting };
  }

  async updateState(state: TaskState, meta: unknown = null): Promise<void> {
    if (!this.backend || this.ignoreResult) return;
    await this.backend.storeResult(resultDocument(this.decoded, state, meta));
  }

  /** Store RETRY after the retry message went out (Celery's order). */
  retryDocument(error: Retry) {
    // Celery stores the `exc` given to retry() (null without one), not the Retry itself.
    const result = error.exc === undefined ? null : toExceptionDocument(error.exc);
    return resultDocument(this.decoded, States.RETRY, result, tracebackOf(error.exc ?? error), [childTuple(this.id)]);
  }
}
