/** Typed errors. Every message says what went wrong and how to fix it. */
import { argsRepr } from './protocol/python-repr.js';

/** Base class of every error Celeriac throws on purpose. */
export class CeleriacError extends Error {
  override name = 'CeleriacError';
}

/**
 * A broker or result backend could not be reached, or refused us, at connection time:
 * `Cannot connect to <masked url>: <reason>. <fix>`. `retryable` is false for mistakes
 * that waiting will not fix (a login, a permission, a TLS certificate).
 */
export class ConnectError extends CeleriacError {
  override name = 'ConnectError';
  constructor(
    /** The masked URL (of the endpoint that failed last). */
    readonly displayUrl: string,
    /** Short reason, e.g. `Connection refused`. */
    readonly reason: string,
    /** A connection-level failure (refused, timed out...) rather than a login or configuration mistake. */
    readonly retryable: boolean,
    fix = '',
  ) {
    super(`Cannot connect to ${displayUrl}: ${reason}.${fix ? ` ${fix}` : ''}`);
  }
}

/** Node/OpenSSL error codes of a TLS certificate or handshake problem (not worth retrying). */
export const TLS_ERROR_CODES = /CERT|SELF_SIGNED|UNABLE_TO_|ERR_TLS|ERR_SSL|EPROTO/;

/** A configuration value is missing or invalid. */
export class ConfigurationError extends CeleriacError {
  override name = 'ConfigurationError';
}

/** The worker received a task name nobody registered. Mirrors `celery.exceptions.NotRegistered`. */
export class NotRegistered extends CeleriacError {
  override name = 'NotRegistered';
  constructor(readonly taskName: string) {
    super(taskName);
  }
}

/** A message whose content type is not in `acceptContent`. */
export class ContentDisallowed extends CeleriacError {
  override name = 'ContentDisallowed';
}

/** A message that cannot be decoded (bad JSON, bad base64, wrong shape). */
export class MessageDecodeError extends CeleriacError {
  override name = 'MessageDecodeError';
}

/** A message larger than `maxMessageSize`. */
export class MessageTooLarge extends CeleriacError {
  override name = 'MessageTooLarge';
}

/** `get()` ran out of time. Mirrors `celery.exceptions.TimeoutError`. */
export class TimeoutError extends CeleriacError {
  override name = 'TimeoutError';
}

/** The task was revoked, expired or terminated. Mirrors `celery.exceptions.TaskRevokedError`. */
export class TaskRevokedError extends CeleriacError {
  override name = 'TaskRevokedError';
}

/**
 * A running task was terminated by remote control (`revoke(id, { terminate: true })`):
 * stored as Celery stores it, state REVOKED with `TaskRevokedError('terminated')`.
 */
export class TaskTerminated extends TaskRevokedError {
  override name = 'TaskRevokedError';
  /** The signal sent (`SIGTERM`, `SIGKILL`, ...). */
  readonly signal: string;

  constructor(signal: string) {
    super('terminated');
    this.signal = signal;
  }
}

/** A chord could not run its body: a header member failed, or sending the body failed. Mirrors `celery.exceptions.ChordError`. */
export class ChordError extends CeleriacError {
  override name = 'ChordError';
}

/**
 * A task ran past its hard time limit. Mirrors billiard's `TimeLimitExceeded`
 * (stored as `billiard.exceptions.TimeLimitExceeded` with the limit as its argument).
 */
export class TimeLimitExceeded extends Error {
  override name = 'TimeLimitExceeded';
  /** Python's `exc.args`: the limit in seconds. */
  readonly excArgs: unknown[];
  constructor(readonly seconds: number) {
    super(`TimeLimitExceeded(${seconds})`);
    this.excArgs = [seconds];
  }
}

/**
 * A task ran past its soft time limit: the reason of the task context's
 * `signal`, and what awaiting code that passed the signal on (`fetch`, timers)
 * rejects with. Mirrors billiard's `SoftTimeLimitExceeded`; catch it to clean up.
 */
