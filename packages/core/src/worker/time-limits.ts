/**
 * Time limits of one run: which hard and soft limits apply (the message's
 * `timelimit` header, then the task's options, then the worker's defaults, then
 * the app's settings — Celery's order), and the soft-limit timer that aborts the
 * task context's signal with `SoftTimeLimitExceeded`.
 */
import { SoftTimeLimitExceeded, TaskTerminated, TimeLimitExceeded } from '../errors.js';
import type { Logger } from '../logger.js';
import { longTimeout } from './long-timeout.js';
import type { TaskRequest } from './task-request.js';

/** Seconds; null = no limit. */
export interface TimeLimits {
  hard: number | null;
  soft: number | null;
}

const limit = (n: number | null | undefined): number | null => (typeof n === 'number' && n > 0 && Number.isFinite(n) ? n : null);

/** The limits for this run: message header → task option → worker default → app setting. */
export function timeLimitsFor(req: TaskRequest, workerDefaults: Partial<TimeLimits> = {}): TimeLimits {
  const opts = req.task.options;
  const s = req.app.settings;
  const [hard, soft] = req.decoded.timeLimit;
  return {
    hard: limit(hard) ?? limit(opts.timeLimit) ?? limit(workerDefaults.hard) ?? limit(s.taskTimeLimit),
    soft: limit(soft) ?? limit(opts.softTimeLimit) ?? limit(workerDefaults.soft) ?? limit(s.taskSoftTimeLimit),
  };
}

/**
 * Abort `controller` with `SoftTimeLimitExceeded` after `seconds` (logging
 * Celery's warning line). Returns the cancel function.
 */
export function armSoftLimit(controller: AbortController, seconds: number | null, log: Logger, what: string): () => void {
  if (seconds === null) return () => undefined;
  return longTimeout(() => {
    if (controller.signal.aborted) return;
    log.warn({ softTimeLimit: seconds }, `Soft time limit (${seconds}s) exceeded for ${what}`);
    controller.abort(new SoftTimeLimitExceeded(seconds));
  }, seconds * 1000);
}

/**
 * What a run's failure should be recorded as: a rejection caused by the aborted
 * signal (an `AbortError` from `timers/promises` or a stream, whose cause is the
 * signal's reason) is recorded as that reason (`SoftTimeLimitExceeded`), as
 * Celery records the exception its soft limit raised.
 */
export function failureAfterAbort(error: unknown, signal: AbortSignal): unknown {
  if (!signal.aborted) return error;
  const reason: unknown = signal.reason;
  if (!(reason instanceof SoftTimeLimitExceeded || reason instanceof TimeLimitExceeded || reason instanceof TaskTerminated)) return error;
  if (error === reason) return error;
  const e = error as { name?: unknown; cause?: unknown } | null;
  if (e && typeof e === 'object' && (e.name === 'AbortError' || e.cause === reason)) return reason;
  return error;
}
