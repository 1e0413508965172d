/**
 * Typed settings with Celery 5.2's defaults, and the mapping from Celery's names
 * (`broker_url`, `CELERY_BROKER_URL`, old `BROKER_URL`, `CELERYD_CONCURRENCY`, ...)
 * to Celeriac's camelCase ones.
 */
import { availableParallelism } from 'node:os';
import { fromCeleryBeatSchedule, type BeatScheduleConfig } from './beat/entry.js';
import { ConfigurationError } from './errors.js';
import type { LogFormat } from './logger.js';
import { compileTaskRoutes, type TaskRoutes } from './task-routes.js';

/** A route for one task name: where its messages go. */
export interface TaskRoute {
  queue?: string;
  exchange?: string;
  routingKey?: string;
  priority?: number;
}

/** An exchange type Celery routes with (`kombu.Exchange(type=...)`). */
export type ExchangeType = 'direct' | 'topic' | 'fanout';

/** One extra binding of a queue (kombu's `binding(exchange, routing_key)`). */
export interface QueueBinding {
  exchange: string;
  /** Exchange type; default `direct`. */
  exchangeType?: ExchangeType;
  /** Binding key (`usa.#` on a topic exchange). Default: the queue name. */
  routingKey?: string;
}

/**
 * One entry of `taskQueues` (Celery's `task_queues`, a `kombu.Queue`): a queue, the
 * exchange it is bound to and the binding key, declared by workers and producers.
 * Snake-case keys (`exchange_type`, `routing_key`, `queue_arguments`) are accepted.
 */
export interface QueueSpec {
  name: string;
  /** Exchange the queue is bound to. Default: `taskDefaultExchange` (Celery's `Queues._add`). */
  exchange?: string;
  /** Default `direct` (`taskDefaultExchangeType` when the exchange is the default one). */
  exchangeType?: ExchangeType;
  /** Binding key (`usa.#` on a topic exchange). Default: `taskDefaultRoutingKey` (Celery's `Queues._add`). */
  routingKey?: string;
  /** More bindings (several exchanges or keys). */
  bindings?: QueueBinding[];
  /** AMQP queue arguments: `x-max-priority`, `x-message-ttl`, `x-expires`, `x-dead-letter-exchange`, `x-queue-type`... */
  queueArguments?: Record<string, unknown>;
  /** Shortcut for `x-max-priority`. */
  maxPriority?: number;
  /** Default true. */
  durable?: boolean;
  /** Default false. */
  autoDelete?: boolean;
}

/** Redis transport options (`broker_transport_options`). */
export interface BrokerTransportOptions {
  /** Seconds before an unacked message of a dead consumer is redelivered by kombu peers. Default 3600. */
  visibilityTimeout?: number;
  [option: string]: unknown;
}

/**
 * How a producer retries a publish while the broker is unreachable (Celery's
 * `retry_policy`): up to `maxRetries` retries, sleeping `intervalStart` seconds,
 * then `intervalStep` more each time, at most `intervalMax`. Snake-case keys
 * (`max_retries`, `interval_start`...) are accepted too.
 */
export interface RetryPolicy {
  maxRetries: number;
  intervalStart: number;
  intervalStep: number;
  intervalMax: number;
}

