import type { Celeriac } from '../app.js';
import type { ResultDocument, ResultTuple } from '../backends/backend.js';
import { callErrbacks, chordPartReturn, failRestOfChain, sendCallbacks, sendNextStep, type CanvasRequest } from '../canvas/worker-steps.js';
import { Ignore, Reject, Retry } from '../errors.js';
import { toExceptionDocument, tracebackOf } from '../protocol/exceptions.js';
import { States, type TaskState } from '../states.js';
import { runInTaskContext } from '../task-context.js';
import type { Logger } from '../logger.js';
import { resultDocument, type ExtendedFields } from './result-document.js';
import type { TaskRequest } from './task-request.js';
import { callArguments } from './call-arguments.js';
import { longTimeout } from './long-timeout.js';
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
}

/** Raised when a task runs past its hard time limit. Mirrors billiard's `TimeLimitExceeded`. */
export class TimeLimitExceeded extends Error {
  override name = 'TimeLimitExceeded';
  readonly excArgs: unknown[];
  constructor(seconds: number) {
    super(`TimeLimitExceeded(${seconds})`);
    this.excArgs = [seconds];
  }
}

/**
 * The outcome could not be written to the result backend. Thrown out of
 * `recordOutcome` (the only way it throws) so the worker can give a late-ack
 * message back instead of acknowledging an unrecorded run.
 */
export class ResultNotStored extends Error {
  override name = 'ResultNotStored';
}

async function persist(store: NonNullable<RunDeps['storeResult']>, doc: ResultDocument): Promise<Error | undefined | void> {
  try {
    return await store(doc);
  } catch (err) {
    throw new ResultNotStored(`Could not store ${doc.status} for task ${doc.task_id}: ${(err as Error).message}`, { cause: err });
  }
}

function withHardLimit<T>(promise: Promise<T>, seconds: number | null): Promise<T> {
  if (!seconds || seconds === Infinity) return promise;
  let cancel: (() => void) | undefined;
  const limit = new Promise<never>((_, reject) => {
    // Limits past 24.8 days outlast one setTimeout: longTimeout re-arms instead of firing at once.
    cancel = longTimeout(() => reject(new TimeLimitExceeded(seconds)), seconds * 1000);
  });
  return Promise.race([promise, limit]).finally(() => cancel?.());
}

function shouldAutoretry(req: TaskRequest, error: unknown): boolean {
  const rule = req.task.options.autoretryFor;
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

/** This run as a chord header member (no-op in `chordPartReturn` when it is none). */
function chordPart(req: TaskRequest) {
  return { id: req.id, rootId: req.rootId, groupId: req.groupId, groupIndex: req.groupIndex, chord: req.decoded.embed.chord };
}

/** What the task function did: returned a value or threw (`startedAt` is a `performance.now()` time). */
export type FunctionOutcome = { ok: true; retval: unknown; startedAt: number } | { ok: false; error: unknown; startedAt: number };

/**
 * Run the task function (the part that holds a pool slot): STARTED first when
 * tracked, then the function under its hard time limit. Never throws.
 */
export async function runTaskFunction(req: TaskRequest, deps: RunDeps): Promise<FunctionOutcome> {
  const { app } = deps;
  const opts = req.task.options;
  const startedAt = performance.now();
  try {
    const store = req.ignoreResult ? null : deps.storeResult;
    if (store && (opts.trackStarted ?? app.settings.taskTrackStarted)) {
      await store(resultDocument(req.decoded, States.STARTED, { pid: process.pid, hostname: req.hostname }));
    }
    const hard = req.decoded.timeLimit[0] ?? opts.timeLimit ?? app.settings.taskTimeLimit;
    const args = callArguments(req.name, req.task.options, req.args, req.kwargs);
    const retval = await withHardLimit(
      Promise.resolve().then(() => runInTaskContext(req, () => req.task.fn.apply(req, args as never[]))),
      hard,
    );
    return { ok: true, retval, startedAt };
  } catch (error) {
    return { ok: false, error, startedAt };
  }
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
  const extended: ExtendedFields | undefined = app.settings.resultExtended
    ? { name: req.name, args: [...req.args], kwargs: { ...req.kwargs }, worker: req.hostname, retries: req.retries, queue: req.delivery.routingKey }
    : undefined;
  try {
    if (!ran.ok) throw ran.error;
    const retval = ran.retval;
    // Celery's order: callbacks and the next chain step are sent before SUCCESS is stored (canvas/worker-steps.ts).
    const canvasReq = canvasRequest(req);
    const children: ResultTuple[] = [...(await sendCallbacks(app, canvasReq, retval)), ...(await sendNextStep(app, canvasReq, retval))];
    const storedInstead = store ? await persist(store, resultDocument(req.decoded, States.SUCCESS, retval ?? null, null, children, extended)) : undefined;
    // Celery's tracer: a return value the serializer refuses is the task's failure (EncodeError, already stored).
    if (storedInstead) return recordFailure(req, deps, storedInstead, extended, null);
    await chordPartReturn(app, log, chordPart(req), States.SUCCESS, retval ?? null);
    if (log.isLevelEnabled('info')) {
      const runtime = (performance.now() - ran.startedAt) / 1000;
      log.info({ task: req.name, id: req.id, runtime }, `Task ${req.name}[${req.id}] succeeded in ${seconds(runtime)}s: ${pyRepr(retval)}`);
    }
    await hook(log, () => opts.onSuccess?.(retval, req.id, req.args as never[], req.kwargs));
    await hook(log, () => opts.afterReturn?.(States.SUCCESS, retval, req.id, req.args as never[], req.kwargs));
    return { state: States.SUCCESS };
  } catch (caught) {
    let error = caught;
    if (error instanceof ResultNotStored) throw error; // not the task's failure: the worker decides
    if (error instanceof Ignore) return { state: States.IGNORED };
    if (error instanceof Reject) {
      log.warn({ task: req.name, id: req.id, requeue: error.requeue }, `Task ${req.name}[${req.id}] rejected: ${error.reason}`);
      return { state: States.REJECTED, requeue: error.requeue };
    }
    if (!(error instanceof Retry) && shouldAutoretry(req, error)) {
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
      return { state: States.RETRY };
    }
    return recordFailure(req, deps, error, extended, store ?? (app.settings.taskStoreErrorsEvenIfIgnored ? deps.storeResult : null));
  }
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
  return { state: States.FAILURE };
}

async function hook(log: Logger, fn: () => unknown): Promise<void> {
  try {
    await fn();
  } catch (err) {
    log.error({ err }, 'Task hook threw; ignored');
  }
}