export class SoftTimeLimitExceeded extends Error {
  override name = 'SoftTimeLimitExceeded';
  /** Python's `exc.args`: none, as billiard raises it. */
  readonly excArgs: unknown[] = [];
  constructor(readonly seconds?: number) {
    super(seconds === undefined ? 'SoftTimeLimitExceeded()' : `Soft time limit (${seconds}s) exceeded`);
  }
}

/**
 * The thread or child process running a task died (crashed, was killed, ran out of
 * memory) before the task finished. Mirrors billiard's `WorkerLostError`.
 */
export class WorkerLostError extends Error {
  override name = 'WorkerLostError';
}

/** `retry()` was called past `maxRetries` without an `exc`. */
export class MaxRetriesExceededError extends CeleriacError {
  override name = 'MaxRetriesExceededError';
}

/**
 * Thrown by `retry()` to end the current run: the task was re-published and the
 * worker records state RETRY. Do not catch it inside a task.
 */
export class Retry extends CeleriacError {
  override name = 'Retry';
  constructor(
    message: string,
    /** The exception that caused the retry, if any. */
    readonly exc: unknown,
    /** When the retry is scheduled. */
    readonly when: Date,
  ) {
    super(message);
  }
}

/** Thrown by a task to reject its message (`requeue` puts it back on the queue). */
export class Reject extends CeleriacError {
  override name = 'Reject';
  constructor(
    readonly reason = 'rejected',
    readonly requeue = false,
  ) {
    super(reason);
  }
}

/** Thrown by a task to end without storing any state; the message is acked. */
export class Ignore extends CeleriacError {
  override name = 'Ignore';
}

/**
 * A task failed in a worker (Celeriac's or Python's): re-raised by `get()` with the
 * remote exception's type name, arguments, module and traceback.
 */
export class RemoteTaskError extends Error {
  constructor(
    /** The remote exception class name, e.g. `ZeroDivisionError` or `TypeError`. */
    readonly excType: string,
    /** The exception's arguments (Python `exc.args`). */
    readonly excArgs: unknown[],
    /** Module of the remote class, e.g. `builtins` or `celeriac.js`. */
    readonly excModule: string,
    /** The remote traceback text (Python or JavaScript stack), when stored. */
    readonly remoteTraceback: string | null,
    /** Id of the task that failed. */
    readonly taskId: string,
  ) {
    // Like Python's str(exc): the one argument, or the tuple of all of them.
    super(excArgs.length === 1 ? String(excArgs[0]) : excArgs.length === 0 ? '' : argsRepr(excArgs));
    this.name = excType;
    if (remoteTraceback) this.stack = `${excType}: ${this.message}\n    [remote traceback of task ${taskId}]\n${remoteTraceback}`;
  }
}

/**
 * The broker could not be reached within the publish retry policy (or at all,
 * with retries off). Mirrors kombu's `OperationalError` as raised by Celery's
 * `apply_async`. The message names the masked URL and the policy.
 */
export class BrokerUnavailable extends CeleriacError {
  override name = 'BrokerUnavailable';
  /** The HTTP status web adapters answer with (Fastify reads it as is). */
  readonly statusCode = 503;
  /** A stable code for clients and logs. */
  readonly code = 'CELERIAC_BROKER_UNAVAILABLE';
  constructor(
    message: string,
    /** The broker URL with secrets masked. */
    readonly url: string,
    /** How many attempts were made. */
    readonly attempts: number,
  ) {
    super(message);
  }

  /** The JSON body a web response carries (no broker address: that stays in `message`, for logs). */
  toJSON(): { statusCode: 503; code: string; error: string; message: string } {
    return { statusCode: 503, code: this.code, error: 'Service Unavailable', message: 'The task queue is unavailable; try again later.' };
  }
}

/**
 * The result backend could not be reached (e.g. by `celeriac result` while its
 * Redis is down). The message names the masked URL and the reason.
 */
export class ResultBackendUnavailable extends CeleriacError {
  override name = 'ResultBackendUnavailable';
  /** The HTTP status web adapters answer with. */
  readonly statusCode = 503;
  /** A stable code for clients and logs. */
  readonly code = 'CELERIAC_RESULT_BACKEND_UNAVAILABLE';
  constructor(
    message: string,
    /** The result backend URL with secrets masked. */
    readonly url: string,
  ) {
    super(message);
  }
}
