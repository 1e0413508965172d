/**
 * The remote-control commands a worker answers, with Celery 5.2's names, arguments
 * and reply shapes (celery/worker/control.py), so `celery inspect` / `celery
 * control` and Flower read a Celeriac worker as they read a Python one.
 */
import type { Celeriac } from '../app.js';
import { maskUrl } from '../mask-url.js';
import type { WorkerStats } from '../worker/request-lifecycle.js';
import { clockOf } from './lamport-clock.js';
import { requestInfo, scheduledEta } from './request-info.js';
import type { RevokedSet } from './revoked-set.js';
import type { WorkerRequests } from './worker-requests.js';

/** What the commands read from and act on: the worker, seen from its control side. */
export interface ControlTarget {
  readonly app: Celeriac;
  readonly hostname: string;
  readonly queues: readonly string[];
  readonly concurrency: number;
  readonly prefetchLimit: number;
  readonly stats: WorkerStats;
  /** Unix ms the worker started. */
  readonly startedAt: number;
  readonly requests: WorkerRequests;
  readonly revoked: RevokedSet;
  /** Tasks run per name (`stats.total`). */
  readonly totals: Map<string, number>;
  /** Revoke: flag the ids (and, with `terminate`, stop the running ones if the pool can). */
  revoke(ids: string[], terminate: boolean, signal: string): string[];
  /** Warm shutdown, after the reply is sent. */
  shutdown(): void;
  /** Change a task's rate limit on this worker (`'10/s'`; null = none). Throws for a bad rate. */
  setRateLimit(taskName: string, rate: string | null): void;
}

/** A command handler: arguments in, JSON-able reply out (undefined: no reply). */
export type ControlHandler = (target: ControlTarget, args: Record<string, unknown>) => unknown;

const ok = (value: unknown) => ({ ok: value });
const nok = (value: unknown) => ({ error: value });

function idList(value: unknown): string[] {
  if (typeof value === 'string') return [value];
  if (Array.isArray(value)) return value.filter((v): v is string => typeof v === 'string');
  return [];
}

function queueInfo(name: string) {
  // Celery 5.2's `Queue.as_dict(recurse=True)` for a default direct queue (capture p02).
  return {
    name,
    exchange: { name, type: 'direct', arguments: null, durable: true, passive: false, auto_delete: false, delivery_mode: null, no_declare: false },
    routing_key: name,
    queue_arguments: null,
    binding_arguments: null,
    consumer_arguments: null,
    durable: true,
    exclusive: false,
    auto_delete: false,
    no_ack: false,
    alias: null,
    bindings: [],
    no_declare: null,
    expires: null,
    message_ttl: null,
    max_length: null,
    max_length_bytes: null,
    max_priority: null,
  };
}