/** Every setting, camelCase. Each field lists Celery's name and default. */
export interface Settings {
  /** `broker_url`. Default `memory://` (embedded, one process). */
  brokerUrl: string;
  /** `result_backend`. Default: `memory://` with the memory broker, otherwise none (results disabled). */
  resultBackend: string | null;
  /** `task_serializer`. Default `json`. */
  taskSerializer: string;
  /** `result_serializer`. Default `json`. */
  resultSerializer: string;
  /** `accept_content`. Default `['json']`. */
  acceptContent: string[];
  /** `result_accept_content`. Default: `acceptContent`. */
  resultAcceptContent: string[] | null;
  /** `result_compression` (Celery 5.2 uses it for task messages too). Default none. */
  taskCompression: string | null;
  /** `task_default_queue`. Default `celery`. */
  taskDefaultQueue: string;
  /** `task_default_exchange`. Default `celery`. */
  taskDefaultExchange: string;
  /** `task_default_routing_key`. Default `celery`. */
  taskDefaultRoutingKey: string;
  /** `task_default_priority`. Default none (0 on the wire). */
  taskDefaultPriority: number | null;
  /**
   * `task_routes`: a map of task name / glob / `/regexp/` → queue name or route, `[pattern, route]`
   * pairs (RegExp patterns), a router function, or a list of these (see task-routes.ts).
   */
  taskRoutes: TaskRoutes;
  /** `task_default_exchange_type`. Default `direct`. */
  taskDefaultExchangeType: ExchangeType;
  /**
   * `task_queues`: the queues workers consume and producers declare, with their
   * exchanges, binding keys and arguments. Default: one queue `taskDefaultQueue`
   * bound to `taskDefaultExchange` with `taskDefaultRoutingKey`.
   */
  taskQueues: QueueSpec[] | null;
  /** `task_create_missing_queues`: a queue named in a send or `-Q` but not in `taskQueues` is created. Default true. */
  taskCreateMissingQueues: boolean;
  /** `task_queue_max_priority`: `x-max-priority` of queues without their own (RabbitMQ). Default none. */
  taskQueueMaxPriority: number | null;
  /** `result_expires` in seconds; 0 = never. Default 86400 (1 day). */
  resultExpires: number;
  /** `result_extended`: store name, args, kwargs, worker, retries, queue. Default false. */
  resultExtended: boolean;
  /** `task_ignore_result`. Default false. */
  taskIgnoreResult: boolean;
  /** `task_store_errors_even_if_ignored`. Default false. */
  taskStoreErrorsEvenIfIgnored: boolean;
  /** `task_track_started`. Default false. */
  taskTrackStarted: boolean;
  /** `task_acks_late`. Default false. */
  taskAcksLate: boolean;
  /**
   * `task_reject_on_worker_lost`: with acks late, requeue a message whose worker was
   * lost mid-run (process killed, or event loop hung past `workerHangTimeout`)
   * instead of acking it. Default false, as in Celery: a task that kills its worker
   * would otherwise be redelivered forever.
   */
  taskRejectOnWorkerLost: boolean;
  /** `task_acks_on_failure_or_timeout`. Default true. */
  taskAcksOnFailureOrTimeout: boolean;
  /** `task_time_limit` in seconds (hard). Default none. */
  taskTimeLimit: number | null;
  /** `task_soft_time_limit` in seconds. Default none. */
  taskSoftTimeLimit: number | null;
  /** `task_default_rate_limit`: the rate limit of tasks that set none (`'10/s'`, `'100/m'`, `'1000/h'`). Default none. */
  taskDefaultRateLimit: string | null;
  /** `task_default_retry_delay` in seconds. Default 180. */
  taskDefaultRetryDelay: number;
  /** `task_max_retries`... per task in Celery (`max_retries`); app-wide default 3. */
  taskMaxRetries: number | null;
  /** `worker_concurrency`. Default: number of CPUs (like Celery). */
  workerConcurrency: number;
  /**
   * `worker_pool`: where task functions run — `async` (the worker's event loop, for
   * I/O-bound tasks), `threads` (worker_threads) or `processes` (child processes,
   * Celery's prefork) for CPU-bound tasks. Default `async`.
   */
  workerPool: 'async' | 'threads' | 'processes';
  /** `worker_max_tasks_per_child`: replace a pool thread/child after this many tasks. Default none. */
  workerMaxTasksPerChild: number | null;
  /**
   * `worker_max_memory_per_child`: replace a pool child whose resident memory (a
   * thread: its V8 heap) passed this many KiB after a task. Default none.
   */
  workerMaxMemoryPerChild: number | null;
  /** `worker_prefetch_multiplier`. Default 4. */
  workerPrefetchMultiplier: number;
  /**
   * Celeriac: ETA messages due within this many seconds are held in worker memory;
   * later ones are parked broker-side and promoted when due. Default 60.
   */
  workerEtaHoldSeconds: number;
  /** Celeriac: seconds between consumer heartbeats (dead consumers' messages return after ~5×). Default 2. */
  workerHeartbeatInterval: number;
  /**
   * Celeriac: beat from a worker thread, so a task that blocks the event loop for
   * longer than 5 heartbeat intervals is not taken for dead and run twice. Costs
   * ~9 MB RSS; turn it off only if no task blocks the loop. Default true.
   */
  workerHeartbeatThread: boolean;
  /**
   * `worker_hang_timeout` (Celeriac): seconds without event-loop progress after which
   * the heartbeat thread declares the worker hung (a task stuck in a synchronous
   * loop). It then gives back the messages not started (other workers take them at
   * once) and settles the running ones as Celery settles a lost worker's: requeued
   * with `acksLate` + `rejectOnWorkerLost`, otherwise acknowledged. Must exceed every
   * hard time limit (`taskTimeLimit`, tasks' `timeLimit`): those cannot fire while
   * the loop is blocked, this is the backstop. 0 = never. Needs the heartbeat thread.
   * Default 300 (5 min).
   */
  workerHangTimeout: number;
  /**
   * Answer remote control (`app.control`, `celery inspect` / `control`, revokes) on
   * the broker's pidbox. Celery's `worker_enable_remote_control`. Default true.
   */
  workerEnableRemoteControl: boolean;
  /**
   * The worker's persistent state file (`--statedb`; Celery's `worker_state_db`):
   * revoked ids survive a restart without broker storage. `%n` / `%h` / `%p` expand
   * to the node's name / host / full name. Celeriac's own JSON format: do not share
   * it with a Python worker. Default null (off).
   */
  workerStateDb: string | null;
  /** Send task events (task-received, -started, -succeeded, ...) for monitors; `-E`. Celery's `worker_send_task_events`. Default false. */
  workerSendTaskEvents: boolean;
  /** Producers send a task-sent event for every task. Celery's `task_send_sent_event`. Default false. */
  taskSendSentEvent: boolean;
  /**
   * Celeriac: a message restored this many times after its worker died or stalled
   * while holding it (a task that crashes the process, BullMQ's `maxStalledCount`) is
   * given up on the next delivery: FAILURE (`WorkerLostError`) is stored and the
   * message dropped, with an error log line. Default 3.
   */
  workerMaxRedeliveries: number;
  /**
   * Celeriac: execute protocol v1 messages (Celery 3.x producers). Default false: they
   * are rejected with an error naming this setting.
   */
  workerAcceptProtocolV1: boolean;
  /**
   * Celeriac: how the worker's log lines look: `pretty` (Celery's
   * `[time: LEVEL/MainProcess] message`), `json` (pino JSON lines) or `auto`
   * (pretty when stderr is a terminal). Default `auto`. Not Celery's
   * `worker_log_format`, which is a %-format string.
   */
  workerLogFormat: LogFormat;
  /**
   * Celeriac: reject messages larger than this many bytes, checked on the raw message
   * before it is parsed and again on the body while it is decompressed (a zip bomb
   * stops inflating at this size). Default 16 MiB.
   */
  maxMessageSize: number;
  /** `broker_transport_options`. */
  brokerTransportOptions: BrokerTransportOptions;
  /**
   * `broker_connection_retry`: a worker that cannot reach the broker (at start-up
   * or later) keeps trying, printing Celery's "Trying again in N seconds" lines.
   * Default true.
   */
  brokerConnectionRetry: boolean;
  /** `broker_connection_max_retries`: give up (exit non-zero) after this many; 0 or null = never. Default 100. */
  brokerConnectionMaxRetries: number | null;
  /** `broker_connection_timeout` in seconds: connect timeout, and how long shutdown waits for an absent broker. Default 4. */
  brokerConnectionTimeout: number;
  /** `task_publish_retry`: retry a publish while the broker is unreachable. Default true. */
  taskPublishRetry: boolean;
  /** `task_publish_retry_policy`. Default `{ maxRetries: 3, intervalStart: 0, intervalStep: 0.2, intervalMax: 0.2 }` (about 1 s). */
  taskPublishRetryPolicy: RetryPolicy;
  /** `result_backend_transport_options` (Redis: `{ redis: <ioredis options> }`). */
  resultBackendTransportOptions: Record<string, unknown>;
  /**
   * Celeriac: seconds a worker keeps retrying (with backoff) result writes the
   * backend refused, e.g. during an outage, before it drops them and logs each
   * task id. Default 60. A late-ack message whose result was dropped is run again.
   */
  resultBackendRetryWindow: number;
  /**
   * `timezone`: the IANA zone beat evaluates crontabs in (`Europe/Berlin`).
   * Default none: UTC, or the machine's zone when `enableUtc` is false (Celery's rule).
   */
  timezone: string | null;
  /** `enable_utc`. Default true. */
  enableUtc: boolean;
  /** `beat_schedule`: periodic tasks by name (see `BeatEntry`). Default `{}`. */
  beatSchedule: BeatScheduleConfig;
  /** `beat_max_loop_interval`: the longest beat sleeps between checks, in seconds. Default 300. */
  beatMaxLoopInterval: number;
  /** `beat_schedule_filename`: where beat keeps last-run times when the broker is not Redis. Default `celeriac-beat-schedule.json`. */
  beatScheduleFilename: string;
  /**
   * Celeriac: seconds the beat leader's lock lives in Redis without renewal (renewed
   * every third of it); a standby beat takes over at most this long after the
   * leader dies. Default 30.
   */
  beatLockTtl: number;
}

