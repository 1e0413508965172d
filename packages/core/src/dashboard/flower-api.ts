/**
 * Flower's JSON API on the dashboard's model (`/api/workers`, `/api/tasks`,
 * `/api/task/info/:id`, `/api/task/types`, `/api/queues/length`,
 * `/api/task/result/:id`, and the actions `/api/task/async-apply/:name`,
 * `/api/task/send-task/:name`, `/api/task/revoke/:id`) with Flower's shapes,
 * status codes and messages, so scripts written for Flower keep working.
 */
import type { Celeriac } from '../app.js';
import type { TaskInfo } from '../events/event-state.js';
import { revokeTask } from './actions.js';
import type { DashboardModel } from './dashboard-model.js';
import { applyOptionsOf, flowerTask, SORT_KEYS } from './flower-shapes.js';

/** An API answer: status, and JSON (an object) or Flower's plain-text error. */
export interface ApiReply {
  status: number;
  json?: unknown;
  text?: string;
}

const fail = (status: number, text: string): ApiReply => ({ status, text });

/** Unix seconds of Flower's `%Y-%m-%d %H:%M` filter dates (read as UTC). */
function dateArg(value: string | null): number | undefined {
  if (!value) return undefined;
  const t = Date.parse(`${value.replace(' ', 'T')}:00Z`);
  return Number.isNaN(t) ? undefined : t / 1000;
}

/** `GET /api/workers` (`refresh`, `workername`, `status`). */
export async function apiWorkers(model: DashboardModel, q: URLSearchParams): Promise<ApiReply> {
  const truthy = (v: string | null) => v !== null && v !== '' && !/^(0|false|no|off)$/i.test(v);
  const workername = q.get('workername') || undefined;
  if (truthy(q.get('refresh')) || model.workerInfo.size === 0) await model.refreshWorkers(workername);
  if (truthy(q.get('status'))) {
    const out: Record<string, boolean> = {};
    for (const [name, w] of model.state.workers) out[name] = model.state.alive(w);
    return { status: 200, json: out };
  }
  if (workername) {
    const info = model.workerInfo.get(workername);
    if (!info) return fail(404, `Unknown worker '${workername}'`);
    return { status: 200, json: { [workername]: info } };
  }
  return { status: 200, json: Object.fromEntries(model.workerInfo) };
}

/** `GET /api/tasks` (`limit`, `offset`, `sort_by`, `workername`, `taskname`, `state`, `received_start`, `received_end`, `search`). */
export function apiTasks(model: DashboardModel, q: URLSearchParams): ApiReply {
  const all = (v: string | null) => (v && v !== 'All' ? v : undefined);
  const limit = q.get('limit') ? Number(q.get('limit')) : undefined;
  const offset = Math.max(0, Number(q.get('offset') ?? 0) || 0);
  let sortBy = q.get('sort_by') ?? undefined;
  const descending = sortBy?.startsWith('-') ?? false;
  sortBy = sortBy?.replace(/^-/, '');
  if (sortBy && !SORT_KEYS.has(sortBy)) return { status: 400, json: { error: `sort_by must be one of ${[...SORT_KEYS].join(', ')} (- for descending)` } };
  const start = dateArg(q.get('received_start'));
  const end = dateArg(q.get('received_end'));
  const search = q.get('search')?.toLowerCase();
  let tasks: TaskInfo[] = model.state.taskList({ state: all(q.get('state')), name: all(q.get('taskname')), worker: all(q.get('workername')) });
  tasks = tasks.filter((t) => {
    if (start !== undefined && !(t.received !== undefined && t.received > start)) return false;
    if (end !== undefined && !(t.received !== undefined && t.received < end)) return false;
    if (search && ![t.uuid, t.name, t.args, t.kwargs, t.result, t.exception].some((v) => v?.toLowerCase().includes(search))) return false;
    return true;
  });
  if (sortBy) {
    const key = (t: TaskInfo): string | number => (sortBy === 'name' ? (t.name ?? '') : sortBy === 'state' ? t.state : ((sortBy === 'received' ? t.received : t.started) ?? 0));
    tasks.sort((a, b) => {
      const x = key(a);
      const y = key(b);
      return (x < y ? -1 : x > y ? 1 : 0) * (descending ? -1 : 1);
    });
  }
  const page = tasks.slice(offset, limit !== undefined && Number.isFinite(limit) ? offset + limit : undefined);
  const out: Record<string, unknown> = {};
  for (const t of page) out[t.uuid] = flowerTask(t, [...(model.children.get(t.uuid) ?? [])]);
  return { status: 200, json: out };
}

