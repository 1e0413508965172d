import { constants as osConstants } from 'node:os';
import type { Celeriac } from '../app.js';
import type { ResultDocument, ResultTuple } from '../backends/backend.js';
import { callErrbacks, chordPartReturn, failRestOfChain, returnedValue, sendCallbacks, sendNextStep, type CanvasRequest } from '../canvas/worker-steps.js';
import { Ignore, Reject, Retry, TaskRevokedError, TaskTerminated, TimeLimitExceeded, WorkerLostError } from '../errors.js';
import { toExceptionDocument, tracebackOf } from '../protocol/exceptions.js';
import { States, type TaskState } from '../states.js';
import { runInTaskContext } from '../task-context.js';
import { emitSignal, hasSignal } from '../signals.js';
import type { Logger } from '../logger.js';
import { resultDocument, type ExtendedFields } from './result-document.js';
import type { TaskRequest } from './task-request.js';
import type { TaskOptions } from '../task.js';
import { ChildTaskError } from './pool-protocol.js';
import { callArguments } from './call-arguments.js';
import { longTimeout } from './long-timeout.js';
import { armSoftLimit, failureAfterAbort, timeLimitsFor, type TimeLimits } from './time-limits.js';
import { pyRepr } from '../protocol/python-repr.js';

/** Seconds as Python prints a float: `0.004012`, `2.5`, `0.0`. */
const seconds = (s: number) => s.toFixed(6).replace(/0+$/, '').replace(/\.$/, '.0');

/** An exception as Celery's `%r` shows it: `TypeError('bad input')`. */
const exceptionRepr = (error: unknown) => (error instanceof Error ? `${error.name}(${pyRepr(error.message)})` : pyRepr(error));

/** How a run ended, for the consumer's ack decision. */
export interface RunOutcome {
  state: TaskState;
  /** For REJECTED: put the message back on the queue. */
  requeue?: boolean;
}

/** What running a task needs from the worker. */
export interface RunDeps {
  app: Celeriac;
  log: Logger;
  /**
   * Store a result document (batched by the worker); null when results are
   * disabled. Resolves with the error stored instead when the document could not
   * be encoded (kombu's EncodeError).
   */
  storeResult: ((doc: ResultDocument) => Promise<Error | undefined | void>) | null;
  /** The worker's default time limits (`--time-limit`, `--soft-time-limit`), under the message's and the task's. */
  timeLimits?: Partial<TimeLimits>;
}

/** Re-exported from `errors.ts`, where it lives with `SoftTimeLimitExceeded`. */
export { TimeLimitExceeded };

/**
 * The outcome could not be written to the result backend. Thrown out of
 * `recordOutcome` (the only way it throws) so the worker can give a late-ack
 * message back instead of acknowledging an unrecorded run.
 */
export class ResultNotStored extends Error {
  override name = 'ResultNotStored';
}

function persist(store: NonNullable<RunDeps['storeResult']>, doc: ResultDocument): Promise<Error | undefined | void> {
  return store(doc).catch((err: unknown) => {
    throw new ResultNotStored(`Could not store ${doc.status} for task ${doc.task_id}: ${(err as Error).message}`, { cause: err });
  });
}

/** Does the task's `autoretryFor` match this error? (An error from a pool thread/child carries the child's answer.) */
export function shouldAutoretry(options: Pick<TaskOptions, 'autoretryFor'>, error: unknown): boolean {
  if (error instanceof ChildTaskError) return error.autoretry;
  const rule = options.autoretryFor;
  if (!rule) return false;
  if (typeof rule === 'function') return rule(error);
  return rule.some((cls) => error instanceof (cls as unknown as new () => Error));
}

/** Countdown for autoretry: Celery's exponential backoff with optional full jitter. */
function backoffSeconds(req: TaskRequest): number | undefined {
  const { retryBackoff, retryBackoffMax = 600, retryJitter = true } = req.task.options;
  if (!retryBackoff) return undefined;
  const factor = retryBackoff === true ? 1 : retryBackoff;
  const countdown = Math.min(retryBackoffMax, factor * 2 ** req.retries);
  return retryJitter ? Math.random() * countdown : countdown;
}

/** The request as the canvas steps read it. */
function canvasRequest(req: TaskRequest): CanvasRequest & TaskRequest {
  return Object.assign(Object.create(req) as TaskRequest, { embed: req.decoded.embed }) as CanvasRequest & TaskRequest;
}

/** Does the message carry `link` callbacks or a rest of chain to send on success? */
function hasCanvasSteps(req: TaskRequest): boolean {
  const { callbacks, chain } = req.decoded.embed;
  return (callbacks !== undefined && callbacks !== null && callbacks.length > 0) || (chain !== undefined && chain !== null && chain.length > 0);
}

