/**
 * The requests a worker holds, by id and state, for `inspect active / reserved /
 * scheduled / query_task` and for revocation (Celery's `worker_state.requests`,
 * `active_requests`, `reserved_requests` and the timer's schedule).
 */
import type { TaskRequest } from '../worker/task-request.js';

/** Where a held request is. */
export type HeldState = 'reserved' | 'scheduled' | 'active';

/** A held request and when it started (unix seconds, for `time_start`). */
export interface HeldRequest {
  request: TaskRequest;
  state: HeldState;
  timeStart: number | null;
}

/** The worker's held requests (updated by the request lifecycle). */
export class WorkerRequests {
  private readonly byId = new Map<string, HeldRequest>();

  /** Received and waiting for a slot (or, with an ETA in the future, `scheduled`). */
  received(request: TaskRequest, scheduled: boolean): void {
    this.byId.set(request.id, { request, state: scheduled ? 'scheduled' : 'reserved', timeStart: null });
  }

  /** Due (ETA reached): waiting for a slot. */
  due(request: TaskRequest): void {
    const held = this.byId.get(request.id);
    if (held) held.state = 'reserved';
  }

  started(request: TaskRequest): void {
    this.byId.set(request.id, { request, state: 'active', timeStart: Date.now() / 1000 });
  }

  /** Ran, rejected, revoked, parked or given back. */
  done(request: TaskRequest): void {
    if (this.byId.get(request.id)?.request === request) this.byId.delete(request.id);
  }

  clear(): void {
    this.byId.clear();
  }

  get(id: string): HeldRequest | undefined {
    return this.byId.get(id);
  }

  list(state: HeldState): HeldRequest[] {
    return [...this.byId.values()].filter((h) => h.state === state);
  }
}
