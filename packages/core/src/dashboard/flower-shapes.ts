/**
 * Flower's JSON shapes (flower/api/tasks.py, workers.py): a task is Celery 5.2's
 * `events.state.Task.as_dict()` with `worker` as the worker's host name; scripts
 * written against Flower's API read ours unchanged.
 */
import type { TaskInfo } from '../events/event-state.js';

/** A task as Flower's `/api/tasks` and `/api/task/info/:id` return it. */
export interface FlowerTask {
  uuid: string;
  name: string | null;
  state: string;
  received: number | null;
  sent: number | null;
  started: number | null;
  rejected: number | null;
  succeeded: number | null;
  failed: number | null;
  retried: number | null;
  revoked: number | null;
  args: string | null;
  kwargs: string | null;
  eta: string | null;
  expires: string | null;
  retries: number | null;
  worker: string | null;
  result: string | null;
  exception: string | null;
  timestamp: number | null;
  runtime: number | null;
  traceback: string | null;
  exchange: string | null;
  routing_key: string | null;
  clock: number;
  client: string | null;
  root: string | null;
  root_id: string | null;
  parent: string | null;
  parent_id: string | null;
  children: string[];
}

/** Celery's `Task.as_dict()` for a task of the model (`children`: ids of its children). */
export function flowerTask(t: TaskInfo, children: readonly string[]): FlowerTask {
  const last = t.events.length > 0 ? t.events[t.events.length - 1]!.timestamp : null;
  const sentBy = t.events.find((e) => e.type === 'task-sent')?.hostname ?? null;
  return {
    uuid: t.uuid,
    name: t.name ?? null,
    state: t.state,
    received: t.received ?? null,
    sent: t.sent ?? null,
    started: t.started ?? null,
    rejected: t.rejected ?? null,
    succeeded: t.succeeded ?? null,
    failed: t.failed ?? null,
    retried: t.retried ?? null,
    revoked: t.revoked ?? null,
    args: t.args ?? null,
    kwargs: t.kwargs ?? null,
    eta: t.eta ?? null,
    expires: t.expires ?? null,
    retries: t.retries ?? null,
    worker: t.worker ?? null,
    result: t.result ?? null,
    exception: t.exception ?? null,
    timestamp: last,
    runtime: t.runtime ?? null,
    traceback: t.traceback ?? null,
    exchange: t.exchange ?? null,
    routing_key: t.routingKey ?? null,
    clock: t.clock ?? 0,
    client: sentBy,
    root: t.rootId ?? null,
    root_id: t.rootId ?? null,
    parent: t.parentId ?? null,
    parent_id: t.parentId ?? null,
    children: [...children],
  };
}

/** Flower's `/api/tasks` sort keys (`sort_by=name|state|received|started`, `-` for descending). */
export const SORT_KEYS = new Set(['name', 'state', 'received', 'started']);

/** Options for the API's apply calls that Flower passes on to `apply_async`. */
export interface FlowerApplyOptions {
  countdown?: number;
  eta?: string;
  expires?: number | string;
  queue?: string;
  priority?: number;
}

/**
 * Flower's option normalisation (`normalize_options`): `eta` as `%Y-%m-%d
 * %H:%M:%S.%f` (UTC, as Celery reads a naive date with its default timezone), `countdown` a number, `expires` seconds or such a date. Throws
 * for a value it cannot read (Flower's 400 "Invalid option").
 */
export function applyOptionsOf(options: Record<string, unknown>): FlowerApplyOptions {
  const out: FlowerApplyOptions = {};
  const date = (v: unknown): string => {
    const m = typeof v === 'string' ? /^(\d{4}-\d\d-\d\d) (\d\d:\d\d:\d\d)(\.\d+)?$/.exec(v) : null;
    const d = m ? new Date(`${m[1]}T${m[2]}${m[3] ? m[3].slice(0, 4) : ''}Z`) : typeof v === 'string' ? new Date(v) : new Date(NaN);
    if (Number.isNaN(d.getTime())) throw new Error(`not a date: ${String(v)}`);
    return d.toISOString();
  };
  if ('countdown' in options) {
    const n = Number(options.countdown);
    if (!Number.isFinite(n)) throw new Error('countdown is not a number');
    out.countdown = n;
  }
  if ('eta' in options) out.eta = date(options.eta);
  if ('expires' in options) {
    const n = Number(options.expires);
    out.expires = Number.isFinite(n) ? n : date(options.expires);
  }
  if (typeof options.queue === 'string') out.queue = options.queue;
  if (options.priority !== undefined) {
    const n = Number(options.priority);
    if (!Number.isInteger(n)) throw new Error('priority is not an integer');
    out.priority = n;
  }
  return out;
}