/** Callbacks, then the next chain step (Celery's order); their children for the result document. */
async function sendCanvasSteps(app: Celeriac, req: TaskRequest, retval: unknown): Promise<ResultTuple[]> {
  const canvasReq = canvasRequest(req);
  return [...(await sendCallbacks(app, canvasReq, retval)), ...(await sendNextStep(app, canvasReq, retval))];
}

/** Is this run a chord header member (what `chordPartReturn` counts)? */
function isChordPart(req: TaskRequest): boolean {
  return Boolean(req.decoded.embed.chord) && Boolean(req.groupId);
}

/** This run as a chord header member (no-op in `chordPartReturn` when it is none). */
function chordPart(req: TaskRequest) {
  return { id: req.id, rootId: req.rootId, groupId: req.groupId, groupIndex: req.groupIndex, chord: req.decoded.embed.chord };
}

/**
 * What the task function did: returned a value or threw (`startedAt` is a
 * `performance.now()` time). `stillRunning` is set when the hard time limit ended
 * the wait while the function's code goes on (the async pool cannot stop it): it
 * settles when that code finally returns, and the pool keeps the slot until then.
 */
export type FunctionOutcome = ({ ok: true; retval: unknown } | { ok: false; error: unknown }) & { startedAt: number; stillRunning?: Promise<void> };

/** Celery's task_prerun (every pool sends it from the worker, right before the function runs). */
export async function taskPrerun(req: TaskRequest, deps: RunDeps): Promise<void> {
  if (hasSignal(deps.app, 'taskPrerun')) await emitSignal(deps.app, 'taskPrerun', { sender: req.name, taskId: req.id, task: req, args: req.args, kwargs: req.kwargs });
}

/** Celery's task_postrun, after the outcome was recorded. */
async function taskPostrun(req: TaskRequest, deps: RunDeps, retval: unknown, state: TaskState): Promise<void> {
  if (hasSignal(deps.app, 'taskPostrun')) await emitSignal(deps.app, 'taskPostrun', { sender: req.name, taskId: req.id, task: req, args: req.args, kwargs: req.kwargs, retval, state });
}

/** Is STARTED stored for this run (`trackStarted`, results not ignored, a backend)? */
function tracksStarted(req: TaskRequest, deps: RunDeps): boolean {
  return deps.storeResult !== null && (req.task.options.trackStarted ?? deps.app.settings.taskTrackStarted) && !req.ignoreResult;
}

/** STARTED, when tracked, with the pid and hostname Celery stores. */
export async function storeStarted(req: TaskRequest, deps: RunDeps, pid: number = process.pid): Promise<void> {
  const store = req.ignoreResult ? null : deps.storeResult;
  if (store && (req.task.options.trackStarted ?? deps.app.settings.taskTrackStarted)) {
    await store(resultDocument(req.decoded, States.STARTED, { pid, hostname: req.hostname }));
  }
}

/**
 * Run the task function on this event loop (the part that holds a pool slot):
 * STARTED first when tracked, then the function under its time limits. The soft
 * limit aborts the context's `signal` with `SoftTimeLimitExceeded`; the hard limit
 * ends the wait with `TimeLimitExceeded` and hands back the still-running code as
 * `stillRunning`. Never throws.
 */
export async function runTaskFunction(req: TaskRequest, deps: RunDeps): Promise<FunctionOutcome> {
  const { log } = deps;
  const startedAt = performance.now();
  let cancelSoft = () => undefined as void;
  let cancelHard = () => undefined as void;
  try {
    if (tracksStarted(req, deps)) await storeStarted(req, deps);
    const limits = timeLimitsFor(req, deps.timeLimits);
    const args = callArguments(req.name, req.task.options, req.args, req.kwargs);
    if (hasSignal(deps.app, 'taskPrerun')) await taskPrerun(req, deps);
    const body = Promise.resolve().then(() => runInTaskContext(req, () => req.task.fn.apply(req, args as never[])));
    if (limits.soft !== null) cancelSoft = armSoftLimit(req.abortController, limits.soft, log, `${req.name}[${req.id}]`);
    const hard = limits.hard;
    if (hard === null) return { ok: true, retval: await body, startedAt };
    const hardHit = new Promise<typeof HARD>((resolve) => {
      // Limits past 24.8 days outlast one setTimeout: longTimeout re-arms instead of firing at once.
      cancelHard = longTimeout(() => resolve(HARD), hard * 1000);
    });
    const first = await Promise.race([body.then((retval) => ({ retval })), hardHit]);
    if (first !== HARD) return { ok: true, retval: first.retval, startedAt };
    const error = new TimeLimitExceeded(hard);
    const controller = req.abortController;
    if (!controller.signal.aborted) controller.abort(error);
    log.error(
      { task: req.name, id: req.id, timeLimit: hard },
      `Hard time limit (${hard}s) exceeded for ${req.name}[${req.id}]: stored FAILURE; on the async pool its JavaScript cannot be stopped and keeps its pool slot until it returns (use --pool threads or processes to have it terminated)`,
    );
    const stillRunning = body.then(
      () => undefined,
      () => undefined,
    );
    return { ok: false, error, startedAt, stillRunning };
  } catch (error) {
    return { ok: false, error: failureOf(req, error), startedAt };
  } finally {
    cancelSoft();
    cancelHard();
  }
}