/** Celery's defaults (plus Celeriac's own settings). */
export function defaultSettings(): Settings {
  return {
    brokerUrl: 'memory://',
    resultBackend: null,
    taskSerializer: 'json',
    resultSerializer: 'json',
    acceptContent: ['json'],
    resultAcceptContent: null,
    taskCompression: null,
    taskDefaultQueue: 'celery',
    taskDefaultExchange: 'celery',
    taskDefaultRoutingKey: 'celery',
    taskDefaultPriority: null,
    taskRoutes: {},
    taskDefaultExchangeType: 'direct',
    taskQueues: null,
    taskCreateMissingQueues: true,
    taskQueueMaxPriority: null,
    resultExpires: 86_400,
    resultExtended: false,
    taskIgnoreResult: false,
    taskStoreErrorsEvenIfIgnored: false,
    taskTrackStarted: false,
    taskAcksLate: false,
    taskRejectOnWorkerLost: false,
    taskAcksOnFailureOrTimeout: true,
    taskTimeLimit: null,
    taskSoftTimeLimit: null,
    taskDefaultRateLimit: null,
    taskDefaultRetryDelay: 180,
    taskMaxRetries: 3,
    workerConcurrency: availableParallelism(),
    workerPool: 'async',
    workerMaxTasksPerChild: null,
    workerMaxMemoryPerChild: null,
    workerPrefetchMultiplier: 4,
    workerEtaHoldSeconds: 60,
    workerHeartbeatInterval: 2,
    workerHeartbeatThread: true,
    workerHangTimeout: 300,
    workerEnableRemoteControl: true,
    workerStateDb: null,
    workerSendTaskEvents: false,
    taskSendSentEvent: false,
    workerMaxRedeliveries: 3,
    workerAcceptProtocolV1: false,
    workerLogFormat: 'auto',
    maxMessageSize: 16 * 1024 * 1024,
    brokerTransportOptions: {},
    brokerConnectionRetry: true,
    brokerConnectionMaxRetries: 100,
    brokerConnectionTimeout: 4,
    taskPublishRetry: true,
    taskPublishRetryPolicy: { maxRetries: 3, intervalStart: 0, intervalStep: 0.2, intervalMax: 0.2 },
    resultBackendTransportOptions: {},
    resultBackendRetryWindow: 60,
    timezone: null,
    enableUtc: true,
    beatSchedule: {},
    beatMaxLoopInterval: 300,
    beatScheduleFilename: 'celeriac-beat-schedule.json',
    beatLockTtl: 30,
  };
}

