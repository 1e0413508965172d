/**
 * The remote-control commands a worker answers, with Celery 5.2's names, arguments
 * and reply shapes (celery/worker/control.py), so `celery inspect` / `celery
 * control` and Flower read a Celeriac worker as they read a Python one.
 */
import { constants as osConstants } from 'node:os';
import type { Celeriac } from '../app.js';
import { maskUrl } from '../mask-url.js';
import type { WorkerStats } from '../worker/request-lifecycle.js';
import type { AddConsumerOptions } from '../worker/worker.js';
import { clockOf } from './lamport-clock.js';
import { requestInfo, scheduledEta } from './request-info.js';
import type { RevokedSet } from './revoked-set.js';
import type { WorkerRequests } from './worker-requests.js';

/** What the commands read from and act on: the worker, seen from its control side. */
export interface ControlTarget {
  readonly app: Celeriac;
  readonly hostname: string;
  readonly queues: readonly string[];
  /** Tasks run at once, now (pool_grow / pool_shrink / autoscale change it). */
  readonly concurrency: number;
  readonly prefetchLimit: number;
  /** `async`, `threads` or `processes`. */
  readonly poolKind: string;
  /** `inspect stats` → `pool.processes`: the pool members' pids (the worker's own for the async pool). */
  readonly poolProcesses: number[];
  /** Started with autoscale (pool_grow / pool_shrink refused then, as Celery does). */
  readonly autoscaling: boolean;
  /** pool_grow / pool_shrink by `delta`; throws when the pool cannot. */
  resizePool(delta: number): void;
  /** autoscale: new bounds, returns [max, min] in force; throws when autoscale is off. */
  setAutoscale(max: number | undefined, min: number | undefined): [number, number];
  /** Turn task events on or off: true when that changed something, null when the worker has no event channel. */
  setTaskEvents(on: boolean): boolean | null;
  readonly stats: WorkerStats;
  /** Unix ms the worker started. */
  readonly startedAt: number;
  readonly requests: WorkerRequests;
  readonly revoked: RevokedSet;
  /** Tasks run per name (`stats.total`). */
  readonly totals: Map<string, number>;
  /**
   * Revoke: flag the ids and, with `terminate`, send `signal` to the pool members
   * running them. `terminated`: ids whose member got the signal; `notStoppable`:
   * running ids the pool cannot stop (the async pool: running JavaScript).
   */
  revoke(ids: string[], terminate: boolean, signal: NodeJS.Signals): { terminated: string[]; notStoppable: string[] };
  /** Warm shutdown, after the reply is sent. */
  shutdown(): void;
  /** Change a task's rate limit on this worker (`'10/s'`; null = none). Throws for a bad rate. */
  setRateLimit(taskName: string, rate: string | null): void;
  /** Start consuming a queue (see `Worker.addConsumer`). */
  addConsumer(queue: string, options: AddConsumerOptions): Promise<boolean>;
  /** Stop consuming a queue (see `Worker.cancelConsumer`). */
  cancelConsumer(queue: string): Promise<boolean>;
}

/** A command handler: arguments in, JSON-able reply out (undefined: no reply). */
export type ControlHandler = (target: ControlTarget, args: Record<string, unknown>) => unknown;

/**
 * A signal as Celery's `signals.signum` reads it: `SIGKILL`, `KILL`, `kill` or
 * `9`; null when it names none.
 */
export function signalName(value: unknown): NodeJS.Signals | null {
  const known = osConstants.signals as Record<string, number>;
  if (typeof value === 'number' || (typeof value === 'string' && /^\d+$/.test(value))) {
    const n = Number(value);
    return (Object.keys(known).find((name) => known[name] === n) as NodeJS.Signals | undefined) ?? null;
  }
  if (typeof value !== 'string' || value === '') return null;
  const upper = value.toUpperCase();
  const name = upper.startsWith('SIG') ? upper : `SIG${upper}`;
  return name in known ? (name as NodeJS.Signals) : null;
}

/** A positive whole number argument (`n`, `max`, `min`), or the default. */
function count(value: unknown, fallback: number | undefined): number | undefined {
  if (value === undefined || value === null) return fallback;
  const n = typeof value === 'string' ? Number(value) : value;
  return typeof n === 'number' && Number.isInteger(n) && n >= 0 ? n : Number.NaN;
}

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
      processes: t.poolProcesses,
      'max-tasks-per-child': 'N/A',
      'put-guarded-by-semaphore': false,
      timeouts: [0, 0],
      implementation: `celeriac:${t.poolKind}`,
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

