import type { ExceptionDocument } from '../backends/backend.js';
import { RemoteTaskError } from '../errors.js';

/** Module name written for exceptions raised by JavaScript code. */
export const JS_EXCEPTION_MODULE = 'celeriac.js';

/** Error classes whose Celery counterpart lives in `celery.exceptions`. */
const CELERY_EXCEPTIONS = new Set([
  'NotRegistered',
  'TaskRevokedError',
  'MaxRetriesExceededError',
  'TimeLimitExceeded',
  'SoftTimeLimitExceeded',
  'Retry',
  'Reject',
  'Ignore',
  'ChordError',
  'WorkerLostError',
]);

/** JS built-ins that share name and meaning with a Python builtin. */
const PYTHON_BUILTINS = new Set(['TypeError', 'ValueError', 'KeyError', 'ZeroDivisionError', 'RuntimeError', 'Exception']);

/**
 * Turn anything a task threw into Celery's exception document. A remote error
 * keeps its original type and module, so failures survive round trips.
 */
export function toExceptionDocument(error: unknown): ExceptionDocument {
  if (error instanceof RemoteTaskError) {
    return { exc_type: error.excType, exc_message: error.excArgs, exc_module: error.excModule };
  }
  if (error instanceof Error) {
    // `class PaymentError extends Error {}` keeps name "Error": prefer the class name then.
    const own = pythonNameOf(error);
    const name = own.excType ?? (error.name && error.name !== 'Error' ? error.name : error.constructor?.name || 'Error');
    const module = own.excModule
      ? own.excModule
      : CELERY_EXCEPTIONS.has(name)
      ? name === 'TimeLimitExceeded' || name === 'SoftTimeLimitExceeded' || name === 'WorkerLostError'
        ? 'billiard.exceptions'
        : 'celery.exceptions'
      : PYTHON_BUILTINS.has(name)
        ? 'builtins'
        : JS_EXCEPTION_MODULE;
    const args = (error as { excArgs?: unknown[] }).excArgs ?? (error.message === '' ? [] : [error.message]);
    return { exc_type: name, exc_message: args, exc_module: module };
  }
  return { exc_type: 'Error', exc_message: [typeof error === 'string' ? error : safeRepr(error)], exc_module: JS_EXCEPTION_MODULE };
}

/**
 * The Python name an error class asked for: `excModule` / `excType` as static
 * members of its class (or set on the instance), so a Python caller can
 * `except proj.errors.ExpectedException`:
 *
 * ```ts
 * class ExpectedException extends Error {
 *   static excModule = 'proj.errors';
 *   static excType = 'ExpectedException'; // optional: defaults to the class name
 * }
 * ```
 */
function pythonNameOf(error: Error): { excModule?: string; excType?: string } {
  const own = error as { excModule?: unknown; excType?: unknown };
  const cls = error.constructor as { excModule?: unknown; excType?: unknown } | undefined;
  const module = typeof own.excModule === 'string' ? own.excModule : typeof cls?.excModule === 'string' ? cls.excModule : undefined;
  const type = typeof own.excType === 'string' ? own.excType : typeof cls?.excType === 'string' ? cls.excType : undefined;
  return { excModule: module, excType: type ?? (module ? error.constructor?.name : undefined) };
}

function safeRepr(value: unknown): string {
  try {
    return JSON.stringify(value) ?? String(value);
  } catch {
    return String(value);
  }
}

/** Rebuild an Error from a stored exception document. */
export function fromExceptionDocument(doc: unknown, traceback: string | null, taskId: string): RemoteTaskError {
  const d = (doc ?? {}) as Partial<ExceptionDocument>;
  const args = Array.isArray(d.exc_message) ? d.exc_message : d.exc_message === undefined ? [] : [d.exc_message];
  return new RemoteTaskError(String(d.exc_type ?? 'Exception'), args, String(d.exc_module ?? 'builtins'), traceback, taskId);
}

/** Text for the `traceback` field: the JS stack, which plays the role of Python's traceback. */
export function tracebackOf(error: unknown): string | null {
  if (error instanceof RemoteTaskError) return error.remoteTraceback;
  if (error instanceof Error && error.stack) return error.stack.endsWith('\n') ? error.stack : `${error.stack}\n`;
  return null;
}