type Kind = 'string' | 'nullable-string' | 'number' | 'nullable-number' | 'boolean' | 'list' | 'object' | 'beat-schedule' | 'queues' | 'routes';

/** Celery 4+ lowercase name → [camelCase key, kind]. */
const CELERY_NAMES: Record<string, [keyof Settings, Kind]> = {
  broker_url: ['brokerUrl', 'string'],
  result_backend: ['resultBackend', 'nullable-string'],
  task_serializer: ['taskSerializer', 'string'],
  result_serializer: ['resultSerializer', 'string'],
  accept_content: ['acceptContent', 'list'],
  result_accept_content: ['resultAcceptContent', 'list'],
  result_compression: ['taskCompression', 'nullable-string'],
  task_compression: ['taskCompression', 'nullable-string'],
  task_default_queue: ['taskDefaultQueue', 'string'],
  task_default_exchange: ['taskDefaultExchange', 'string'],
  task_default_routing_key: ['taskDefaultRoutingKey', 'string'],
  task_default_priority: ['taskDefaultPriority', 'nullable-number'],
  task_routes: ['taskRoutes', 'routes'],
  task_default_exchange_type: ['taskDefaultExchangeType', 'string'],
  task_queues: ['taskQueues', 'queues'],
  task_create_missing_queues: ['taskCreateMissingQueues', 'boolean'],
  task_queue_max_priority: ['taskQueueMaxPriority', 'nullable-number'],
  result_expires: ['resultExpires', 'number'],
  result_extended: ['resultExtended', 'boolean'],
  task_ignore_result: ['taskIgnoreResult', 'boolean'],
  task_store_errors_even_if_ignored: ['taskStoreErrorsEvenIfIgnored', 'boolean'],
  task_track_started: ['taskTrackStarted', 'boolean'],
  task_acks_late: ['taskAcksLate', 'boolean'],
  task_acks_on_failure_or_timeout: ['taskAcksOnFailureOrTimeout', 'boolean'],
  task_reject_on_worker_lost: ['taskRejectOnWorkerLost', 'boolean'],
  task_time_limit: ['taskTimeLimit', 'nullable-number'],
  task_soft_time_limit: ['taskSoftTimeLimit', 'nullable-number'],
  task_default_retry_delay: ['taskDefaultRetryDelay', 'number'],
  task_default_rate_limit: ['taskDefaultRateLimit', 'nullable-string'],
  worker_concurrency: ['workerConcurrency', 'number'],
  worker_prefetch_multiplier: ['workerPrefetchMultiplier', 'number'],
  worker_pool: ['workerPool', 'string'],
  worker_max_tasks_per_child: ['workerMaxTasksPerChild', 'nullable-number'],
  worker_max_memory_per_child: ['workerMaxMemoryPerChild', 'nullable-number'],
  worker_hang_timeout: ['workerHangTimeout', 'number'],
  worker_enable_remote_control: ['workerEnableRemoteControl', 'boolean'],
  worker_state_db: ['workerStateDb', 'nullable-string'],
  worker_send_task_events: ['workerSendTaskEvents', 'boolean'],
  task_send_sent_event: ['taskSendSentEvent', 'boolean'],
  broker_transport_options: ['brokerTransportOptions', 'object'],
  broker_connection_retry: ['brokerConnectionRetry', 'boolean'],
  broker_connection_max_retries: ['brokerConnectionMaxRetries', 'nullable-number'],
  broker_connection_timeout: ['brokerConnectionTimeout', 'number'],
  task_publish_retry: ['taskPublishRetry', 'boolean'],
  task_publish_retry_policy: ['taskPublishRetryPolicy', 'object'],
  result_backend_transport_options: ['resultBackendTransportOptions', 'object'],
  timezone: ['timezone', 'nullable-string'],
  enable_utc: ['enableUtc', 'boolean'],
  beat_schedule: ['beatSchedule', 'beat-schedule'],
  beat_max_loop_interval: ['beatMaxLoopInterval', 'number'],
  beat_schedule_filename: ['beatScheduleFilename', 'string'],
};

