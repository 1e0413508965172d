/**
 * A live model of the cluster built from events (Celery's `events.State`): workers
 * with their heartbeats, load and counters; tasks with their state, timestamps,
 * result or exception; and counts per minute for throughput and failure rate.
 */
import type { CeleryEvent } from './event-message.js';

/** A worker as its events describe it. */
export interface WorkerInfo {
  hostname: string;
  pid?: number;
  /** Seconds between its heartbeats (`freq`). */
  freq: number;
  /** Unix seconds of the last event from it. */
  lastHeartbeat: number;
  /** Went offline (worker-offline) — heartbeats past 2 × freq also count as offline in `alive`. */
  offline: boolean;
  active: number;
  processed: number;
  loadavg: number[];
  swIdent?: string;
  swVer?: string;
}

/** A task as its events describe it. */
export interface TaskInfo {
  uuid: string;
  name?: string;
  /** PENDING → RECEIVED → STARTED → SUCCESS / FAILURE / RETRY / REVOKED / REJECTED. */
  state: string;
  args?: string;
  kwargs?: string;
  result?: string;
  exception?: string;
  traceback?: string;
  runtime?: number;
  worker?: string;
  retries?: number;
  rootId?: string | null;
  parentId?: string | null;
  sent?: number;
  received?: number;
  started?: number;
  succeeded?: number;
  failed?: number;
  retried?: number;
  revoked?: number;
  rejected?: number;
  /** ETA and expiry as sent (ISO 8601), when the task had them. */
  eta?: string | null;
  expires?: string | null;
  /** Where it was sent (task-sent's exchange and routing key). */
  exchange?: string;
  routingKey?: string;
  /** Lamport clock of the last event. */
  clock?: number;
  /** Every event of the task, oldest first (the timeline). */
  events: { type: string; timestamp: number; hostname: string }[];
}

const TASK_STATES: Record<string, string> = {
  'task-sent': 'PENDING',
  'task-received': 'RECEIVED',
  'task-started': 'STARTED',
  'task-succeeded': 'SUCCESS',
  'task-failed': 'FAILURE',
  'task-retried': 'RETRY',
  'task-revoked': 'REVOKED',
  'task-rejected': 'REJECTED',
};

/** Celery's HEARTBEAT_EXPIRE_WINDOW: a worker is gone after 2 × freq without heartbeat. */
const EXPIRE_WINDOW = 2;

/** The cluster model. */
export class EventState {
  readonly workers = new Map<string, WorkerInfo>();
  readonly tasks = new Map<string, TaskInfo>();
  /** Tasks kept at most (oldest forgotten first). */
  maxTasks = 10_000;
  /** Per-minute counts of finished tasks: minute (unix s / 60) → { succeeded, failed }. */
  readonly perMinute = new Map<number, { succeeded: number; failed: number }>();
  eventCount = 0;

  /** Update the model with one event. */
  event(e: CeleryEvent): void {
    this.eventCount++;
    if (e.type.startsWith('worker-')) this.workerEvent(e);
    else if (e.type.startsWith('task-') && typeof e.uuid === 'string') this.taskEvent(e);
  }

  private workerEvent(e: CeleryEvent): void {
    const w = this.workers.get(e.hostname) ?? { hostname: e.hostname, freq: 2, lastHeartbeat: 0, offline: false, active: 0, processed: 0, loadavg: [] };
    w.pid = typeof e.pid === 'number' ? e.pid : w.pid;
    if (typeof e.freq === 'number') w.freq = e.freq;
    w.lastHeartbeat = e.timestamp;
    w.offline = e.type === 'worker-offline';
    if (typeof e.active === 'number') w.active = e.active;
    if (typeof e.processed === 'number') w.processed = e.processed;
    if (Array.isArray(e.loadavg)) w.loadavg = e.loadavg as number[];
    if (typeof e.sw_ident === 'string') w.swIdent = e.sw_ident;
    if (typeof e.sw_ver === 'string') w.swVer = e.sw_ver;
    this.workers.set(e.hostname, w);
  }

