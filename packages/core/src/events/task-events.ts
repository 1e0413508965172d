/**
 * The task events a worker sends with `-E` (`workerSendTaskEvents`), with Celery
 * 5.2's fields: task-received, task-started, task-succeeded (result repr, runtime),
 * task-failed / task-retried (exception repr, traceback), task-revoked,
 * task-rejected.
 */
import { tracebackOf } from '../protocol/exceptions.js';
import { argsRepr, kwargsRepr, pyRepr } from '../protocol/python-repr.js';
import { States, type TaskState } from '../states.js';
import type { TaskRequest } from '../worker/task-request.js';
import { signalNumber } from '../worker/run-task.js';
import type { EventDispatcher } from './event-dispatcher.js';

/** An exception as Celery's `%r` shows it: `ValueError('bad')`. */
function exceptionRepr(error: unknown): string {
  return error instanceof Error ? `${error.name}(${pyRepr(error.message)})` : pyRepr(error);
}

const isoOrNull = (d: Date | null | undefined) => (d ? d.toISOString() : null);

/** Sends one worker's task events through its dispatcher. */
export class TaskEvents {
  constructor(private readonly dispatcher: EventDispatcher) {}

  get enabled(): boolean {
    return this.dispatcher.enabled('task');
  }

  received(r: TaskRequest): void {
    if (!this.enabled) return;
    this.dispatcher.send('task-received', {
      uuid: r.id,
      name: r.name,
      args: argsRepr(r.args as unknown[]),
      kwargs: kwargsRepr(r.kwargs as Record<string, unknown>),
      root_id: r.rootId ?? null,
      parent_id: r.parentId ?? null,
      retries: r.retries,
      eta: isoOrNull(r.eta),
      expires: isoOrNull(r.expires),
    });
  }

  started(r: TaskRequest): void {
    if (this.enabled) this.dispatcher.send('task-started', { uuid: r.id });
  }

  /** After the outcome was recorded: `ran` is what the function did, `runtime` seconds. */
  finished(r: TaskRequest, state: TaskState, ran: { ok: true; retval: unknown } | { ok: false; error: unknown }, runtime: number, requeue = false): void {
    if (!this.enabled) return;
    if (state === States.SUCCESS) {
      this.dispatcher.send('task-succeeded', { uuid: r.id, result: ran.ok ? pyRepr(ran.retval) : 'None', runtime });
    } else if (state === States.FAILURE || state === States.RETRY) {
      const error = ran.ok ? undefined : ran.error;
      this.dispatcher.send(state === States.FAILURE ? 'task-failed' : 'task-retried', { uuid: r.id, exception: exceptionRepr(error), traceback: tracebackOf(error) });
    } else if (state === States.REJECTED) {
      this.dispatcher.send('task-rejected', { uuid: r.id, requeue });
    } else if (state === States.REVOKED) {
      // Terminated by remote control while running, or dropped by the pool before it started (no signal).
      const error = ran.ok ? undefined : (ran.error as { signal?: string });
      const terminated = error?.signal !== undefined;
      this.dispatcher.send('task-revoked', { uuid: r.id, terminated, signum: error?.signal ? signalNumber(error.signal) : null, expired: false });
    }
  }

  revoked(r: TaskRequest, expired: boolean): void {
    if (this.enabled) this.dispatcher.send('task-revoked', { uuid: r.id, terminated: false, signum: null, expired });
  }
}