/** Pre-4.0 uppercase names (Celery's "old settings") → the new lowercase name. */
const OLD_NAMES: Record<string, string> = {
  BROKER_URL: 'broker_url',
  CELERY_RESULT_BACKEND: 'result_backend',
  CELERY_TASK_SERIALIZER: 'task_serializer',
  CELERY_RESULT_SERIALIZER: 'result_serializer',
  CELERY_ACCEPT_CONTENT: 'accept_content',
  CELERY_MESSAGE_COMPRESSION: 'result_compression',
  CELERY_DEFAULT_QUEUE: 'task_default_queue',
  CELERY_DEFAULT_EXCHANGE: 'task_default_exchange',
  CELERY_DEFAULT_ROUTING_KEY: 'task_default_routing_key',
  CELERY_ROUTES: 'task_routes',
  CELERY_QUEUES: 'task_queues',
  CELERY_CREATE_MISSING_QUEUES: 'task_create_missing_queues',
  CELERY_TASK_RESULT_EXPIRES: 'result_expires',
  CELERY_IGNORE_RESULT: 'task_ignore_result',
  CELERY_TRACK_STARTED: 'task_track_started',
  CELERY_ACKS_LATE: 'task_acks_late',
  CELERY_REJECT_ON_WORKER_LOST: 'task_reject_on_worker_lost',
  CELERYD_TASK_TIME_LIMIT: 'task_time_limit',
  CELERY_DEFAULT_RATE_LIMIT: 'task_default_rate_limit',
  CELERYD_TASK_SOFT_TIME_LIMIT: 'task_soft_time_limit',
  CELERYD_CONCURRENCY: 'worker_concurrency',
  CELERYD_STATE_DB: 'worker_state_db',
  CELERYD_PREFETCH_MULTIPLIER: 'worker_prefetch_multiplier',
  CELERYD_POOL: 'worker_pool',
  CELERYD_MAX_TASKS_PER_CHILD: 'worker_max_tasks_per_child',
  CELERYD_MAX_MEMORY_PER_CHILD: 'worker_max_memory_per_child',
  CELERY_SEND_EVENTS: 'worker_send_task_events',
  CELERY_SEND_TASK_SENT_EVENT: 'task_send_sent_event',
  BROKER_TRANSPORT_OPTIONS: 'broker_transport_options',
  BROKER_CONNECTION_RETRY: 'broker_connection_retry',
  BROKER_CONNECTION_MAX_RETRIES: 'broker_connection_max_retries',
  BROKER_CONNECTION_TIMEOUT: 'broker_connection_timeout',
  CELERY_TASK_PUBLISH_RETRY: 'task_publish_retry',
  CELERY_TASK_PUBLISH_RETRY_POLICY: 'task_publish_retry_policy',
  CELERY_TIMEZONE: 'timezone',
  CELERY_ENABLE_UTC: 'enable_utc',
  CELERYBEAT_SCHEDULE: 'beat_schedule',
  CELERYBEAT_MAX_LOOP_INTERVAL: 'beat_max_loop_interval',
  CELERYBEAT_SCHEDULE_FILENAME: 'beat_schedule_filename',
};