const HARD = Symbol('hard time limit');

/** What a run that threw failed with (after a time limit aborted it, the limit's error). */
function failureOf(req: TaskRequest, error: unknown): unknown {
  return req.hasAbortController ? failureAfterAbort(error, req.abortController.signal) : error;
}

/** `result_extended` fields of the stored document, when enabled. */
function extendedFields(req: TaskRequest, app: Celeriac): ExtendedFields | undefined {
  return app.settings.resultExtended
    ? { name: req.name, args: [...req.args], kwargs: { ...req.kwargs }, worker: req.hostname, retries: req.retries, queue: req.delivery.routingKey }
    : undefined;
}

/** Celery's "Task x[id] succeeded in 0.004012s: 3" line (built only when info is on). */
function logSucceeded(log: Logger, req: TaskRequest, ran: FunctionOutcome, retval: unknown): void {
  if (!log.isLevelEnabled('info')) return;
  const runtime = (performance.now() - ran.startedAt) / 1000;
  log.info({ task: req.name, id: req.id, runtime }, `Task ${req.name}[${req.id}] succeeded in ${seconds(runtime)}s: ${pyRepr(retval)}`);
}

/**
 * Can `runTaskFunctionInline` run this request? Only when `runTaskFunction` would do
 * nothing but call the function: no time limit to arm, no STARTED to store first, no
 * task_prerun receiver.
 */
export function runsInline(req: TaskRequest, deps: RunDeps): boolean {
  if (tracksStarted(req, deps) || hasSignal(deps.app, 'taskPrerun')) return false;
  const limits = timeLimitsFor(req, deps.timeLimits);
  return limits.hard === null && limits.soft === null;
}

const isThenable = (value: unknown): value is PromiseLike<unknown> =>
  value !== null && (typeof value === 'object' || typeof value === 'function') && typeof (value as { then?: unknown }).then === 'function';

/**
 * `runTaskFunction` for a request `runsInline` accepts, without its promises: a
 * function that returns (or throws) synchronously has its outcome returned at once;
 * one that returns a promise gets a promise of it. Never throws. The caller must not
 * call it in the same synchronous step as the message's delivery (the worker runs it
 * after the early-ack gate opens).
 */
export function runTaskFunctionInline(req: TaskRequest, deps: RunDeps): FunctionOutcome | Promise<FunctionOutcome> {
  const startedAt = performance.now();
  const failed = (error: unknown): FunctionOutcome => ({ ok: false, error: failureOf(req, error), startedAt });
  let value: unknown;
  try {
    const args = callArguments(req.name, req.task.options, req.args, req.kwargs);
    value = runInTaskContext(req, () => req.task.fn.apply(req, args as never[]));
  } catch (error) {
    return failed(error);
  }
  if (!isThenable(value)) return { ok: true, retval: value, startedAt };
  return Promise.resolve(value).then((retval): FunctionOutcome => ({ ok: true, retval, startedAt }), failed);
}

/**
 * Record what the function did, the way Celery's tracer does: on success send
 * callbacks / the next chain step, then store SUCCESS; on error RETRY, autoretry,
 * or FAILURE with errbacks. Hooks run last. Runs after the pool slot is freed.
 * Throws only `ResultNotStored`.
 */
