/**
 * What the worker (parent) and its pool threads / child processes say to each
 * other, and how a task's error crosses over. Values travel by structured clone
 * (`postMessage`, or `fork` with `serialization: 'advanced'`), so Dates, Maps,
 * BigInts and Buffers survive; functions do not.
 */
import type { ExceptionDocument } from '../backends/backend.js';
import { Ignore, Reject, RemoteTaskError, Retry } from '../errors.js';
import { toExceptionDocument, tracebackOf } from '../protocol/exceptions.js';
import type { DeliveryInfo, RetryOptions } from '../task-context.js';
import type { TaskState } from '../states.js';
import type { Settings } from '../config.js';
import type { WireSignature } from '../protocol/message.js';

/** What the parent passes at start (workerData for a thread, argv[2] as JSON for a process). */
export interface ChildConfig {
  kind: 'threads' | 'processes';
  /** The `-A` spec: `path/to/module[:export]`. */
  appSpec: string;
  cwd: string;
  /** Settings the worker's app was given on top of the module's (broker and backend URLs from -b). */
  overrides: Partial<Settings>;
  /**
   * `maxMemoryPerChild` (KiB): past it after a task, the member starts no held-ahead
   * task (the parent retires it and gives that task to another member).
   */
  maxMemoryKiB?: number | null;
}

/** What the child needs to run one task and give it its context. */
export interface JobRequest {
  id: string;
  name: string;
  args: unknown[];
  kwargs: Record<string, unknown>;
  retries: number;
  eta: Date | null;
  expires: Date | null;
  headers: Record<string, unknown>;
  properties: Record<string, unknown>;
  deliveryInfo: DeliveryInfo;
  hostname: string;
  parentId: string | null;
  rootId: string;
  groupId: string | null;
  groupIndex: number | null;
  /** Seconds; the child aborts the task's signal itself. */
  softTimeLimit: number | null;
}

/** An error thrown in a child, as data. */
export interface TransferredError {
  kind: 'error' | 'retry' | 'ignore' | 'reject';
  doc: ExceptionDocument;
  traceback: string | null;
  /** The task's own `autoretryFor` said yes (evaluated in the child, where the classes live). */
  autoretry: boolean;
  /** Reject: requeue? */
  requeue?: boolean;
  /** Retry: the message, when, and the exc given to retry(). */
  message?: string;
  when?: Date;
  exc?: TransferredError;
}

/** Parent → child. */
export type ToChild =
  /**
   * Run `request`: at once when idle, else right after the task running now (a
   * member holds at most one ahead). `now`: the parent sent it to an idle member
   * and counts it as started; otherwise the member says when it starts it
   * (`started`, or `next` on the previous task's `done`).
   */
  | { type: 'run'; job: number; request: JobRequest; now: boolean }
  /** Revoked: drop the held-ahead `job` if it has not started (answered by `cancelled`; silence when it started). */
  | { type: 'cancel'; job: number }
  | { type: 'reply'; call: number; ok: true; value?: unknown }
  | { type: 'reply'; call: number; ok: false; error: TransferredError; rethrowExc?: boolean }
  | { type: 'exit' };

/** Child → parent. */
export type FromChild =
  | { type: 'ready'; pid: number }
  | { type: 'load-failed'; message: string }
  /** `next`: the held-ahead job this member started right after this one. */
  | { type: 'done'; job: number; ok: true; retval: unknown; memoryKiB: number; next?: number }
  | { type: 'done'; job: number; ok: false; error: TransferredError; memoryKiB: number; next?: number }
  /** A job sent ahead (`now: false`) started while the member was idle. */
  | { type: 'started'; job: number }
  /** A held-ahead job was dropped (`cancel`) before it started. */
  | { type: 'cancelled'; job: number }
  | { type: 'call'; call: number; job: number; method: 'retry'; options: TransferredRetryOptions }
  | { type: 'call'; call: number; job: number; method: 'updateState'; state: TaskState; meta: unknown }
  /** `this.replace(sig)`: the parent sends `sig` in the task's place; the reply is always the `Ignore` that ends the run (or the error). */
  | { type: 'call'; call: number; job: number; method: 'replace'; sig: WireSignature }
  /** `this.addToChord(sig, lazy)`: the parent adds it to the chord (and sends it unless lazy); the reply's value is the added signature, frozen. */
  | { type: 'call'; call: number; job: number; method: 'addToChord'; sig: WireSignature; lazy: boolean };

/** `retry()` options with `exc` as data. */
export interface TransferredRetryOptions extends Omit<RetryOptions, 'exc'> {
  exc?: TransferredError;
}

/** An error as data (`autoretry` decided by the caller). */
export function transferError(error: unknown, autoretry = false): TransferredError {
  const base = { doc: toExceptionDocument(error), traceback: tracebackOf(error), autoretry };
  if (error instanceof Retry) {
    return { ...base, kind: 'retry', message: error.message, when: error.when, exc: error.exc === undefined ? undefined : transferError(error.exc) };
  }
  if (error instanceof Ignore) return { ...base, kind: 'ignore' };
  if (error instanceof Reject) return { ...base, kind: 'reject', message: error.reason, requeue: error.requeue };
  return { ...base, kind: 'error' };
}

/**
 * A task error rebuilt in the parent: it keeps the child's Python type, module,
 * arguments and stack, so the stored FAILURE is what the async pool would store.
 */
export class ChildTaskError extends RemoteTaskError {
  constructor(
    error: TransferredError,
    taskId: string,
    /** The task's `autoretryFor` matched (checked in the child). */
    readonly autoretry: boolean,
  ) {
    const args = Array.isArray(error.doc.exc_message) ? error.doc.exc_message : [error.doc.exc_message];
    super(error.doc.exc_type, args, error.doc.exc_module, error.traceback, taskId);
    if (error.traceback) this.stack = error.traceback;
  }
}

/** The error as the parent records it: Retry / Ignore / Reject as themselves, others as `ChildTaskError`. */
export function rebuildError(error: TransferredError, taskId: string): Error {
  switch (error.kind) {
    case 'retry':
      return new Retry(error.message ?? 'Retry', error.exc ? rebuildError(error.exc, taskId) : undefined, error.when ?? new Date());
    case 'ignore':
      return new Ignore();
    case 'reject':
      return new Reject(error.message, error.requeue === true);
    default:
      return new ChildTaskError(error, taskId, error.autoretry);
  }
}
