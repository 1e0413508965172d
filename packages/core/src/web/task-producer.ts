/**
 * The request-scoped producer web adapters hand to route handlers (`req.tasks`,
 * `request.tasks`, Nest's `TaskProducer`): the same sends as the app, plus the
 * current request's id, W3C trace context and hook headers in each message.
 * It holds no state per request: it reads the request context at call time from
 * AsyncLocalStorage, so one instance can serve every request.
 */
import type { Celeriac } from '../app.js';
import type { ApplyOptions } from '../apply-options.js';
import type { Signature } from '../canvas/signature.js';
import type { AsyncResult } from '../result.js';
import type { Task } from '../task.js';
import { currentTask } from '../task-context.js';
import { currentRequestContext, REQUEST_CONTEXT_HEADERS, type RequestContext } from './request-context.js';
import { activeTraceHeaders } from './trace-context.js';

/** Options of `createTaskProducer`. */
export interface TaskProducerOptions {
  /**
   * Extra message headers per send, from the request context (e.g. a tenant id
   * from `ctx.headers['x-tenant']`). Protocol headers (`id`, `task`...) cannot be
   * overridden; headers given in a send's `options.headers` win over these.
   */
  headers?: (ctx: RequestContext) => Record<string, string | undefined> | undefined;
}

/** Sends tasks carrying the current request's context. */
export interface TaskProducer {
  /** `task.delay(...args)` with the request context in the headers. */
  delay<A extends unknown[], R>(task: Task<A, R>, ...args: A): Promise<AsyncResult<Awaited<R>>>;
  /** `task.applyAsync(args, kwargs, options)` with the request context in the headers. */
  applyAsync<A extends unknown[], R>(task: Task<A, R>, args?: A, kwargs?: Record<string, unknown>, options?: ApplyOptions): Promise<AsyncResult<Awaited<R>>>;
  /** `app.sendTask(name, ...)` (e.g. a task only a Python worker defines) with the request context in the headers. */
  send<R = unknown>(name: string, args?: readonly unknown[], kwargs?: Record<string, unknown>, options?: ApplyOptions): Promise<AsyncResult<R>>;
  /**
   * Send a signature, chain, group or chord (`chord([add.s(1, 1), add.s(2, 2)], xsum.s())`)
   * with the request context in every message it sends (the chord's body included).
   * Resolves with the canvas's result handle (a chord's: the body's).
   */
  applySignature<R>(signature: Signature<R>, options?: ApplyOptions): Promise<AsyncResult<R>>;
  /** The message headers a send made now would add (request id, trace context, hook headers). */
  contextHeaders(): Promise<Record<string, string>>;
}

/**
 * A producer for `app` that adds the current request context (see
 * `runWithRequestContext`) to every message: `request_id`, `traceparent` /
 * `tracestate` (from the active OpenTelemetry span when `@opentelemetry/api` is
 * installed, else the request's own), and the `headers` hook's headers. Inside a
 * task run by a worker, the running task's request context is passed on.
 *
 * ```ts
 * const tasks = createTaskProducer(app, { headers: (ctx) => ({ tenant: String(ctx.headers?.['x-tenant'] ?? '') }) });
 * await runWithRequestContext({ requestId: 'r-1' }, () => tasks.delay(add, 2, 2));
 * ```
 */
export function createTaskProducer(app: Celeriac, options: TaskProducerOptions = {}): TaskProducer {
  const contextHeaders = async (): Promise<Record<string, string>> => {
    const ctx = currentRequestContext() ?? currentTask()?.requestContext;
    const out: Record<string, string> = {};
    const trace = await activeTraceHeaders({ traceparent: ctx?.traceparent, tracestate: ctx?.tracestate });
    if (ctx?.requestId) out[REQUEST_CONTEXT_HEADERS.requestId] = ctx.requestId;
    if (trace.traceparent) out[REQUEST_CONTEXT_HEADERS.traceparent] = trace.traceparent;
    if (trace.traceparent && trace.tracestate) out[REQUEST_CONTEXT_HEADERS.tracestate] = trace.tracestate;
    if (ctx && options.headers) {
      for (const [k, v] of Object.entries(options.headers(ctx) ?? {})) if (typeof v === 'string') out[k] = v;
    }
    return out;
  };
  const withContext = async (given: ApplyOptions | undefined): Promise<ApplyOptions> => {
    const headers = await contextHeaders();
    return Object.keys(headers).length === 0 ? (given ?? {}) : { ...given, headers: { ...headers, ...given?.headers } };
  };
  return {
    async delay(task, ...args) {
      return task.applyAsync(args, undefined, await withContext(undefined));
    },
    async applyAsync(task, args, kwargs, applyOptions) {
      return task.applyAsync(args, kwargs, await withContext(applyOptions));
    },
    async send(name, args, kwargs, applyOptions) {
      return app.sendTask(name, args ?? [], kwargs ?? {}, await withContext(applyOptions));
    },
    async applySignature(signature, applyOptions) {
      return signature.applyAsync([], {}, await withContext(applyOptions));
    },
    contextHeaders,
  };
}