/** Options for `fromObject`. */
export interface FromObjectOptions {
  /** Only keys starting with `<namespace>_` are read (Django style: `CELERY_BROKER_URL`). */
  namespace?: string;
  /** What to do with unknown keys in the namespace: warn (default), throw, or a callback. */
  onUnknown?: 'warn' | 'throw' | ((keys: string[]) => void);
}

function coerce(key: string, value: unknown, kind: Kind): unknown {
  const fail = (expected: string) =>
    new ConfigurationError(`Setting ${key} must be ${expected}, got ${JSON.stringify(value)}.`);
  if (kind === 'nullable-string' || kind === 'nullable-number') {
    if (value === null || value === undefined || value === '' || value === 'None') return null;
  }
  switch (kind) {
    case 'string':
    case 'nullable-string':
      if (typeof value !== 'string') throw fail('a string');
      return value;
    case 'number':
    case 'nullable-number': {
      const n = typeof value === 'string' ? Number(value) : value;
      if (typeof n !== 'number' || Number.isNaN(n)) throw fail('a number');
      return n;
    }
    case 'boolean':
      if (typeof value === 'boolean') return value;
      if (typeof value === 'string' && /^(true|1|yes|on)$/i.test(value)) return true;
      if (typeof value === 'string' && /^(false|0|no|off)$/i.test(value)) return false;
      throw fail('a boolean');
    case 'list':
      if (Array.isArray(value)) return value.map(String);
      if (typeof value === 'string') return value.split(',').map((s) => s.trim()).filter(Boolean);
      throw fail('a list');
    case 'queues': {
      if (value === '' || value === 'None') return null;
      const list = typeof value === 'string' ? (JSON.parse(value) as unknown) : value;
      if (list === null || list === undefined) return null;
      if (!Array.isArray(list)) throw fail('a list of queues ({ name, exchange, exchange_type, routing_key, queue_arguments })');
      return list.map((q) => normalizeQueueSpec(key, q));
    }
    case 'beat-schedule':
      return fromCeleryBeatSchedule(value, key);
    case 'routes':
      // task_routes: a map, a list of routers, or a router function (compiled by task-routes.ts).
      if (typeof value === 'string') return JSON.parse(value);
      if (typeof value === 'function' || Array.isArray(value)) return value;
      if (value && typeof value === 'object') return normalizeObject(key, value as Record<string, unknown>);
      throw fail('a map of task name → route, a list of routers or a router function');
    case 'object':
      if (typeof value === 'string') return JSON.parse(value);
      if (value && typeof value === 'object') return normalizeObject(key, value as Record<string, unknown>);
      throw fail('an object');
  }
}

const camelCase = (s: string) => s.replace(/_([a-z])/g, (_, c: string) => c.toUpperCase());

/** One `task_queues` entry with camelCase keys (`queue_arguments` → `queueArguments`; argument names kept). */
export function normalizeQueueSpec(setting: string, q: unknown): QueueSpec {
  if (!q || typeof q !== 'object' || Array.isArray(q) || typeof (q as { name?: unknown }).name !== 'string') {
    throw new ConfigurationError(`Every ${setting} entry must be an object with a queue name ({ name: 'celery', exchange: 'celery', routingKey: 'celery' }), got ${JSON.stringify(q)}.`);
  }
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(q as Record<string, unknown>)) {
    const ck = camelCase(k);
    out[ck] = ck === 'bindings' && Array.isArray(v) ? v.map((b) => Object.fromEntries(Object.entries(b as object).map(([bk, bv]) => [camelCase(bk), bv]))) : v;
  }
  const type = out.exchangeType;
  if (type !== undefined && type !== 'direct' && type !== 'topic' && type !== 'fanout') {
    throw new ConfigurationError(`${setting} queue ${JSON.stringify(out.name)}: exchangeType must be direct, topic or fanout, got ${JSON.stringify(type)}.`);
  }
  return out as unknown as QueueSpec;
}