/** `GET /api/task/info/:id`: the task, plus `task-id` as Flower's documented example has it. */
export function apiTaskInfo(model: DashboardModel, id: string): ApiReply {
  const found = model.task(id);
  if (!found) return fail(404, `Unknown task '${id}'`);
  return { status: 200, json: { ...flowerTask(found.task, found.children), 'task-id': id } };
}

/** `GET /api/task/types`. */
export function apiTaskTypes(model: DashboardModel): ApiReply {
  return { status: 200, json: { 'task-types': model.taskNames() } };
}

/** `GET /api/queues/length`. */
export async function apiQueueLengths(model: DashboardModel): Promise<ApiReply> {
  await model.readQueueDepths();
  return { status: 200, json: { active_queues: [...model.queueDepths].map(([name, messages]) => ({ name, messages })) } };
}

/** `GET /api/task/result/:id` (`timeout` seconds to wait). */
export async function apiTaskResult(app: Celeriac, id: string, q: URLSearchParams): Promise<ApiReply> {
  if (!app.resultBackendUrl) return fail(503, 'result backend is not configured');
  const result = app.AsyncResult(id);
  const timeout = q.get('timeout') ? Number(q.get('timeout')) : undefined;
  if (timeout) await result.get({ timeout: timeout * 1000, propagate: false }).catch(() => undefined);
  const snap = await result.refresh();
  const out: Record<string, unknown> = { 'task-id': id, state: snap.state };
  if (['SUCCESS', 'FAILURE', 'REVOKED'].includes(snap.state)) Object.assign(out, resultFields(snap.result, snap.state, snap.traceback));
  return { status: 200, json: out };
}

function resultFields(result: unknown, state: string, traceback: string | null | undefined): Record<string, unknown> {
  const safe = result instanceof Error ? `${result.name}(${JSON.stringify(result.message)})` : result;
  return state === 'FAILURE' ? { result: safe, traceback: traceback ?? null } : { result: safe };
}

/** Is `name` a task anyone knows: the app, an event, or a worker's `registered` reply? */
function knownTask(app: Celeriac, model: DashboardModel, name: string): boolean {
  if (app.hasTask(name) || model.taskNames().includes(name)) return true;
  // Python lists a task with its limits: "tasks.add [rate_limit=50/s]".
  for (const info of model.workerInfo.values()) {
    if (Array.isArray(info.registered) && info.registered.some((r) => typeof r === 'string' && r.split(' ')[0] === name)) return true;
  }
  return false;
}

/** `POST /api/task/async-apply/:name` (`send-task` with `checkKnown` false): body `{ args, kwargs, ...options }`. */
export async function apiApply(app: Celeriac, model: DashboardModel, name: string, body: unknown, checkKnown: boolean): Promise<ApiReply> {
  const options = body === undefined || body === null || body === '' ? {} : body;
  if (typeof options !== 'object' || Array.isArray(options)) return fail(400, 'invalid options');
  const { args = [], kwargs = {}, ...rest } = options as Record<string, unknown>;
  if (!Array.isArray(args)) return fail(400, 'args must be an array');
  if (typeof kwargs !== 'object' || kwargs === null || Array.isArray(kwargs)) return fail(400, 'kwargs must be an object');
  if (checkKnown && !knownTask(app, model, name)) {
    await model.refreshWorkers();
    if (!knownTask(app, model, name)) return fail(404, `Unknown task '${name}'`);
  }
  let applyOptions;
  try {
    applyOptions = applyOptionsOf(rest);
  } catch {
    return fail(400, 'Invalid option');
  }
  const result = await app.sendTask(name, args, kwargs as Record<string, unknown>, applyOptions);
  const out: Record<string, unknown> = { 'task-id': result.id };
  if (app.resultBackendUrl) out.state = await result.state.catch(() => 'PENDING');
  return { status: 200, json: out };
}

/** `POST /api/task/revoke/:id` (`terminate`, `signal`). */
export async function apiRevoke(app: Celeriac, id: string, q: URLSearchParams): Promise<ApiReply> {
  const terminate = /^(1|true|yes|on)$/i.test(q.get('terminate') ?? '');
  return { status: 200, json: await revokeTask(app, id, terminate, q.get('signal') ?? 'SIGTERM') };
}