  private taskEvent(e: CeleryEvent): void {
    const uuid = e.uuid as string;
    let t = this.tasks.get(uuid);
    if (!t) {
      t = { uuid, state: 'PENDING', events: [] };
      this.tasks.set(uuid, t);
      if (this.tasks.size > this.maxTasks) this.tasks.delete(this.tasks.keys().next().value as string);
    }
    t.events.push({ type: e.type, timestamp: e.timestamp, hostname: e.hostname });
    const state = TASK_STATES[e.type];
    // Events can arrive out of order (batches from several nodes): a final state is never undone by an earlier one.
    const final = ['SUCCESS', 'FAILURE', 'REVOKED', 'REJECTED'];
    if (state && !(final.includes(t.state) && !final.includes(state))) t.state = state;
    const str = (k: string) => (typeof e[k] === 'string' ? (e[k] as string) : undefined);
    t.name = str('name') ?? t.name;
    t.args = str('args') ?? t.args;
    t.kwargs = str('kwargs') ?? t.kwargs;
    if (typeof e.retries === 'number') t.retries = e.retries;
    if ('root_id' in e) t.rootId = (e.root_id as string | null) ?? null;
    if ('parent_id' in e) t.parentId = (e.parent_id as string | null) ?? null;
    if (e.type !== 'task-sent') t.worker = e.hostname;
    const at = e.timestamp;
    if (typeof e.clock === 'number') t.clock = e.clock;
    if ('eta' in e) t.eta = (e.eta as string | null) ?? null;
    if ('expires' in e) t.expires = (e.expires as string | null) ?? null;
    if (typeof e.exchange === 'string') t.exchange = e.exchange;
    if (typeof e.routing_key === 'string') t.routingKey = e.routing_key;
    if (e.type === 'task-sent') t.sent = at;
    if (e.type === 'task-retried') t.retried = at;
    if (e.type === 'task-revoked') t.revoked = at;
    if (e.type === 'task-rejected') t.rejected = at;
    if (e.type === 'task-received') t.received = at;
    if (e.type === 'task-started') t.started = at;
    if (e.type === 'task-succeeded') {
      t.succeeded = at;
      t.result = str('result');
      if (typeof e.runtime === 'number') t.runtime = e.runtime;
      this.count(at, 'succeeded');
    }
    if (e.type === 'task-failed' || e.type === 'task-retried') {
      t.exception = str('exception');
      t.traceback = str('traceback');
      if (e.type === 'task-failed') {
        t.failed = at;
        this.count(at, 'failed');
      }
    }
  }

  private count(at: number, kind: 'succeeded' | 'failed'): void {
    const minute = Math.floor(at / 60);
    const slot = this.perMinute.get(minute) ?? { succeeded: 0, failed: 0 };
    slot[kind]++;
    this.perMinute.set(minute, slot);
    for (const m of this.perMinute.keys()) if (m < minute - 120) this.perMinute.delete(m);
  }

  /** Is the worker online: not offline and a heartbeat within 2 × freq? */
  alive(w: WorkerInfo, now = Date.now() / 1000): boolean {
    return !w.offline && now - w.lastHeartbeat <= w.freq * EXPIRE_WINDOW;
  }

  /** Tasks, newest first, optionally filtered. */
  taskList(filter: { state?: string; name?: string; worker?: string; limit?: number } = {}): TaskInfo[] {
    const out: TaskInfo[] = [];
    const all = [...this.tasks.values()].reverse();
    for (const t of all) {
      if (filter.state && t.state !== filter.state) continue;
      if (filter.name && t.name !== filter.name) continue;
      if (filter.worker && t.worker !== filter.worker) continue;
      out.push(t);
      if (filter.limit && out.length >= filter.limit) break;
    }
    return out;
  }
}
