import { randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import type { ApplyOptions } from './apply-options.js';
import type { ResultBackend } from './backends/backend.js';
import { createBackend } from './backends/index.js';
import type { Broker, Route } from './brokers/broker.js';
import { createBroker } from './brokers/index.js';
import { routingFromSettings } from './brokers/queue-topology.js';
import { Signature } from './canvas/signature.js';
import { GroupResult } from './canvas/index.js';
import { Control } from './control/control-client.js';
import { Events } from './events/events.js';
import { resolveSettings, type Settings } from './config.js';
import { ConfigurationError, NotRegistered } from './errors.js';
import { createLogger, type Logger } from './logger.js';
import { emitSignal, hasSignal, signalsOf, type Signals } from './signals.js';
import { maskUrl } from './mask-url.js';
import { publishWithRetry } from './publish-retry.js';
import { loggedConnectionEvents, SharedConnectionEvents, type ConnectionEvents } from './redis-client.js';
import { resolveRetryPolicy } from './config.js';
import type { TaskMessage, WireSignature } from './protocol/message.js';
import { buildTaskMessage } from './protocol/task-message.js';
import { parseWireDate } from './protocol/time.js';
import { AsyncResult } from './result.js';
import { resolveRoute } from './routing.js';
import { BeatRegistry } from './beat/registry.js';
import { createTask, type Task, type TaskFunction, type TaskOptions } from './task.js';
import { currentTask } from './task-context.js';
import { taskMethodsOf, type TaskMethods } from './task-decorator.js';
import { APP_BRAND, isCeleriacApp, processWide } from './process-state.js';

/** The process's app, shared by every copy of the package (see process-state.ts). */
const processApp = processWide('process-app', () => ({ app: undefined as Celeriac | undefined }));

/** One task of `Celeriac.sendMany`: what `sendTask(name, args, kwargs, options)` takes. */
export interface SendItem {
  /** The registered task name (what every worker and every language uses). */
  name: string;
  args?: readonly unknown[];
  kwargs?: Record<string, unknown>;
  options?: ApplyOptions;
}

interface PreparedSend {
  message: TaskMessage;
  route: Route;
  id: string;
}

/** What a connection is for, as named in outage lines. */
export type ConnectionRole = 'broker' | 'result backend';

/**
 * The application: a name, settings, the task registry, and lazily opened
 * connections. One per process; the web adapter or the worker binds its config
 * with `configure()`, and tasks may be declared before that.
 */
export class Celeriac {
  /** Brand recognised by `isCeleriacApp` in every copy of the package. */
  readonly [APP_BRAND] = true as const;
  /** `x instanceof Celeriac` holds for apps of any copy of the package (ESM and CommonJS builds). */
  static [Symbol.hasInstance](value: unknown): boolean {
    return isCeleriacApp(value);
  }
  private partial: Partial<Settings>;
  private resolved: Settings | undefined;
  private readonly registry = new Map<string, Task<never[], unknown>>();
  private brokerPromise: Promise<Broker> | undefined;
  private backendPromise: Promise<ResultBackend> | undefined;
  private lastBrokerError: string | undefined;
  private maskedBroker: { url: string; masked: string } | undefined;
  /** One outage report per role for every connection of this app (see `connectionEvents`). */
  private readonly outageReports = new Map<ConnectionRole, SharedConnectionEvents>();
  private log: Logger | undefined;
  /** Stable per-process id used as `reply_to` (Celery's "oid"). */
  readonly oid = randomUUID();
  /** `gen<pid>@<host>`, the `origin` header of messages sent from this process. */
  readonly origin = `gen${process.pid}@${hostname()}`;
  /** Periodic tasks: `app.beat.add(name, entry)`, and the dynamic schedule in Redis (`app.beat.dynamic`). */
  readonly beat: BeatRegistry = new BeatRegistry(this);

  constructor(
    /** The app name (Celery's `main`). */
    readonly name: string,
    config: Partial<Settings> = {},
  ) {
    this.partial = { ...config };
  }

  /**
   * Bind (more) settings. Allowed until the first connection is opened; after
   * that, changing the broker or backend URL throws.
   */
  configure(config: Partial<Settings>): this {
    if (this.brokerPromise && config.brokerUrl !== undefined && config.brokerUrl !== this.settings.brokerUrl) {
      throw new ConfigurationError(`configure() cannot change brokerUrl after the app connected (to ${maskUrl(this.settings.brokerUrl)}); call it before the first send.`);
    }
    if (this.backendPromise && config.resultBackend !== undefined && config.resultBackend !== this.settings.resultBackend) {
      throw new ConfigurationError(`configure() cannot change resultBackend after results were read or written (via ${maskUrl(this.resultBackendUrl ?? '')}); call it before the first send.`);
    }
    this.partial = { ...this.partial, ...config };
    this.resolved = undefined;
    return this;
  }

  /**
   * Remote control of the workers, Python and Celeriac alike (Celery's
   * `app.control`): `ping`, `inspect().active()`, `revoke(id)`, `broadcast(...)`.
   */
  get control(): Control {
    return (this.controlClient ??= new Control(this));
  }
  private controlClient: Control | undefined;

  /** Monitoring events (Celery's `app.events`): `receiver()` with a live cluster model. */
  get events(): Events {
    return (this.eventsClient ??= new Events(this));
  }
  private eventsClient: Events | undefined;

  /** The effective settings (defaults + everything configured). */
  get settings(): Settings {
    return (this.resolved ??= resolveSettings(this.partial));
  }

  /** The result backend URL in effect, or null when results are disabled. */
  get resultBackendUrl(): string | null {
    const s = this.settings;
    return s.resultBackend ?? (s.brokerUrl.startsWith('memory://') ? s.brokerUrl : null);
  }

  /** Register a task. The name is what every worker and every language uses. */
  task<A extends unknown[], R>(name: string, fn: TaskFunction<A, R>, options: TaskOptions<A, Awaited<R>> = {}): Task<A, R> {
    if (this.registry.has(name)) throw new ConfigurationError(`Task ${JSON.stringify(name)} is already registered; task names must be unique.`);
    const task = createTask(this, name, fn, options);
    this.registry.set(name, task as unknown as Task<never[], unknown>);
    return task;
  }

  /** Register every `@Task()` method of an object; returns typed handles. */
  registerTasks<T extends object>(instance: T): TaskMethods<T> {
    const handles: Record<string, unknown> = {};
    for (const meta of taskMethodsOf(instance)) {
      const method = (instance as Record<string, unknown>)[meta.method] as (...args: unknown[]) => unknown;
      handles[meta.method] = this.task(meta.name, method.bind(instance) as TaskFunction<unknown[], unknown>, meta.options as TaskOptions);
    }
    return handles as TaskMethods<T>;
  }

  /** A registered task by name; throws `NotRegistered` when unknown. */
  getTask(name: string): Task<never[], unknown> {
    const task = this.registry.get(name);
    if (!task) throw new NotRegistered(name);
    return task;
  }

  /** Whether a task name is registered here. */
  hasTask(name: string): boolean {
    return this.registry.has(name);
  }

  /**
   * Celery's signals for this app, as typed hooks:
   * `app.signals.connect('taskPrerun', ({ taskId }) => ...)`. A handler that throws
   * is logged and never breaks the task.
   */
  get signals(): Signals {
    return signalsOf(this);
  }

  /** Names of all registered tasks, sorted. */
  get taskNames(): string[] {
    return [...this.registry.keys()].sort();
  }

  /** A signature for a task by name (possibly one only another language defines). */
  signature<R = unknown>(name: string, args: unknown[] = [], kwargs: Record<string, unknown> = {}, options: Record<string, unknown> = {}): Signature<R> {
    return new Signature<R>(name, args, kwargs, options, false, null, this);
  }

  /**
   * A signature from Celery's dict form (`{task, args, kwargs, options,
   * subtask_type, immutable}`), e.g. one a Python caller passed as an argument:
   * chains, groups and chords come back as those primitives, bound to this app.
   */
  signatureFromWire<R = unknown>(wire: WireSignature): Signature<R> {
    return Signature.fromWire(wire, this) as Signature<R>;
  }

  /** The group result saved under `id` (`GroupResult.save()` here or in Python), or null. */
  restoreGroupResult<T = unknown>(id: string): Promise<GroupResult<T> | null> {
    return GroupResult.restore<T>(id, this);
  }

  /** A handle on a task id (for results sent elsewhere). */
  AsyncResult<R = unknown>(id: string): AsyncResult<R> {
    return new AsyncResult<R>(id, this);
  }

  /**
   * Send a task by name, whether or not this process registered it (e.g. a task
   * only a Python worker defines).
   */
  async sendTask<R = unknown>(name: string, args: readonly unknown[] = [], kwargs: Record<string, unknown> = {}, options: ApplyOptions = {}): Promise<AsyncResult<R>> {
    const { message, route, id } = this.prepareSend(name, args, kwargs, options);
    if (this.usesReplyQueue()) await this.prepareReplyQueue([id]);
    await this.publishMessage(message, route, options);
    return new AsyncResult<R>(id, this);
  }

  /**
   * Send many tasks in one batch: every message is built first (a bad item throws
   * before anything is sent), then the broker publishes them together (Redis: one
   * MULTI/EXEC, or one LPUSH for up to 1,000 messages to one list). Each message is byte for byte what `sendTask` would send for the
   * same item. Resolves with one `AsyncResult` per item, in order. While the broker
   * is unreachable the whole batch is retried like one `sendTask`, per the first
   * item's `retry` / `retryPolicy` (defaults: `taskPublishRetry`,
   * `taskPublishRetryPolicy`).
   *
   * ```ts
   * const results = await app.sendMany([{ name: 'tasks.add', args: [1, 2] }, { name: 'tasks.add', args: [3, 4], options: { priority: 9 } }]);
   * ```
   */
  async sendMany<R = unknown>(items: readonly SendItem[]): Promise<AsyncResult<R>[]> {
    if (!Array.isArray(items)) throw new TypeError(`sendMany() takes an array of { name, args?, kwargs?, options? }, got ${typeof items}.`);
    const prepared: PreparedSend[] = new Array(items.length);
    for (let i = 0; i < items.length; i++) {
      const item = items[i];
      if (typeof item !== 'object' || item === null || typeof item.name !== 'string' || item.name === '') {
        throw new TypeError(`sendMany() item ${i} must be an object with a task name ({ name: 'tasks.add', args: [1, 2] }), got ${JSON.stringify(item)}.`);
      }
      prepared[i] = this.prepareSend(item.name, item.args ?? [], item.kwargs ?? {}, item.options ?? {});
    }
    if (prepared.length === 0) return [];
    if (this.usesReplyQueue()) await this.prepareReplyQueue(prepared.map((p) => p.id));
    const broker = await this.getBroker();
    // No await per message when nothing is connected (the common case): one check per batch.
    if (hasSignal(this, 'beforeTaskPublish')) for (const p of prepared) await this.beforePublish(p.message, p.route);
    const publish = broker.publishMany
      ? () => broker.publishMany!(prepared)
      : async () => {
          for (const p of prepared) await broker.publish(p.message, p.route);
        };
    await this.publishWithPolicy(publish, items[0]!.options ?? {});
    if (this.settings.taskSendSentEvent) for (const p of prepared) void this.events.taskSent(p.message, p.route);
    if (hasSignal(this, 'afterTaskPublish')) for (const p of prepared) await this.afterPublish(p.message, p.route);
    return prepared.map((p) => new AsyncResult<R>(p.id, this));
  }

  /** Results that come back as messages (rpc://): the backend declares the reply queue before the tasks go out. */
  private usesReplyQueue(): boolean {
    return this.resultBackendUrl?.toLowerCase().startsWith('rpc:') === true;
  }

  /** Declare the reply queue (rpc://) before the tasks go out. */
  private async prepareReplyQueue(ids: readonly string[]): Promise<void> {
    if (!this.resultBackendUrl?.toLowerCase().startsWith('rpc:')) return;
    const backend = await this.getBackend();
    await backend.prepareSend?.(ids);
  }

  /** Build the message and route of one send (validates the options). */
  private prepareSend(name: string, args: readonly unknown[], kwargs: Record<string, unknown>, options: ApplyOptions): PreparedSend {
    const s = this.settings;
    const task = this.registry.get(name);
    const taskOptions = (task?.options ?? {}) as TaskOptions;
    const route = resolveRoute(name, options, s, taskOptions, { args, kwargs, task: task as Task | undefined });
    const id = options.taskId ?? randomUUID();
    const parent = currentTask();
    for (const field of ['countdown', 'expires'] as const) {
      const v = options[field];
      if (typeof v === 'number' && !Number.isFinite(v)) throw new RangeError(`${field} must be a finite number of seconds, got ${v} (sending ${name}).`);
    }
    const eta = options.eta !== undefined ? toDate(options.eta, 'eta') : options.countdown !== undefined ? new Date(Date.now() + options.countdown * 1000) : null;
    const expires =
      options.expires === undefined ? null : typeof options.expires === 'number' ? new Date(Date.now() + options.expires * 1000) : toDate(options.expires, 'expires');
    const links = (x: Signature | Signature[] | undefined) => (x === undefined ? null : (Array.isArray(x) ? x : [x]).map((sig) => sig.toJSON()));
    const hard = options.timeLimit ?? taskOptions.timeLimit ?? null;
    const soft = options.softTimeLimit ?? taskOptions.softTimeLimit ?? null;
    const message = buildTaskMessage({
      taskName: name,
      taskId: id,
      args,
      kwargs,
      eta,
      expires,
      retries: options.retries,
      groupId: options.groupId,
      groupIndex: options.groupIndex,
      rootId: options.rootId ?? parent?.rootId ?? id,
      parentId: options.parentId ?? parent?.id ?? null,
      shadow: options.shadow,
      argsrepr: options.argsrepr,
      kwargsrepr: options.kwargsrepr,
      timeLimit: [hard, soft],
      ignoreResult: options.ignoreResult ?? taskOptions.ignoreResult ?? s.taskIgnoreResult,
      callbacks: links(options.link),
      errbacks: links(options.linkError),
      chain: options.chain,
      chord: options.chord,
      headers: options.headers,
      origin: this.origin,
      replyTo: this.oid,
      priority: route.priority,
      serializer: options.serializer ?? taskOptions.serializer ?? s.taskSerializer,
      compression: options.compression ?? taskOptions.compression ?? s.taskCompression,
    });
    return { message, route, id };
  }

  /**
   * Publish a built message on the producer connection, retrying while the broker
   * is unreachable per `retry` / `retryPolicy` (defaults: `taskPublishRetry`,
   * `taskPublishRetryPolicy`); then `BrokerUnavailable`. Used by `sendTask` and by
   * a task's `retry()`.
   */
  async publishMessage(message: TaskMessage, route: Route, options: Pick<ApplyOptions, 'retry' | 'retryPolicy'> = {}): Promise<void> {
    const broker = await this.getBroker();
    // The signal checks here, not only inside: no await per publish when nothing is connected.
    if (hasSignal(this, 'beforeTaskPublish')) await this.beforePublish(message, route);
    await this.publishWithPolicy(() => broker.publish(message, route), options);
    if (this.settings.taskSendSentEvent) void this.events.taskSent(message, route);
    if (hasSignal(this, 'afterTaskPublish')) await this.afterPublish(message, route);
  }

  /** Celery's before_task_publish: handlers may still change headers and properties. */
  private async beforePublish(message: TaskMessage, route: Route): Promise<void> {
    if (!hasSignal(this, 'beforeTaskPublish')) return;
    await emitSignal(this, 'beforeTaskPublish', {
      sender: String(message.headers.task),
      body: message.body,
      exchange: route.exchange,
      routingKey: route.routingKey,
      headers: message.headers,
      properties: message.properties,
      message,
      route,
    });
  }

  /** Celery's after_task_publish. */
  private async afterPublish(message: TaskMessage, route: Route): Promise<void> {
    if (!hasSignal(this, 'afterTaskPublish')) return;
    await emitSignal(this, 'afterTaskPublish', { sender: String(message.headers.task), body: message.body, exchange: route.exchange, routingKey: route.routingKey, headers: message.headers });
  }

  /**
   * Run `operation` on the producer connection once it is live, retrying while the
   * broker is unreachable per `taskPublishRetryPolicy` (as a publish does); then
   * `BrokerUnavailable` saying `Cannot <action> <masked URL>`. For client commands
   * such as purge, so a broker that is away fails fast with a clear error.
   */
  async withBroker<T>(action: string, operation: (broker: Broker) => Promise<T>): Promise<T> {
    const broker = await this.getBroker();
    return this.publishWithPolicy(() => operation(broker), {}, action);
  }

  /** `maskUrl(url)`, parsed once per broker URL (not once per publish). */
  private maskedBrokerUrl(url: string): string {
    const cached = this.maskedBroker;
    if (cached?.url === url) return cached.masked;
    this.maskedBroker = { url, masked: maskUrl(url) };
    return this.maskedBroker.masked;
  }

  /** Run `publish`, retrying while the broker is unreachable (see `publishMessage`). */
  private async publishWithPolicy<T>(publish: () => Promise<T>, options: Pick<ApplyOptions, 'retry' | 'retryPolicy'>, action?: string): Promise<T> {
    const s = this.settings;
    const broker = await this.getBroker();
    return publishWithRetry(publish, {
      action,
      broker,
      displayUrl: this.maskedBrokerUrl(s.brokerUrl),
      retry: options.retry ?? s.taskPublishRetry,
      policy: options.retryPolicy ? resolveRetryPolicy({ ...s.taskPublishRetryPolicy, ...options.retryPolicy }) : s.taskPublishRetryPolicy,
      connectTimeoutMs: s.brokerConnectionTimeout * 1000,
      lastError: () => this.lastBrokerError,
    });
  }

  /** The producer connection, opened on first use. */
  getBroker(): Promise<Broker> {
    const s = this.settings;
    // A producer does not queue commands for a broker that is away: publishes retry per
    // taskPublishRetryPolicy instead, and reconnects are tried at least every 0.5 s.
    const redis = { maxRetriesPerRequest: 1, retryStrategy: (times: number) => Math.min(times * 50, 500), connectTimeout: s.brokerConnectionTimeout * 1000 };
    const transportOptions = { ...s.brokerTransportOptions, redis: { ...redis, ...(s.brokerTransportOptions.redis as object | undefined) } };
    const connectionEvents = this.connectionEvents('broker', { onDown: (_url, reason) => (this.lastBrokerError = reason) });
    return (this.brokerPromise ??= createBroker(s.brokerUrl, { transportOptions, connectionEvents, routing: routingFromSettings(s) }));
  }

  /** The result backend, opened on first use. Throws when results are disabled. */
  getBackend(): Promise<ResultBackend> {
    const url = this.resultBackendUrl;
    if (!url) {
      return Promise.reject(
        new ConfigurationError('No result backend configured: set resultBackend (e.g. "redis://localhost:6379/1") to store and read task results.'),
      );
    }
    const { resultExpires, resultBackendTransportOptions, resultSerializer, resultAcceptContent, acceptContent } = this.settings;
    const connectionEvents = this.connectionEvents('result backend');
    return (this.backendPromise ??= createBackend(url, {
      resultExpires,
      transportOptions: resultBackendTransportOptions,
      connectionEvents,
      serializer: resultSerializer,
      accept: resultAcceptContent ?? acceptContent,
      broker: () => this.getBroker(),
      replyTo: this.oid,
    }));
  }

  /**
   * Outage events for one more connection group of `role` (the producer, a worker's
   * consumer connection...). Every group of a role shares one report through
   * `logger`: an outage is one "lost" line and one "again after" line per URL, however
   * many groups saw it. `own` hooks run on this group's own reports.
   */
  connectionEvents(role: ConnectionRole, own: Partial<ConnectionEvents> = {}): ConnectionEvents {
    let shared = this.outageReports.get(role);
    if (!shared) this.outageReports.set(role, (shared = new SharedConnectionEvents(loggedConnectionEvents(() => this.logger, role))));
    return shared.member(own);
  }

  /**
   * Where the app's own connections (producer, result backend) report outages.
   * Default: a JSON logger on stderr; a worker sets its own.
   */
  get logger(): Logger {
    return (this.log ??= createLogger('info'));
  }

  set logger(log: Logger) {
    this.log = log;
  }

  /**
   * Close the producer and backend connections. Safe to call twice; never throws
   * (a connection that never opened, or a broker that is away, is just dropped).
   */
  async close(): Promise<void> {
    await this.controlClient?.close().catch(() => undefined);
    await this.eventsClient?.close().catch(() => undefined);
    const [broker, backend] = [this.brokerPromise, this.backendPromise];
    this.brokerPromise = this.backendPromise = undefined;
    const closing = [broker, backend].map((opened) => opened?.then((c) => c.close()));
    closing.push(this.beat.close());
    for (const outcome of await Promise.allSettled(closing)) {
      if (outcome.status === 'rejected') this.logger.debug({ err: outcome.reason }, 'Error while closing a connection (ignored)');
    }
  }
}

function toDate(value: Date | string, field: string): Date {
  if (value instanceof Date) {
    if (Number.isNaN(value.getTime())) throw new RangeError(`${field} is an invalid Date.`);
    return value;
  }
  return parseWireDate(value);
}

/**
 * Create the process's app. Tasks can be declared on it right away; the worker or
 * the web adapter calls `configure()` later.
 */
export function createApp(name: string, config: Partial<Settings> = {}): Celeriac {
  const app = new Celeriac(name, config);
  processApp.app ??= app;
  return app;
}

/** The first app created in this process, if any. */
export function currentApp(): Celeriac | undefined {
  return processApp.app;
}