export async function recordOutcome(req: TaskRequest, deps: RunDeps, ran: FunctionOutcome): Promise<RunOutcome> {
  const { app, log } = deps;
  const opts = req.task.options;
  const store = req.ignoreResult ? null : deps.storeResult;
  const extended = extendedFields(req, app);
  try {
    if (!ran.ok) throw ran.error;
    const retval = returnedValue(ran.retval);
    // Celery's order: callbacks and the next chain step are sent before SUCCESS is stored (canvas/worker-steps.ts).
    // The common case (no canvas, no hooks, no signals) skips each step without an await:
    // a no-op task's whole run is a handful of promises, not twenty.
    const children: ResultTuple[] = hasCanvasSteps(req) ? await sendCanvasSteps(app, req, retval) : [];
    const storedInstead = store ? await persist(store, resultDocument(req.decoded, States.SUCCESS, retval ?? null, null, children, extended)) : undefined;
    // Celery's tracer: a return value the serializer refuses is the task's failure (EncodeError, already stored).
    if (storedInstead) return recordFailure(req, deps, storedInstead, extended, null);
    if (isChordPart(req)) await chordPartReturn(app, log, chordPart(req), States.SUCCESS, retval ?? null);
    logSucceeded(log, req, ran, retval);
    if (opts.onSuccess) await hook(log, () => opts.onSuccess?.(retval, req.id, req.args as never[], req.kwargs));
    if (opts.afterReturn) await hook(log, () => opts.afterReturn?.(States.SUCCESS, retval, req.id, req.args as never[], req.kwargs));
    if (hasSignal(app, 'taskSuccess')) await emitSignal(app, 'taskSuccess', { sender: req.name, result: retval, request: req });
    if (hasSignal(app, 'taskPostrun')) await taskPostrun(req, deps, retval, States.SUCCESS);
    return { state: States.SUCCESS };
  } catch (caught) {
    let error = caught;
    if (error instanceof ResultNotStored) throw error; // not the task's failure: the worker decides
    if (error instanceof Ignore) return { state: States.IGNORED };
    if (error instanceof TaskTerminated) return recordTerminated(req, deps, error, store);
    if (error instanceof TaskRevokedError) return recordDiscarded(req, deps, error, store);
    if (error instanceof Reject) {
      log.warn({ task: req.name, id: req.id, requeue: error.requeue }, `Task ${req.name}[${req.id}] rejected: ${error.reason}`);
      return { state: States.REJECTED, requeue: error.requeue };
    }
    if (error instanceof WorkerLostError && req.acksLate && req.rejectOnWorkerLost) {
      // Celery: the message goes back to the queue and no FAILURE is stored (another worker runs it).
      log.error({ task: req.name, id: req.id }, `Task ${req.name}[${req.id}] lost its pool ${error.message}; message requeued (acksLate + rejectOnWorkerLost)`);
      return { state: States.REJECTED, requeue: true };
    }
    if (!(error instanceof Retry) && shouldAutoretry(req.task.options, error)) {
      try {
        await req.retry({ exc: error, countdown: backoffSeconds(req) });
      } catch (retryOutcome) {
        error = retryOutcome;
      }
    }
    if (error instanceof Retry) {
      if (store) await persist(store, req.retryDocument(error));
      log.info({ task: req.name, id: req.id }, `Task ${req.name}[${req.id}] retry: ${error.message}`);
      await hook(log, () => opts.onRetry?.(error instanceof Retry ? (error.exc ?? error) : error, req.id, req.args as never[], req.kwargs));
      await emitSignal(app, 'taskRetry', { sender: req.name, request: req, reason: error.exc ?? error });
      await taskPostrun(req, deps, error, States.RETRY);
      return { state: States.RETRY };
    }
    return recordFailure(req, deps, error, extended, store ?? (app.settings.taskStoreErrorsEvenIfIgnored ? deps.storeResult : null));
  }
}

/** A result write that reports by callback (`ResultWriter.write`). */
export type WriteResult = (doc: ResultDocument, done: (err: Error | undefined, replacedBy?: Error) => void) => void;

/**
 * `recordOutcome` for its common case, without promises: the function returned (no
 * failure), and there is no canvas step, chord, hook or signal to run. Returns false,
 * having done nothing, for any other run (use `recordOutcome`). Otherwise SUCCESS is
 * handed to `write` (when results are kept) and `done` gets what `recordOutcome` would
 * have resolved with — or the `ResultNotStored` it would have thrown — never in this
 * synchronous step.
 */
export function recordSuccessInline(req: TaskRequest, deps: RunDeps, ran: FunctionOutcome, write: WriteResult | null, done: (outcome: RunOutcome | ResultNotStored) => void): boolean {
  const { app, log } = deps;
  const opts = req.task.options;
  if (!ran.ok || hasCanvasSteps(req) || isChordPart(req) || opts.onSuccess || opts.afterReturn || hasSignal(app, 'taskSuccess') || hasSignal(app, 'taskPostrun')) return false;
  const retval = returnedValue(ran.retval);
  const succeeded = () => {
    logSucceeded(log, req, ran, retval);
    done({ state: States.SUCCESS });
  };
  const store = req.ignoreResult || !deps.storeResult ? null : write;
  if (!store) {
    queueMicrotask(succeeded);
    return true;
  }
  const extended = extendedFields(req, app);
  store(resultDocument(req.decoded, States.SUCCESS, retval ?? null, null, [], extended), (err, storedInstead) => {
    if (err) done(new ResultNotStored(`Could not store SUCCESS for task ${req.id}: ${err.message}`, { cause: err }));
    // A return value the serializer refuses is the task's failure (EncodeError, already stored).
    else if (storedInstead) recordFailure(req, deps, storedInstead, extended, null).then(done, (e: unknown) => done(e instanceof ResultNotStored ? e : new ResultNotStored(String(e), { cause: e })));
    else succeeded();
  });
  return true;
}