/** snake_case keys inside object settings (`task_routes` values, transport options) become camelCase. */
function normalizeObject(key: string, obj: Record<string, unknown>): Record<string, unknown> {
  const camel = (s: string) => s.replace(/_([a-z])/g, (_, c: string) => c.toUpperCase());
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(obj)) {
    const deep = key.toLowerCase().includes('routes') && v && typeof v === 'object' && !Array.isArray(v);
    out[key.toLowerCase().includes('routes') ? k : camel(k)] = deep ? Object.fromEntries(Object.entries(v).map(([ik, iv]) => [camel(ik), iv])) : v;
  }
  return out;
}

/**
 * Read Celery-style settings from a plain object (a Django settings module, a
 * config file, `process.env`). Accepts Celery 4+ lowercase names, their
 * namespaced uppercase form (`CELERY_BROKER_URL` with namespace `CELERY`) and the
 * old uppercase names (`BROKER_URL`, `CELERYD_CONCURRENCY`, ...). Values given as
 * strings (environment variables) are converted. Unknown keys in the namespace are
 * reported (warning by default), never silently dropped.
 */
export function fromObject(obj: Record<string, unknown>, options: FromObjectOptions = {}): Partial<Settings> {
  const prefix = options.namespace ? `${options.namespace}_` : null;
  const out: Partial<Settings> = {};
  const unknown: string[] = [];
  for (const [rawKey, value] of Object.entries(obj)) {
    let celeryName: string | undefined;
    if (OLD_NAMES[rawKey]) celeryName = OLD_NAMES[rawKey];
    else if (prefix && rawKey.startsWith(prefix)) celeryName = rawKey.slice(prefix.length).toLowerCase();
    else if (!prefix) celeryName = rawKey;
    else continue; // outside the namespace: not ours
    const entry = celeryName !== undefined ? CELERY_NAMES[celeryName] : undefined;
    if (!entry) {
      if (prefix || /^[a-z_]+$/.test(rawKey) || rawKey.startsWith('CELERY')) unknown.push(rawKey);
      continue;
    }
    const [key, kind] = entry;
    (out as Record<string, unknown>)[key] = coerce(rawKey, value, kind);
  }
  if (unknown.length > 0) {
    const message =
      `Unknown Celery setting${unknown.length > 1 ? 's' : ''}: ${unknown.join(', ')}. ` +
      `Check the spelling against Celery's setting names (e.g. ${prefix ?? ''}${prefix ? 'BROKER_URL' : 'broker_url'}), or remove ${unknown.length > 1 ? 'them' : 'it'}.`;
    const onUnknown = options.onUnknown ?? 'warn';
    if (onUnknown === 'throw') throw new ConfigurationError(message);
    if (onUnknown === 'warn') process.emitWarning(message, { code: 'CELERIAC_UNKNOWN_SETTING' });
    else onUnknown(unknown);
  }
  return out;
}