function stats(t: ControlTarget) {
  const url = new URL(t.app.settings.brokerUrl.split(';')[0]!.replace(/^memory:/, 'memory://x'));
  const usage = process.resourceUsage();
  return {
    total: Object.fromEntries(t.totals),
    pid: process.pid,
    clock: String(clockOf(t.app).current),
    uptime: Math.round((Date.now() - t.startedAt) / 1000),
    pool: {
      'max-concurrency': t.concurrency,
      processes: [process.pid],
      'max-tasks-per-child': 'N/A',
      'put-guarded-by-semaphore': false,
      timeouts: [0, 0],
      implementation: 'celeriac:async',
    },
    broker: {
      hostname: url.hostname || null,
      userid: url.username || null,
      virtual_host: url.pathname.replace(/^\//, '') || '0',
      port: url.port ? Number(url.port) : null,
      insist: false,
      ssl: url.protocol === 'rediss:' || url.protocol === 'amqps:',
      transport: url.protocol.replace(/:$/, ''),
      connect_timeout: t.app.settings.brokerConnectionTimeout,
      transport_options: {},
      login_method: null,
      uri_prefix: null,
      heartbeat: 120.0,
      failover_strategy: 'round-robin',
      alternates: [],
    },
    prefetch_count: t.prefetchLimit,
    rusage: {
      utime: usage.userCPUTime / 1e6,
      stime: usage.systemCPUTime / 1e6,
      maxrss: usage.maxRSS,
      ixrss: usage.sharedMemorySize,
      idrss: usage.unsharedDataSize,
      isrss: usage.unsharedStackSize,
      minflt: usage.minorPageFault,
      majflt: usage.majorPageFault,
      nswap: usage.swappedOut,
      inblock: usage.fsRead,
      oublock: usage.fsWrite,
      msgsnd: usage.ipcSent,
      msgrcv: usage.ipcReceived,
      nsignals: usage.signalsCount,
      nvcsw: usage.voluntaryContextSwitches,
      nivcsw: usage.involuntaryContextSwitches,
    },
  };
}

/** Celery's `DEFAULT_TASK_INFO_ITEMS`: what `registered` shows when the caller names no attributes. */
const DEFAULT_TASK_INFO_ITEMS = ['exchange', 'routing_key', 'rate_limit'];

/** A task attribute by its Celery name (`registered('name', 'rate_limit')`), or undefined when unset / unknown. */
function taskAttribute(app: Celeriac, name: string, attribute: string): unknown {
  const options = app.getTask(name).options as Record<string, unknown>;
  const byCeleryName: Record<string, unknown> = {
    name,
    rate_limit: options.rateLimit,
    time_limit: options.timeLimit,
    soft_time_limit: options.softTimeLimit,
    ignore_result: options.ignoreResult,
    max_retries: options.maxRetries,
    default_retry_delay: options.defaultRetryDelay,
    acks_late: options.acksLate,
    track_started: options.trackStarted,
    serializer: options.serializer,
    queue: options.queue,
    priority: options.priority,
  };
  return byCeleryName[attribute] ?? undefined;
}

/**
 * One `registered` line as Celery writes it: the name, then `[attr=value ...]` for
 * the asked attributes that are set (`add [name=add]`); just the name when none is.
 */
function taskInfoLine(app: Celeriac, name: string, items: readonly string[]): string {
  const fields = items.flatMap((item) => {
    const value = taskAttribute(app, name, item);
    return value === undefined || value === null ? [] : [`${item}=${typeof value === 'boolean' ? (value ? 'True' : 'False') : String(value)}`];
  });
  return fields.length ? `${name} [${fields.join(' ')}]` : name;
}

/** Every command by name (Celery's `Panel.data`), aliases included. */
export const CONTROL_COMMANDS: Record<string, ControlHandler> = {
  ping: () => ok('pong'),
  stats: (t) => stats(t),
  active: (t, a) => t.requests.list('active').map((h) => requestInfo(h, a.safe === true)),
  reserved: (t) => t.requests.list('reserved').map((h) => requestInfo(h)),
  scheduled: (t) =>
    t.requests.list('scheduled').map((h) => ({ eta: scheduledEta(h.request.headers.eta, h.request.eta), priority: 6, request: requestInfo(h) })),
  revoked: (t) => t.revoked.ids(),
  registered: (t, a) => {
    const items = Array.isArray(a.taskinfoitems) && a.taskinfoitems.length ? a.taskinfoitems.map(String) : DEFAULT_TASK_INFO_ITEMS;
    return t.app.taskNames
      .filter((n) => a.builtins === true || !n.startsWith('celery.'))
      .sort()
      .map((n) => taskInfoLine(t.app, n, items));
  },
  active_queues: (t) => t.queues.map(queueInfo),
  query_task: (t, a) => {
    const out: Record<string, [string, unknown]> = {};
    for (const id of idList(a.ids)) {
      const held = t.requests.get(id);
      if (held) out[id] = [held.state === 'scheduled' ? 'reserved' : held.state, requestInfo(held)];
    }
    return out;
  },
  clock: (t) => ({ clock: clockOf(t.app).current }),
  conf: (t) => {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(t.app.settings)) out[k] = typeof v === 'string' && /url|backend/i.test(k) ? maskUrl(v) : v;
    return out;
  },
  report: (t) => ok(`software -> celeriac (node ${process.version}) platform -> ${process.platform} ${process.arch}\nloader -> celeriac\nbroker -> ${maskUrl(t.app.settings.brokerUrl)}\nresults -> ${t.app.resultBackendUrl ? maskUrl(t.app.resultBackendUrl) : 'disabled'}`),
  hello: (t, a) => {
    if (a.from_node === t.hostname) return undefined;
    if (a.revoked) t.revoked.update(a.revoked);
    return { revoked: t.revoked.toHelloData(), clock: clockOf(t.app).forward() };
  },
  revoke: (t, a) => {
    const ids = idList(a.task_id);
    const terminate = a.terminate === true;
    const terminated = t.revoke(ids, terminate, typeof a.signal === 'string' ? a.signal : 'SIGTERM');
    if (terminate) return terminated.length === 0 ? ok('terminate: tasks unknown') : ok(`terminate: ${terminated.join(', ')}`);
    return ok(`tasks ${ids.join(', ')} flagged as revoked`);
  },
  terminate: (t, a) => CONTROL_COMMANDS.revoke!(t, { ...a, terminate: true }),
  shutdown: (t) => {
    t.shutdown();
    return ok('shutdown');
  },
  heartbeat: () => undefined,
  enable_events: () => ok('task events already enabled'),
  disable_events: () => ok('task events already disabled'),
  rate_limit: (t, a) => {
    const name = a.task_name;
    if (typeof name !== 'string' || !t.app.hasTask(name)) return nok('unknown task');
    const rate = a.rate_limit === undefined || a.rate_limit === null || a.rate_limit === '' || a.rate_limit === 0 ? null : String(a.rate_limit);
    try {
      t.setRateLimit(name, rate);
    } catch (err) {
      return nok(`Invalid rate limit string: ${(err as Error).message}`);
    }
    return ok(rate === null ? 'rate limit disabled successfully' : 'new rate limit set successfully');
  },
  time_limit: (t, a) => {
    const name = a.task_name;
    if (typeof name !== 'string' || !t.app.hasTask(name)) return nok('unknown task');
    const num = (v: unknown) => (typeof v === 'number' && Number.isFinite(v) && v > 0 ? v : undefined);
    const options = t.app.getTask(name).options as { timeLimit?: number; softTimeLimit?: number };
    options.timeLimit = num(a.hard);
    options.softTimeLimit = num(a.soft);
    return ok('time limits set successfully');
  },
};
CONTROL_COMMANDS.dump_active = CONTROL_COMMANDS.active!;
CONTROL_COMMANDS.dump_reserved = CONTROL_COMMANDS.reserved!;
CONTROL_COMMANDS.dump_schedule = CONTROL_COMMANDS.scheduled!;
CONTROL_COMMANDS.dump_revoked = CONTROL_COMMANDS.revoked!;
CONTROL_COMMANDS.dump_tasks = CONTROL_COMMANDS.registered!;
CONTROL_COMMANDS.dump_conf = CONTROL_COMMANDS.conf!;