/**
 * Terminated by remote control (Celery's `_announce_revoked('terminated', ...)`):
 * REVOKED with `TaskRevokedError('terminated')`, the task_revoked signal with
 * `terminated` and the signal number; no failure hooks, no errbacks.
 */
async function recordTerminated(req: TaskRequest, deps: RunDeps, error: TaskTerminated, store: RunDeps['storeResult'] | null): Promise<RunOutcome> {
  deps.log.info({ task: req.name, id: req.id, signal: error.signal }, `Task ${req.name}[${req.id}] terminated (${error.signal}): stored REVOKED`);
  if (store) await persist(store, resultDocument(req.decoded, States.REVOKED, toExceptionDocument(error)));
  await emitSignal(deps.app, 'taskRevoked', { sender: req.name, request: req, terminated: true, signum: signalNumber(error.signal), expired: false });
  return { state: States.REVOKED };
}

/**
 * Revoked while a pool member held it, before it started (the pool dropped it):
 * REVOKED with `TaskRevokedError('revoked')` and the task_revoked signal, as for a
 * revoked message discarded before it reaches the pool.
 */
async function recordDiscarded(req: TaskRequest, deps: RunDeps, error: TaskRevokedError, store: RunDeps['storeResult'] | null): Promise<RunOutcome> {
  deps.log.info({ task: req.name, id: req.id }, `Discarding revoked task: ${req.name}[${req.id}] (held by a pool member, not started)`);
  if (store) await persist(store, resultDocument(req.decoded, States.REVOKED, toExceptionDocument(error)));
  await emitSignal(deps.app, 'taskRevoked', { sender: req.name, request: req, terminated: false, signum: null, expired: false });
  return { state: States.REVOKED };
}

/** The number of a signal name as Celery reports `signum` (`SIGTERM` → `'15'`: `str(Terminated(15))`). */
export function signalNumber(signal: string): string | null {
  const n = (osConstants.signals as Record<string, number>)[signal];
  return n === undefined ? null : String(n);
}

async function recordFailure(req: TaskRequest, deps: RunDeps, error: unknown, extended: ExtendedFields | undefined, store: RunDeps['storeResult']): Promise<RunOutcome> {
  const { log } = deps;
  const traceback = error instanceof TimeLimitExceeded ? null : tracebackOf(error);
  if (store) await persist(store, resultDocument(req.decoded, States.FAILURE, toExceptionDocument(error), traceback, [], extended));
  // Celery's mark_as_failure: count for the chord, fail the rest of the chain, then errbacks (canvas/worker-steps.ts).
  try {
    const exc = toExceptionDocument(error);
    await chordPartReturn(deps.app, log, chordPart(req), States.FAILURE, exc);
    await failRestOfChain(deps.app, log, canvasRequest(req), error, traceback, store !== null);
    await callErrbacks(deps.app, log, canvasRequest(req), error, traceback);
  } catch (err) {
    log.error({ err, task: req.name, id: req.id }, `Could not run the chord, chain or errbacks of failed task ${req.name}[${req.id}]`);
  }
  log.error({ task: req.name, id: req.id, err: error }, `Task ${req.name}[${req.id}] raised unexpected: ${exceptionRepr(error)}`);
  const opts = req.task.options;
  await hook(log, () => opts.onFailure?.(error, req.id, req.args as never[], req.kwargs, traceback));
  await hook(log, () => opts.afterReturn?.(States.FAILURE, error, req.id, req.args as never[], req.kwargs));
  await emitSignal(deps.app, 'taskFailure', { sender: req.name, taskId: req.id, exception: error, args: req.args, kwargs: req.kwargs, traceback, request: req });
  await taskPostrun(req, deps, error, States.FAILURE);
  return { state: States.FAILURE };
}

async function hook(log: Logger, fn: () => unknown): Promise<void> {
  try {
    await fn();
  } catch (err) {
    log.error({ err }, 'Task hook threw; ignored');
  }
}
