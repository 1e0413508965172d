/**
 * What the status and live-update routes of every web adapter answer: a task's
 * state, result, progress (Celery's `info` for custom states) and error, read
 * from the result backend; and a stream of its state changes pushed by the
 * backend (Redis pub/sub, memory directly; no polling), ending at a final state.
 */
import type { Celeriac } from '../app.js';
import type { ResultDocument } from '../backends/backend.js';
import { ConfigurationError, ResultBackendUnavailable } from '../errors.js';
import { describeRedisError, isConnectionError } from '../redis-connection.js';
import { EXCEPTION_STATES, READY_STATES, States, type TaskState } from '../states.js';

/** A task's status as JSON, for an HTTP response or an SSE event. */
export interface TaskStatus {
  taskId: string;
  /** `PENDING` (also for unknown ids, as in Celery), `STARTED`, `PROGRESS` or another custom state, `RETRY`, `SUCCESS`, `FAILURE`, `REVOKED`. */
  state: TaskState;
  /** True once the state is final (SUCCESS, FAILURE, REVOKED). */
  ready: boolean;
  /** The return value (SUCCESS only). */
  result?: unknown;
  /** The meta of a custom state (`updateState('PROGRESS', { current, total })`, Celery's `info`). */
  progress?: unknown;
  /** The exception of FAILURE, RETRY, REVOKED; `traceback` only with `tracebacks: true`. */
  error?: { type: string; message: string; traceback?: string };
  /** When the task reached its final state (ISO, UTC), or null. */
  dateDone: string | null;
}

/** Options of `getTaskStatus` / `watchTaskStatus`. */
export interface TaskStatusOptions {
  /** Include remote tracebacks in `error` (default false: they can reveal code and data). */
  tracebacks?: boolean;
}

/** Options of `watchTaskStatus`. */
export interface WatchTaskOptions extends TaskStatusOptions {
  /** Stop watching (e.g. when the HTTP client went away). */
  signal?: AbortSignal;
}

/** Task ids the routes accept: Celery's UUIDs and custom ids of letters, digits and `-_.:`, 1-200 characters. */
export function isTaskId(value: string): boolean {
  return /^[\w.:-]{1,200}$/.test(value);
}

/** The JSON status of a stored result document (or PENDING when there is none). */
export function taskStatusOf(taskId: string, doc: ResultDocument | null, options: TaskStatusOptions = {}): TaskStatus {
  if (!doc) return { taskId, state: States.PENDING, ready: false, dateDone: null };
  const state = doc.status;
  const status: TaskStatus = { taskId, state, ready: READY_STATES.has(state), dateDone: doc.date_done ? `${doc.date_done.replace(/Z$/, '')}Z` : null };
  if (state === States.SUCCESS) status.result = doc.result;
  else if (EXCEPTION_STATES.has(state)) status.error = errorOf(doc, options.tracebacks === true);
  else if (state !== States.PENDING && doc.result !== null && doc.result !== undefined) status.progress = doc.result;
  return status;
}

function errorOf(doc: ResultDocument, withTraceback: boolean): NonNullable<TaskStatus['error']> {
  const exc = doc.result as { exc_type?: unknown; exc_message?: unknown } | null;
  const type = typeof exc?.exc_type === 'string' ? exc.exc_type : 'Exception';
  const args = exc?.exc_message;
  const message = Array.isArray(args) ? args.map(String).join(', ') : args === undefined || args === null ? '' : String(args);
  return withTraceback && doc.traceback ? { type, message, traceback: doc.traceback } : { type, message };
}

/**
 * Read the stored document, or fail with `ResultBackendUnavailable` (HTTP 503) when
 * the backend is unreachable: at once on a connection error, or after
 * `brokerConnectionTimeout` seconds while the client is still retrying.
 */
async function readDocument(app: Celeriac, taskId: string): Promise<ResultDocument | null> {
  const backend = await app.getBackend();
  const limitMs = app.settings.brokerConnectionTimeout * 1000;
  let timer: NodeJS.Timeout | undefined;
  const unavailable = (reason: string) =>
    new ResultBackendUnavailable(`Cannot read the result of task ${taskId} from ${backend.displayUrl}: the result backend is unreachable (${reason}).`, backend.displayUrl);
  try {
    return await Promise.race([
      backend.getResult(taskId),
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(unavailable(`no answer within ${limitMs / 1000} s`)), limitMs);
        timer.unref();
      }),
    ]);
  } catch (err) {
    if (err instanceof ResultBackendUnavailable) throw err;
    if (isConnectionError(err)) throw unavailable(describeRedisError(err));
    throw err;
  } finally {
    clearTimeout(timer);
  }
}

/**
 * The task's current status from the app's result backend; rejects with
 * `ResultBackendUnavailable` (`statusCode` 503) when the backend is unreachable.
 */
export async function getTaskStatus(app: Celeriac, taskId: string, options: TaskStatusOptions = {}): Promise<TaskStatus> {
  return taskStatusOf(taskId, await readDocument(app, taskId), options);
}

/**
 * The task's status now, then each change pushed by the result backend, ending
 * after a final state (SUCCESS, FAILURE, REVOKED) or when `signal` aborts.
 * Consecutive identical documents are reported once.
 *
 * ```ts
 * for await (const status of watchTaskStatus(app, id, { signal })) console.log(status.state, status.progress);
 * ```
 */
export async function* watchTaskStatus(app: Celeriac, taskId: string, options: WatchTaskOptions = {}): AsyncGenerator<TaskStatus, void, undefined> {
  const { signal } = options;
  if (signal?.aborted) return;
  const backend = await app.getBackend();
  if (!backend.watch) {
    throw new ConfigurationError(`Result backend ${backend.displayUrl} cannot push state changes: live task updates need the redis:// or memory:// result backend.`);
  }
  const queue: (ResultDocument | null)[] = [];
  let wake: (() => void) | undefined;
  const nudge = () => {
    const w = wake;
    wake = undefined;
    w?.();
  };
  const watch = backend.watch(taskId, (doc) => {
    queue.push(doc);
    nudge();
  });
  signal?.addEventListener('abort', nudge);
  try {
    await watch.ready;
    queue.unshift(await readDocument(app, taskId)); // what was stored before the subscription was live
    let last: string | undefined;
    while (!signal?.aborted) {
      while (queue.length > 0) {
        const doc = queue.shift()!;
        const key = JSON.stringify(doc);
        if (key === last) continue;
        last = key;
        const status = taskStatusOf(taskId, doc, options);
        yield status;
        if (status.ready || signal?.aborted) return;
      }
      await new Promise<void>((resolve) => (wake = resolve));
    }
  } finally {
    watch.close();
    signal?.removeEventListener('abort', nudge);
  }
}