/** pool_grow (`sign` 1) / pool_shrink (-1) by `n` (default 1), with Celery's replies. */
function resize(t: ControlTarget, a: Record<string, unknown>, sign: 1 | -1) {
  const command = sign > 0 ? 'pool_grow' : 'pool_shrink';
  if (t.autoscaling) return nok(`${command} is not supported with autoscale. Adjust autoscale range instead.`);
  const n = count(a.n, 1);
  if (n === undefined || Number.isNaN(n)) return nok(`${command}: n must be a whole number, got ${JSON.stringify(a.n)}`);
  t.resizePool(sign * n);
  return ok(sign > 0 ? 'pool will grow' : 'pool will shrink');
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
    const signal = a.signal === undefined || a.signal === null ? 'SIGTERM' : signalName(a.signal);
    if (terminate && signal === null) return nok(`Unknown signal ${JSON.stringify(a.signal)}: use a name such as SIGTERM, TERM, SIGKILL or a number`);
    const { terminated, notStoppable } = t.revoke(ids, terminate, signal ?? 'SIGTERM');
    if (!terminate) return ok(`tasks ${ids.join(', ')} flagged as revoked`);
    if (notStoppable.length > 0) {
      // Celery's non-prefork pools cannot terminate either (NotImplementedError); say why and what to do.
      return nok(
        `terminate: the ${t.poolKind} pool cannot stop running JavaScript: ${notStoppable.join(', ')} flagged as revoked and their AbortSignal aborted; code that does not listen to it runs to the end. ` +
          'Start the worker with --pool threads or --pool processes to terminate running tasks.',
      );
    }
    return terminated.length === 0 ? ok('terminate: tasks unknown') : ok(`terminate: ${terminated.join(', ')}`);
  },
  terminate: (t, a) => CONTROL_COMMANDS.revoke!(t, { ...a, terminate: true }),
  shutdown: (t) => {
    t.shutdown();
    return ok('shutdown');
  },
  heartbeat: () => undefined,
  enable_events: (t) => (t.setTaskEvents(true) ? ok('task events enabled') : ok('task events already enabled')),
  disable_events: (t) => (t.setTaskEvents(false) ? ok('task events disabled') : ok('task events already disabled')),
  pool_grow: (t, a) => resize(t, a, 1),
  pool_shrink: (t, a) => resize(t, a, -1),
  autoscale: (t, a) => {
    if (!t.autoscaling) return nok("ValueError('Autoscale not enabled')");
    const max = count(a.max, undefined);
    const min = count(a.min, undefined);
    if (Number.isNaN(max) || Number.isNaN(min)) return nok(`autoscale: max and min must be whole numbers, got max=${JSON.stringify(a.max)} min=${JSON.stringify(a.min)}`);
    const [nowMax, nowMin] = t.setAutoscale(max, min);
    return ok(`autoscale now max=${nowMax} min=${nowMin}`);
  },
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
  // Celery replies at once and changes the consumer soon after (call_soon); so does this.
  add_consumer: (t, a) => {
    const queue = a.queue;
    if (typeof queue !== 'string' || queue === '') return nok(`add_consumer needs a queue name, got ${JSON.stringify(queue)}`);
    const str = (v: unknown) => (typeof v === 'string' && v !== '' ? v : undefined);
    const type = str(a.exchange_type);
    const options: AddConsumerOptions = { exchange: str(a.exchange), routingKey: str(a.routing_key) };
    if (type === 'direct' || type === 'topic' || type === 'fanout') options.exchangeType = type;
    if (a.queue_arguments && typeof a.queue_arguments === 'object') options.queueArguments = a.queue_arguments as Record<string, unknown>;
    void t.addConsumer(queue, options).catch((err: unknown) => t.app.logger.error({ err, queue }, `add_consumer ${queue} failed: ${(err as Error).message}`));
    return ok(`add consumer ${queue}`);
  },
  cancel_consumer: (t, a) => {
    const queue = a.queue;
    if (typeof queue !== 'string' || queue === '') return nok(`cancel_consumer needs a queue name, got ${JSON.stringify(queue)}`);
    void t.cancelConsumer(queue).catch((err: unknown) => t.app.logger.error({ err, queue }, `cancel_consumer ${queue} failed: ${(err as Error).message}`));
    return ok(`no longer consuming from ${queue}`);
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

