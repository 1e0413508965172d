import { AsyncLocalStorage } from 'node:async_hooks';
import { processWide } from './process-state.js';
import type { TaskState } from './states.js';
import type { RequestContext } from './web/request-context.js';
import type { Signature } from './canvas/signature.js';

/** How the message reached the worker. */
export interface DeliveryInfo {
  exchange: string;
  routingKey: string;
  priority: number | null;
  redelivered: boolean;
}

/** Options of `retry()`. */
export interface RetryOptions {
  /** The error that caused the retry; raised as the final failure past `maxRetries`. */
  exc?: unknown;
  /** Seconds until the retry (default: the task's `defaultRetryDelay`, 180 s). */
  countdown?: number;
  /** Absolute time of the retry. */
  eta?: Date;
  /** Override the task's `maxRetries` for this call (null = unlimited). */
  maxRetries?: number | null;
}

/**
 * The per-run context of a task: the request Celery exposes as `self.request`,
 * plus `retry` and `updateState`. A task written as a `function` receives it as
 * `this`; any task can read it with `currentTask()`.
 */
export interface TaskContext {
  /** Task id. */
  readonly id: string;
  /** Registered task name. */
  readonly name: string;
  readonly args: readonly unknown[];
  /** Keyword arguments the caller passed (Python callers' kwargs land here). */
  readonly kwargs: Readonly<Record<string, unknown>>;
  /** How many times this task was retried so far. */
  readonly retries: number;
  readonly eta: Date | null;
  readonly expires: Date | null;
  readonly deliveryInfo: DeliveryInfo;
  /** Node name of the worker running it (`celeriac@host`). */
  readonly hostname: string;
  /** All message headers, including custom ones. */
  readonly headers: Readonly<Record<string, unknown>>;
  readonly parentId: string | null;
  readonly rootId: string;
  readonly groupId: string | null;
  readonly groupIndex: number | null;
  /**
   * Fires when the run should stop: at its soft time limit (reason
   * `SoftTimeLimitExceeded`), or at its hard limit (reason `TimeLimitExceeded`).
   * Pass it to `fetch`, `timers/promises`, streams and child processes so they
   * stop, or check `signal.throwIfAborted()` in loops. Never fires for a direct call.
   */
  readonly signal: AbortSignal;
  /**
   * The message's AMQP-style properties as Celery's `self.request.properties`
   * holds them: `correlation_id`, `reply_to`, `content_type`, `priority`,
   * `delivery_info`, ... (empty for a direct call).
   */
  readonly properties: Readonly<Record<string, unknown>>;
  /** True when the task was called directly (in-process), not by a worker. */
  readonly calledDirectly: boolean;
  /**
   * The web request that sent this task, from the message headers a request-scoped
   * producer (`createTaskProducer`, `req.tasks`) adds: `request_id`, W3C
   * `traceparent` / `tracestate`. Undefined when the message carries none.
   * Python producers that set these headers fill it too.
   */
  readonly requestContext?: RequestContext;
  /**
   * Re-send this task (same id, retries + 1) and end the current run. Always
   * rejects: `await this.retry(...)` (or `throw await ...`) never continues.
   * Past `maxRetries` it rejects with `exc` (or `MaxRetriesExceededError`).
   */
  retry(options?: RetryOptions): Promise<never>;
  /** Store a custom state (e.g. `PROGRESS` with `{ current, total }`). */
  updateState(state: TaskState, meta?: unknown): Promise<void>;
  /**
   * Celery's `Task.replace`: send `sig` (a task, chain, group or chord) in place of
   * this task — same id, callbacks, errbacks, group / chord membership and the rest
   * of the chain — and end this run. Always rejects: `return this.replace(...)`.
   */
  replace(sig: Signature): Promise<never>;
  /**
   * Celery's `Task.add_to_chord`: the chord this task is a header member of also
   * waits for `sig`, whose result joins the body's list. Sends it (returns its
   * result) unless `lazy`, which returns the prepared signature.
   */
  addToChord(sig: Signature, lazy?: boolean): Promise<unknown>;
}

/** One per process, shared by every copy of the package (ESM and CommonJS builds). */
const storage = processWide('task-context', () => new AsyncLocalStorage<TaskContext>());

/** The context of the task running in this async call chain, or undefined. */
export function currentTask(): TaskContext | undefined {
  return storage.getStore();
}

/** Run `fn` with `ctx` as the current task context. */
export function runInTaskContext<T>(ctx: TaskContext, fn: () => T): T {
  return storage.run(ctx, fn);
}