/** Merge partial settings onto the defaults, validating what needs validating. */
export function resolveSettings(partial: Partial<Settings>): Settings {
  const s = { ...defaultSettings(), ...stripUndefined(partial) };
  if (!Number.isInteger(s.workerConcurrency) || s.workerConcurrency < 1) {
    throw new ConfigurationError(`workerConcurrency must be a positive integer, got ${s.workerConcurrency}.`);
  }
  if (s.workerPrefetchMultiplier < 0) throw new ConfigurationError('workerPrefetchMultiplier must be ≥ 0 (0 = unlimited).');
  checkHangTimeout(s.workerHangTimeout, s.taskTimeLimit, 'taskTimeLimit');
  if (!Number.isInteger(s.workerMaxRedeliveries) || s.workerMaxRedeliveries < 0) {
    throw new ConfigurationError(`workerMaxRedeliveries must be an integer ≥ 0 (0 = give up on the first redelivery after a crash), got ${JSON.stringify(s.workerMaxRedeliveries)}.`);
  }
  s.taskPublishRetryPolicy = resolveRetryPolicy(s.taskPublishRetryPolicy, 'taskPublishRetryPolicy');
  if (typeof s.resultBackendRetryWindow !== 'number' || !(s.resultBackendRetryWindow >= 0) || !Number.isFinite(s.resultBackendRetryWindow)) {
    throw new ConfigurationError(`resultBackendRetryWindow must be a number of seconds ≥ 0 (0 = drop a refused result at once), got ${JSON.stringify(s.resultBackendRetryWindow)}.`);
  }
  if (!['async', 'threads', 'processes'].includes(s.workerPool)) {
    const hint = (s.workerPool as string) === 'prefork' ? " (Celery's prefork is 'processes')" : '';
    throw new ConfigurationError(`workerPool must be 'async', 'threads' or 'processes'${hint}, got ${JSON.stringify(s.workerPool)}.`);
  }
  for (const key of ['workerMaxTasksPerChild', 'workerMaxMemoryPerChild'] as const) {
    const v = s[key];
    if (v !== null && (!Number.isSafeInteger(v) || v < 1)) throw new ConfigurationError(`${key} must be a positive whole number or null (no limit), got ${JSON.stringify(v)}.`);
  }
  if (s.taskQueues) s.taskQueues = s.taskQueues.map((q) => normalizeQueueSpec('taskQueues', q));
  // A bad task_routes entry is a configuration error now, not on the first send.
  if (s.taskRoutes) compileTaskRoutes(s.taskRoutes);
  if (!['direct', 'topic', 'fanout'].includes(s.taskDefaultExchangeType)) {
    throw new ConfigurationError(`taskDefaultExchangeType must be direct, topic or fanout, got ${JSON.stringify(s.taskDefaultExchangeType)}.`);
  }
  if (s.taskQueueMaxPriority !== null && (!Number.isInteger(s.taskQueueMaxPriority) || s.taskQueueMaxPriority < 1 || s.taskQueueMaxPriority > 255)) {
    throw new ConfigurationError(`taskQueueMaxPriority must be an integer 1–255 (RabbitMQ's x-max-priority; 10 covers Celery's 0–9), got ${JSON.stringify(s.taskQueueMaxPriority)}.`);
  }
  if (!['auto', 'pretty', 'json'].includes(s.workerLogFormat)) {
    throw new ConfigurationError(`workerLogFormat must be 'auto', 'pretty' or 'json', got ${JSON.stringify(s.workerLogFormat)}.`);
  }
  return s;
}

/**
 * `workerHangTimeout` must be a number of seconds ≥ 0 and, unless 0 (never), above
 * the hard time limit `limit` (named `limitName` in the error): the hang watch is
 * the backstop for time limits that cannot fire while the loop is blocked.
 */
export function checkHangTimeout(hangTimeout: number, limit: number | null | undefined, limitName: string): void {
  if (!Number.isFinite(hangTimeout) || hangTimeout < 0) {
    throw new ConfigurationError(`workerHangTimeout must be a number of seconds ≥ 0 (0 = never), got ${hangTimeout}.`);
  }
  if (hangTimeout > 0 && limit !== null && limit !== undefined && hangTimeout <= limit) {
    throw new ConfigurationError(
      `workerHangTimeout (${hangTimeout} s) must be greater than ${limitName} (${limit} s): a task running within its time limit ` +
        `would be taken for a hung worker. Raise workerHangTimeout above ${limit} (e.g. ${Math.ceil(limit * 2)}), or set it to 0 to disable the hang watch.`,
    );
  }
}

/**
 * A complete retry policy from a partial one (camelCase or Celery's snake_case
 * keys), over Celery's defaults. Throws naming the bad key.
 */
export function resolveRetryPolicy(given: Partial<RetryPolicy> | Record<string, unknown> | undefined, name = 'retryPolicy'): RetryPolicy {
  const policy: RetryPolicy = { maxRetries: 3, intervalStart: 0, intervalStep: 0.2, intervalMax: 0.2 };
  for (const [key, value] of Object.entries(given ?? {})) {
    const camel = key.replace(/_([a-z])/g, (_, c: string) => c.toUpperCase()) as keyof RetryPolicy;
    if (!(camel in policy)) {
      throw new ConfigurationError(`${name} has an unknown key ${JSON.stringify(key)}: use maxRetries, intervalStart, intervalStep, intervalMax (or Celery's max_retries, interval_start, interval_step, interval_max).`);
    }
    const n = typeof value === 'string' ? Number(value) : value;
    if (typeof n !== 'number' || !Number.isFinite(n) || n < 0) throw new ConfigurationError(`${name}.${camel} must be a non-negative number of ${camel === 'maxRetries' ? 'retries' : 'seconds'}, got ${JSON.stringify(value)}.`);
    policy[camel] = n;
  }
  return policy;
}

function stripUndefined<T extends object>(obj: T): Partial<T> {
  return Object.fromEntries(Object.entries(obj).filter(([, v]) => v !== undefined)) as Partial<T>;
}
