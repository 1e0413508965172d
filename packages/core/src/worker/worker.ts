/**
 * A worker: one consumer loop feeding the request lifecycle, which runs tasks in a
 * pool. Transport details (reservation, liveness, upkeep, ETA parking) stay behind
 * the broker's `Consumer`.
 *
 * Data path: Consumer.reserve → validate → hold ETA (near) or park it (far) → pool
 * slot → task function → (slot freed) callbacks, batched result writes → ack.
 * Prefetch = concurrency × multiplier messages reserved at once; messages held for
 * their ETA do not count (Celery raises the prefetch count for them too).
 */
import { registerCanvasBuiltins } from '../canvas/builtins.js';
import { randomUUID } from 'node:crypto';
import { hostname as osHostname, loadavg, type as osType } from 'node:os';
import type { Celeriac } from '../app.js';
import type { Broker, Consumer, ControlChannel } from '../brokers/broker.js';
import { createBroker, waitForBroker } from '../brokers/index.js';
import { routingFromSettings } from '../brokers/queue-topology.js';
import { waitForBackend } from '../backends/index.js';
import { checkHangTimeout, type ExchangeType, type QueueSpec } from '../config.js';
import { ConfigurationError, TaskTerminated } from '../errors.js';
import { createLogger, type Logger, type LogLevel } from '../logger.js';
import { maskUrl } from '../mask-url.js';
import type { ConnectionEvents } from '../redis-client.js';
import { RedisConnectError } from '../redis-probe.js';
import { startupRetryInterval } from '../wait-for-redis.js';
import type { ControlTarget } from '../control/control-commands.js';
import { REVOKE_EXPIRES_SECONDS, RevokedSet } from '../control/revoked-set.js';
import { WorkerMailbox } from '../control/worker-mailbox.js';
import { nodeFormat, StateDb } from '../control/state-db.js';
import { WorkerRequests } from '../control/worker-requests.js';
import { clockOf } from '../control/lamport-clock.js';
import { VERSION } from '../version.js';
import { EventDispatcher } from '../events/event-dispatcher.js';
import { TaskEvents } from '../events/task-events.js';
import { ConsumerLoop } from './consumer-loop.js';
import { ChildPool } from './child-pool.js';
import { parseRate } from './rate-limits.js';
import { checkAcceptContent } from '../protocol/serialization.js';
import { AsyncPool, type Pool } from './pool.js';
import { emitSignal } from '../signals.js';
import { RequestLifecycle, type WorkerStats } from './request-lifecycle.js';

export type { WorkerStats } from './request-lifecycle.js';

/** Options of a worker (the `celeriac worker` flags). */
export interface WorkerOptions {
  /** Queues to consume, in priority order. Default: every queue of `taskQueues`, else `taskDefaultQueue`. */
  queues?: string[];
  /** Queues not to consume (`-X`), taken out of `queues` or the default list. */
  excludeQueues?: string[];
  /** Tasks run at once. Default: app `workerConcurrency`. */
  concurrency?: number;
  /** Prefetch = concurrency × this (0 = unlimited). Default: app `workerPrefetchMultiplier` (4). */
  prefetchMultiplier?: number;
  /** Node name. Default `celeriac@<host>`. */
  hostname?: string;
  /** Log level. Default `info`. */
  logLevel?: LogLevel;
  /** Use this logger instead of creating one. */
  logger?: Logger;
  /**
   * Called when the broker stayed away longer than `brokerConnectionRetry` /
   * `brokerConnectionMaxRetries` allow (Celery's worker exits then). Default: a
   * cold stop. The CLI exits non-zero.
   */
  onBrokerLost?: (err: Error) => void;
  /**
   * A remote `shutdown` command arrived (`celery control shutdown`, the dashboard):
   * called instead of the default warm `stop()`, so a process can stop and exit the
   * way it does on SIGTERM (the CLI does).
   */
  onRemoteShutdown?: () => void;
  /**
   * Hard time limit in seconds for tasks whose message and options set none
   * (`--time-limit`). Default: app `taskTimeLimit`.
   */
  timeLimit?: number | null;
  /** Soft time limit in seconds, likewise (`--soft-time-limit`). Default: app `taskSoftTimeLimit`. */
  softTimeLimit?: number | null;
  /**
   * Where task functions run (`--pool`): `async` (this event loop, for I/O-bound
   * tasks), `threads` (worker_threads) or `processes` (child processes, Celery's
   * prefork), for CPU-bound ones. Default: app `workerPool` (`async`).
   */
  pool?: PoolKind;
  /**
   * The module each pool thread / child loads to find the tasks: what `-A` names
   * (`path/to/module[:export]`, relative to `cwd`). Required for `threads` and
   * `processes`; the CLI passes its `-A`.
   */
  appModule?: string;
  /** Working directory `appModule` is resolved from. Default `process.cwd()`. */
  cwd?: string;
  /** Replace a pool thread/child after this many tasks (`--max-tasks-per-child`). Default: app `workerMaxTasksPerChild`. */
  maxTasksPerChild?: number | null;
  /** Replace a pool thread/child whose memory passed this many KiB after a task (`--max-memory-per-child`). Default: app `workerMaxMemoryPerChild`. */
  maxMemoryPerChild?: number | null;
  /** `[max, min]` pool members (`--autoscale max,min`): grows while work waits, shrinks when idle. Threads/processes only. */
  autoscale?: [number, number];
  /** V8 heap limit per pool thread/child in MB: a task allocating without bound kills only its own member (WorkerLostError). */
  childHeapLimitMb?: number;
  /**
   * Ask the other workers for the ids they know are revoked at start-up (Celery's
   * mingle; `--without-mingle` turns it off). Default true.
   */
  mingle?: boolean;
  /**
   * The persistent state file (`--statedb`, Celery's `worker_state_db`): revoked ids
   * are loaded from it at start and written back when they change and at shutdown,
   * so they survive a restart even without broker storage. Default: app `workerStateDb`.
   */
  stateDb?: string | null;
  /** Send task events (`-E`; Celery's `worker_send_task_events`). Default: the app setting. */
  sendEvents?: boolean;
  /** Send worker-online / worker-heartbeat / worker-offline events (`--without-heartbeat` turns them off). Default true. */
  heartbeat?: boolean;
}

/** How `Worker.addConsumer` declares a queue that is not in `taskQueues` (Celery's `add_consumer` arguments). */
export interface AddConsumerOptions {
  /** Exchange to bind the queue to. Default: the queue name. */
  exchange?: string;
  /** Default `direct`. */
  exchangeType?: ExchangeType;
  /** Binding key. Default: the queue name. */
  routingKey?: string;
  /** AMQP queue arguments (`x-max-priority`, ...). */
  queueArguments?: Record<string, unknown>;
}

/** Where task functions run. */
export type PoolKind = 'async' | 'threads' | 'processes';


/** Seconds between worker-heartbeat events (Celery's default 2.0). */
const HEARTBEAT_FREQ = 2.0;

const UNLIMITED_PREFETCH = 10_000;
/** A cold shutdown waits at most this long for pending acks and results. */
const COLD_FLUSH_WAIT_MS = 10_000;

/** A worker consuming task messages for one app. */
export class Worker {
  readonly hostname: string;
  readonly queues: string[];
  /** Where task functions run. */
  readonly poolKind: PoolKind;
  readonly log: Logger;
  /** Identifies this consumer in the broker (unacked ownership, heartbeats). */
  readonly consumerId = randomUUID();
  readonly stats: WorkerStats = { processed: 0, succeeded: 0, failed: 0, retried: 0, rejected: 0, active: 0, reserved: 0, held: 0 };

  /** Revoked task ids this worker discards on arrival (remote control `revoke`). */
  readonly revoked = new RevokedSet();
  /** The requests it holds, for `inspect active / reserved / scheduled`. */
  readonly requests = new WorkerRequests();
  /** Tasks started per name (`inspect stats` → `total`). */
  readonly totals = new Map<string, number>();
  /** Unix ms when `start()` was called. */
  startedAt = 0;

  /** Tasks run at once (changed by pool_grow / pool_shrink / autoscale). */
  private slots: number;
  private readonly prefetchMultiplier: number;

  private broker: Broker | undefined;
  private stateDb: StateDb | undefined;
  private mailbox: WorkerMailbox | undefined;
  private controlChannel: ControlChannel | undefined;
  private events: EventDispatcher | undefined;
  private heartbeatTimer: NodeJS.Timeout | undefined;
  /** What the request lifecycle reports to remote control and events. */
  private readonly controlHooks: { requests: WorkerRequests; revoked: RevokedSet; totals: Map<string, number>; events?: TaskEvents } = {
    requests: this.requests,
    revoked: this.revoked,
    totals: this.totals,
  };
  private consumer: Consumer | undefined;
  private loop: ConsumerLoop | undefined;
  private lifecycle: RequestLifecycle | undefined;
  private pool: Pool | undefined;
  private running = false;
  private stopping: Promise<void> | undefined;
  private giveUpTimer: NodeJS.Timeout | undefined;
  private turnCold: (() => void) | undefined;

  constructor(
    readonly app: Celeriac,
    private readonly options: WorkerOptions = {},
  ) {
    const s = app.settings;
    this.hostname = options.hostname ?? `celeriac@${osHostname()}`;
    // Like Celery: -Q, else every queue of taskQueues, else the default queue; minus -X.
    const excluded = new Set(options.excludeQueues ?? []);
    const all = options.queues?.length ? options.queues : s.taskQueues?.length ? s.taskQueues.map((q) => q.name) : [s.taskDefaultQueue];
    this.queues = all.filter((q) => !excluded.has(q));
    if (this.queues.length === 0) throw new ConfigurationError(`No queue left to consume: -X/excludeQueues (${[...excluded].join(', ')}) excludes every queue of ${all.join(', ')}.`);
    this.poolKind = options.pool ?? s.workerPool;
    if (!['async', 'threads', 'processes'].includes(this.poolKind)) {
      throw new ConfigurationError(`Unknown pool ${JSON.stringify(this.poolKind)}: use 'async' (I/O-bound tasks), 'threads' or 'processes' (CPU-bound tasks).`);
    }
    if (options.autoscale && this.poolKind === 'async') throw new ConfigurationError('autoscale needs --pool threads or processes (the async pool has no members to start or stop).');
    this.slots = options.autoscale?.[0] ?? options.concurrency ?? s.workerConcurrency;
    this.prefetchMultiplier = options.prefetchMultiplier ?? s.workerPrefetchMultiplier;
    this.log = options.logger ?? createLogger(options.logLevel ?? 'info', 'celeriac', { format: s.workerLogFormat });
  }

  /** Tasks run at once (pool_grow / pool_shrink / autoscale change it on a running worker). */
  get concurrency(): number {
    return this.slots;
  }

  /** Messages reserved at once: concurrency × prefetch multiplier (follows the concurrency, as Celery's `_update_prefetch_count`). */
  get prefetchLimit(): number {
    return this.prefetchMultiplier === 0 ? UNLIMITED_PREFETCH : Math.max(1, this.slots * this.prefetchMultiplier);
  }

  /** Connect and start consuming. Resolves once consuming has begun. */
  async start(): Promise<void> {
    if (this.running) return;
    const s = this.app.settings;
    this.startedAt = Date.now();
    registerCanvasBuiltins(this.app); // celery.map, celery.chord_unlock, ... (canvas/builtins.ts)
    for (const name of this.app.taskNames) checkHangTimeout(s.workerHangTimeout, this.app.getTask(name).options.timeLimit, `the timeLimit of task ${name}`);
    checkHangTimeout(s.workerHangTimeout, this.options.timeLimit, 'the worker\'s timeLimit (--time-limit)');
    // acceptContent naming pickle or a type without a decoder fails here, not on the first message.
    checkAcceptContent(s.acceptContent, 'acceptContent');
    if (s.resultAcceptContent) checkAcceptContent(s.resultAcceptContent, 'resultAcceptContent');
    // A bad rate is a start-up error, not a surprise on the first message.
    parseRate(s.taskDefaultRateLimit, 'taskDefaultRateLimit');
    for (const name of this.app.taskNames) parseRate(this.app.getTask(name).options.rateLimit, `The rateLimit of task ${name}`);
    this.openStateDb();
    const recordingLimit = Math.max(this.prefetchLimit, this.concurrency * 2);
    const pool = this.createPool();
    this.pool = pool;
    await emitSignal(this.app, 'workerInit', { sender: this });
    // Threads and children load the app first: a module that fails to load stops the start here.
    await pool.start?.();
    this.app.logger = this.log;
    // Like Celery: "Cannot connect to ...: Trying again in 2.00 seconds... (1/100)" until the broker answers.
    const wait = { retry: s.brokerConnectionRetry, maxRetries: s.brokerConnectionMaxRetries, timeoutMs: s.brokerConnectionTimeout * 1000, log: this.log };
    await waitForBroker(s.brokerUrl, s.brokerTransportOptions, wait);
    const backendUrl = this.app.resultBackendUrl;
    if (backendUrl && backendUrl !== s.brokerUrl) await waitForBackend(backendUrl, s.resultBackendTransportOptions, wait);
    this.broker = await createBroker(s.brokerUrl, { transportOptions: s.brokerTransportOptions, connectionEvents: this.brokerEvents(), routing: routingFromSettings(s) });
    this.log.info({ url: maskUrl(s.brokerUrl) }, `Connected to ${maskUrl(s.brokerUrl)}`);
    const backend = this.app.resultBackendUrl ? await this.app.getBackend() : null;
    if (this.broker.openControlChannel && (s.workerEnableRemoteControl || this.options.heartbeat !== false || this.options.sendEvents || s.workerSendTaskEvents)) {
      const channel = await this.broker.openControlChannel();
      this.controlChannel = channel;
      // Revokes kept in the broker (sent while this worker was offline), then the live ones.
      for (const [id, at] of (await channel.loadRevoked?.()) ?? []) this.revoked.add(id, at);
      const groups = new Set<string>();
      if (this.options.heartbeat !== false) groups.add('worker');
      if (this.options.sendEvents ?? s.workerSendTaskEvents) groups.add('task');
      this.events = new EventDispatcher(channel, { hostname: this.hostname, clock: clockOf(this.app), log: this.log, groups });
      this.controlHooks.events = new TaskEvents(this.events);
    }
    const consumer = await this.broker.openConsumer(this.queues, {
      consumerId: this.consumerId,
      heartbeatIntervalSeconds: s.workerHeartbeatInterval,
      heartbeatThread: s.workerHeartbeatThread,
      hangTimeoutSeconds: s.workerHangTimeout,
      startedCapacity: this.concurrency + recordingLimit + this.prefetchLimit,
      onHangReleased: () => lifecycle.forfeitHeld(),
      lostResults: backend?.threadTarget?.(),
      log: this.log,
      maxMessageBytes: s.maxMessageSize,
    });
    this.consumer = consumer;
    const loop = new ConsumerLoop({
      consumer,
      log: this.log,
      freeSlots: () => this.prefetchLimit - this.stats.reserved,
      onDelivery: (d) => lifecycle.receive(d),
      afterReserve: () => lifecycle.maybeIdle(),
      buffered: () => lifecycle.queued,
      minBatch: Math.floor(this.prefetchLimit / 2),
    });
    const lifecycle = new RequestLifecycle({
      app: this.app,
      consumer,
      pool,
      backend,
      hostname: this.hostname,
      log: this.log,
      stats: this.stats,
      recordingLimit,
      onSlotFreed: () => loop.wake(),
      timeLimits: { hard: this.options.timeLimit ?? null, soft: this.options.softTimeLimit ?? null },
      control: this.controlHooks,
    });
    this.warnAboutAsyncHardLimits();
    this.loop = loop;
    this.lifecycle = lifecycle;
    this.running = true;
    loop.start();
    if (this.controlChannel && s.workerEnableRemoteControl) {
      this.mailbox = new WorkerMailbox(this.controlChannel, this.controlTarget(), this.log);
      await this.mailbox.start();
      if (this.options.mingle !== false) void this.mingle();
    }
    this.startEvents();
    void emitSignal(this.app, 'workerReady', { sender: this });
  }

  /** `--statedb`: load the revoked ids kept in the state file (they survive a restart). */
  private openStateDb(): void {
    const path = this.options.stateDb === undefined ? this.app.settings.workerStateDb : this.options.stateDb;
    if (!path) return;
    const clock = clockOf(this.app);
    const db = new StateDb(nodeFormat(path, this.hostname), this.revoked, () => clock.current, (err) =>
      this.log.warn({ err, statedb: db.path }, `Could not write the worker state file ${db.path}: ${err.message}`),
    );
    clock.adjust(db.load());
    this.stateDb = db;
    this.log.info({ statedb: db.path, revoked: this.revoked.size }, `statedb: ${this.revoked.size} revoked id(s) loaded from ${db.path}`);
  }

  /**
   * Start consuming `queue` as well (Celery's `add_consumer`, what remote control's
   * `add_consumer` calls). A queue of `taskQueues` is declared as configured; any
   * other is declared from `options` (direct exchange and binding key named after
   * the queue by default). Resolves true once the worker consumes it, false when it
   * did already. Before `start()`, the queue is added to those it will consume.
   */
  async addConsumer(queue: string, options: AddConsumerOptions = {}): Promise<boolean> {
    if (typeof queue !== 'string' || queue === '') throw new ConfigurationError(`addConsumer needs a queue name, got ${JSON.stringify(queue)}.`);
    if (this.queues.includes(queue)) return false;
    const consumer = this.consumer;
    if (this.running && consumer) {
      if (!consumer.addQueue) throw new ConfigurationError(`The broker ${this.broker?.displayUrl ?? ''} cannot change the consumed queues at run time.`);
      const spec: QueueSpec = { name: queue, exchange: options.exchange ?? queue, exchangeType: options.exchangeType ?? 'direct', routingKey: options.routingKey ?? queue };
      if (options.queueArguments) spec.queueArguments = options.queueArguments;
      await consumer.addQueue(queue, spec);
      if (this.queues.includes(queue)) return false;
    }
    this.queues.push(queue);
    this.log.info({ queue }, `Started consuming from ${queue}`);
    this.loop?.wake();
    return true;
  }

  /**
   * Stop consuming `queue` (Celery's `cancel_consumer`). Messages already taken
   * from it run and are settled as usual. Resolves false when it was not consumed.
   */
  async cancelConsumer(queue: string): Promise<boolean> {
    const at = this.queues.indexOf(queue);
    if (at < 0) return false;
    const consumer = this.consumer;
    if (this.running && consumer) {
      if (!consumer.removeQueue) throw new ConfigurationError(`The broker ${this.broker?.displayUrl ?? ''} cannot change the consumed queues at run time.`);
      await consumer.removeQueue(queue);
    }
    const now = this.queues.indexOf(queue);
    if (now >= 0) this.queues.splice(now, 1);
    this.log.info({ queue }, `No longer consuming from ${queue}`);
    return true;
  }

  /** The pool `--pool` / `workerPool` names. */
  private createPool(): Pool {
    const s = this.app.settings;
    const kind = this.poolKind;
    if (kind === 'async') return new AsyncPool(this.concurrency);
    if (!this.options.appModule) {
      throw new ConfigurationError(
        `The ${kind} pool needs appModule: the module that exports this app and registers its tasks (what -A names), so each ${kind === 'threads' ? 'thread' : 'child process'} loads the same tasks. ` +
          `Pass new Worker(app, { pool: '${kind}', appModule: './tasks.js' }), or run celeriac -A ./tasks.js worker --pool ${kind}.`,
      );
    }
    const [max, min] = this.options.autoscale ?? [this.concurrency, this.concurrency];
    return new ChildPool({
      kind,
      concurrency: max,
      minConcurrency: min,
      config: { kind, appSpec: this.options.appModule, cwd: this.options.cwd ?? process.cwd(), overrides: { brokerUrl: s.brokerUrl, resultBackend: s.resultBackend } },
      log: this.log,
      maxTasksPerChild: this.options.maxTasksPerChild ?? s.workerMaxTasksPerChild,
      maxMemoryPerChild: this.options.maxMemoryPerChild ?? s.workerMaxMemoryPerChild,
      heapLimitMb: this.options.childHeapLimitMb,
      autoscale: this.options.autoscale !== undefined,
      // Celery's autoscaler reads AUTOSCALE_KEEPALIVE (seconds an idle process above the minimum is kept; default 30).
      idleMs: keepaliveSeconds() * 1000,
    });
  }

  /**
   * The async pool cannot stop JavaScript: say so at start-up when a hard time
   * limit is configured (worker, app or task), as the limit only ends the wait.
   */
  private warnAboutAsyncHardLimits(): void {
    const s = this.app.settings;
    if (this.poolKind !== 'async') return;
    const limited = [
      ...(this.options.timeLimit ? ['--time-limit'] : []),
      ...(s.taskTimeLimit ? ['taskTimeLimit'] : []),
      ...this.app.taskNames.filter((name) => this.app.getTask(name).options.timeLimit).map((name) => `task ${name}`),
    ];
    if (limited.length === 0) return;
    this.log.warn(
      { hardTimeLimits: limited },
      `Hard time limits (${limited.join(', ')}) cannot stop running code on the async pool: a task past its limit is stored as FAILURE (TimeLimitExceeded) ` +
        'and its signal aborted, but its JavaScript keeps running and keeps its pool slot until it returns. Use --pool threads or --pool processes to have such tasks terminated.',
    );
  }

  /** worker-online now, worker-heartbeat every `HEARTBEAT_FREQ` s (Celery's Heart), unless `heartbeat: false`. */
  private startEvents(): void {
    const events = this.events;
    if (!events || !events.enabled('worker')) return;
    void events.send('worker-online', this.heartbeatFields());
    this.heartbeatTimer = setInterval(() => {
      void events.send('worker-heartbeat', this.heartbeatFields()).then(() => emitSignal(this.app, 'heartbeatSent', { sender: this }));
    }, HEARTBEAT_FREQ * 1000);
    this.heartbeatTimer.unref();
  }

  /** Celery's worker-heartbeat fields (`freq`, `active`, `processed`, `loadavg`, `sw_*`). */
  private heartbeatFields(): Record<string, unknown> {
    const load = loadavg().map((n) => Math.round(n * 100) / 100);
    // Tasks handed ahead to busy pool members are not started yet; at most one runs per member (Celery counts started ones).
    return { freq: HEARTBEAT_FREQ, active: Math.min(this.stats.active, this.concurrency), processed: this.stats.processed, loadavg: load, sw_ident: 'celeriac', sw_ver: VERSION, sw_sys: osType() };
  }

  /**
   * Celery's mingle: ask the other workers (`hello`) for the ids they know are
   * revoked. In the background: consuming has begun, a reply arriving within the
   * second is merged (Celery blocks start-up for it).
   */
  private async mingle(): Promise<void> {
    try {
      const replies = await this.app.control.broadcast('hello', { arguments: { from_node: this.hostname, revoked: this.revoked.toHelloData() }, reply: true, timeout: 1_000 });
      for (const reply of replies) {
        for (const [node, body] of Object.entries(reply)) {
          if (node === this.hostname || typeof body !== 'object' || body === null) continue;
          this.revoked.update((body as { revoked?: unknown }).revoked);
          this.log.info(`sync with ${node}`);
        }
      }
    } catch (err) {
      this.log.warn({ err }, `mingle: could not sync revoked ids with other workers: ${(err as Error).message}`);
    }
  }

  /** This worker as remote-control commands see it. */
  private controlTarget(): ControlTarget {
    const worker = this;
    return {
      app: this.app,
      hostname: this.hostname,
      queues: this.queues,
      get concurrency() {
        return worker.concurrency;
      },
      get prefetchLimit() {
        return worker.prefetchLimit;
      },
      poolKind: this.poolKind,
      get poolProcesses() {
        return worker.pool?.memberPids ?? [process.pid];
      },
      get autoscaling() {
        return worker.pool?.autoscaling === true;
      },
      resizePool: (delta) => this.resizePool(delta),
      setAutoscale: (max, min) => this.setAutoscale(max, min),
      setTaskEvents: (on) => {
        if (!this.events) return null;
        const changed = this.events.setGroup('task', on);
        if (changed) this.log.info(`Events of group {task} ${on ? 'enabled' : 'disabled'} by remote.`);
        return changed;
      },
      stats: this.stats,
      startedAt: this.startedAt,
      requests: this.requests,
      revoked: this.revoked,
      totals: this.totals,
      revoke: (ids, terminate, signal) => {
        for (const id of ids) this.revoked.add(id);
        // Kept in the broker as well, so workers that start later discard them too.
        this.controlChannel?.persistRevoked?.(ids, Date.now() + REVOKE_EXPIRES_SECONDS * 1000).catch((err: unknown) => this.log.warn({ err }, 'Could not keep the revoked ids in the broker'));
        if (ids.length) this.log.info({ ids }, `Tasks flagged as revoked: ${ids.join(', ')}`);
        // Held ahead by a pool member and not started: dropped now (stored REVOKED), terminate or not.
        for (const id of ids) if (this.requests.get(id)?.state !== 'active') this.pool?.discardQueued?.(id);
        if (!terminate) return { terminated: [], notStoppable: [] };
        const running = ids.filter((id) => this.requests.get(id)?.state === 'active');
        const pool = this.pool;
        if (!pool?.terminate) {
          if (running.length) {
            // What the async pool can do: abort each task's `signal`, so a task that listens stops (stored REVOKED).
            for (const id of running) {
              const controller = this.requests.get(id)!.request.abortController;
              if (!controller.signal.aborted) controller.abort(new TaskTerminated(signal));
            }
            this.log.warn(
              { ids: running },
              `Cannot terminate ${running.join(', ')}: the async pool cannot stop running JavaScript; their AbortSignal was aborted, so a task that listens to this.signal stops, other code runs to the end (flagged as revoked). Use --pool threads or --pool processes to terminate running tasks.`,
            );
          }
          return { terminated: [], notStoppable: running };
        }
        return { terminated: running.filter((id) => pool.terminate!(id, signal)), notStoppable: [] };
      },
      setRateLimit: (taskName, rate) => this.setRateLimit(taskName, rate),
      addConsumer: (queue, options) => this.addConsumer(queue, options),
      cancelConsumer: (queue) => this.cancelConsumer(queue),
      shutdown: () => {
        this.log.warn('Got shutdown from remote');
        setImmediate(() => (this.options.onRemoteShutdown ? this.options.onRemoteShutdown() : void this.stop()));
      },
    };
  }

  /**
   * Outage lines (one when the broker goes away, one when it is back), and, like
   * Celery, giving up once the broker has stayed away for as long as
   * `brokerConnectionMaxRetries` retries (2, 4, ... 30 s apart) take, or at once
   * with `brokerConnectionRetry: false`.
   */
  private brokerEvents(): ConnectionEvents {
    // The lines go through the app's shared report: its producer (retries, callbacks)
    // reaches the same broker, and an outage is one "lost" line and one "again after" line.
    const { brokerConnectionRetry: retry, brokerConnectionMaxRetries: max } = this.app.settings;
    const retries = max && max > 0 ? Math.trunc(max) : 0;
    return this.app.connectionEvents('broker', {
      onDown: (url, reason) => {
        if (retry && retries === 0) return; // retry forever
        let waitMs = 0;
        for (let n = 1; retry && n <= retries; n++) waitMs += startupRetryInterval(n) * 1000;
        clearTimeout(this.giveUpTimer);
        this.giveUpTimer = setTimeout(() => {
          if (!this.running) return;
          const fix = retry ? `Gave up after ${retries} retries (brokerConnectionMaxRetries).` : 'Not retrying: brokerConnectionRetry is false.';
          const err = new RedisConnectError(url, reason, false, fix);
          this.log.error({ url, reason }, err.message);
          if (this.options.onBrokerLost) this.options.onBrokerLost(err);
          else void this.stop({ cold: true });
        }, waitMs);
        this.giveUpTimer.unref();
      },
      onRecovered: () => clearTimeout(this.giveUpTimer),
    });
  }

  /**
   * Stop consuming. Warm (default): finish running tasks, give back messages not
   * started (held ETAs, queued) and flush acks and results. Cold: give back
   * everything unacknowledged, including running late-ack tasks, and return now.
   */
  async stop(options: { cold?: boolean } = {}): Promise<void> {
    if (this.stopping) {
      // A second request during a warm shutdown turns it cold.
      if (options.cold) this.turnCold?.();
      return this.stopping;
    }
    if (!this.running) return;
    void emitSignal(this.app, 'workerShutdown', { sender: this });
    // Pool threads/children stop once the tasks are done (warm) or at once (cold): nothing more will run.
    // A cold stop does not wait for the async pool's functions (JavaScript that never returns would hold it forever).
    const cold = options.cold === true;
    this.stopping = this.shutdown(cold).finally(() => {
      const closing = this.pool?.close();
      if (!cold) return closing;
      closing?.catch(() => undefined);
      return undefined;
    });
    return this.stopping;
  }

  private async shutdown(cold: boolean): Promise<void> {
    const coldRequested = new Promise<void>((resolve) => (this.turnCold = resolve));
    let turnedCold = cold;
    void coldRequested.then(() => (turnedCold = true));
    const lifecycle = this.lifecycle!;
    this.running = false;
    clearTimeout(this.giveUpTimer);
    // Not awaited: with the broker away, unsubscribing waits for a reconnection.
    void this.mailbox?.stop().catch(() => undefined);
    this.stateDb?.close(); // no more revokes arrive: the file holds the final set
    clearInterval(this.heartbeatTimer);
    lifecycle.stopAccepting();
    // A broker that is away must not hold the process: waiting on it gets
    // brokerConnectionTimeout in all (running tasks still finish in a warm shutdown).
    const limitMs = this.app.settings.brokerConnectionTimeout * 1000;
    const deadline = Date.now() + limitMs;
    // The last reserve must return before anything is given back (or it could take the
    // restored messages again), unless a cold stop finds the broker away: then nothing
    // will come back from it anyway.
    const loopStopped = this.loop!.stop();
    // Cold: the broker away, nothing to wait for; connected, the last reserve returns within its 1 s timeout.
    const coldAndAway = (cold ? Promise.resolve() : coldRequested).then(async () =>
      (await this.broker!.whenConnected?.(0)) === false ? undefined : within(loopStopped, 1000),
    );
    await within(Promise.race([loopStopped, coldAndAway]), limitMs);
    lifecycle.stopAccepting(); // again: what the last reserve brought stays unsettled too
    if (!cold) await Promise.race([lifecycle.runsDone(), coldRequested]);
    const connected = (await this.broker!.whenConnected?.(0)) ?? true;
    const release = this.release(cold, coldRequested);
    if (connected) return release;
    if (!(await within(release, turnedCold ? 0 : Math.max(0, deadline - Date.now())))) {
      const url = maskUrl(this.app.settings.brokerUrl);
      this.log.warn(
        (turnedCold ? `Cold shutdown with the broker ${url} unreachable: stopping now; ` : `The broker ${url} did not answer within ${this.app.settings.brokerConnectionTimeout} s (brokerConnectionTimeout): stopping anyway; `) +
          'messages this worker still held stay unacked in Redis and are restored by other workers (or kombu\'s visibility timeout).',
      );
      // Closing drops the connections at once and ends the heartbeat thread within about a second,
      // in the background: the time allowed for the broker is up.
      await within(this.consumer!.close().then(() => this.broker!.close()), 0);
    }
  }

  /** Flush acks and results, give back what was not acknowledged, close the consumer and the broker. */
  private async release(cold: boolean, coldRequested: Promise<void>): Promise<void> {
    const lifecycle = this.lifecycle!;
    const consumer = this.consumer!;
    // Acks are retried until they land, so a broker outage holds a warm shutdown here (a
    // second signal turns it cold). Cold (now or requested meanwhile): results the backend
    // refuses are dropped, not retried for the window, and pending acks get at most
    // COLD_FLUSH_WAIT_MS (the consumer gives them a last grace period when closed).
    const coldFlush = () => {
      let timer: NodeJS.Timeout | undefined;
      const limit = new Promise<void>((resolve) => (timer = setTimeout(resolve, COLD_FLUSH_WAIT_MS)));
      return Promise.race([lifecycle.flush(true), limit]).finally(() => clearTimeout(timer));
    };
    await (cold ? coldFlush() : Promise.race([lifecycle.flush(false), coldRequested.then(coldFlush)]));
    // Everything not acknowledged by now goes back: held ETAs, queued, and (cold) running late-ack tasks.
    // Closing the consumer gives back all it holds, also what a reserve still in flight brings in
    // (restoring first would let that reserve take the restored messages straight back).
    const giveBack = lifecycle.takeUnsettled();
    if (giveBack.length > 0) this.log.info({ count: giveBack.length }, `Restoring ${giveBack.length} unacknowledged message(s)`);
    if (this.events) {
      // Monitoring never holds a shutdown: at most a second for the last events.
      const events = this.events;
      await within(events.flush().then(() => events.send('worker-offline', this.heartbeatFields())), 1_000);
    }
    // The consumer beats until it is closed: a long warm shutdown never looks like a dead worker.
    await consumer.close();
    await this.broker!.close();
  }

  /**
   * Change a task's rate limit on this worker now (`'10/s'`, `'100/m'`, `'1000/h'`;
   * null = none), over its `rateLimit` option: Celery's `rate_limit` remote control
   * command. Messages already waiting follow the new rate.
   */
  setRateLimit(taskName: string, rate: string | number | null): void {
    if (!this.lifecycle) throw new ConfigurationError('setRateLimit() needs a started worker.');
    this.lifecycle.rateLimits.set(taskName, rate);
    this.log.info({ task: taskName, rateLimit: rate }, `New rate limit for tasks of type ${taskName}: ${rate ?? 'none'}.`);
  }

  /**
   * pool_grow (`delta` > 0) / pool_shrink (< 0): change the tasks run at once (and,
   * on thread/process pools, the members) and the prefetch window with it. Not with
   * autoscale (Celery refuses it too): change the autoscale range instead.
   */
  resizePool(delta: number): void {
    const pool = this.pool;
    if (!pool?.resize) throw new ConfigurationError('resizePool() needs a started worker.');
    if (pool.autoscaling) throw new ConfigurationError(`pool_${delta >= 0 ? 'grow' : 'shrink'} is not supported with autoscale. Adjust autoscale range instead.`);
    pool.resize(delta);
    this.slots = pool.concurrency;
    this.log.info({ concurrency: this.slots, prefetch: this.prefetchLimit }, `Pool ${delta >= 0 ? 'grown' : 'shrunk'} by ${Math.abs(delta)}: concurrency ${this.slots}, prefetch ${this.prefetchLimit}`);
    this.loop?.wake();
  }

  /** autoscale: new [max, min] on a worker started with `autoscale`; resolves to the bounds now in force. */
  setAutoscale(max: number | undefined, min: number | undefined): [number, number] {
    const pool = this.pool;
    if (!pool?.setAutoscale || !pool.autoscaling) throw new ConfigurationError('Autoscale not enabled');
    const bounds = pool.setAutoscale(max, min);
    this.slots = pool.concurrency;
    this.log.info({ max: bounds[0], min: bounds[1] }, `autoscale now max=${bounds[0]} min=${bounds[1]}`);
    this.loop?.wake();
    return bounds;
  }

  /** Pool members alive now (threads/processes; with autoscale it moves between min and max). The async pool: its concurrency. */
  get poolSize(): number {
    return this.pool?.size ?? this.concurrency;
  }

  /** Resolves when no task is running or waiting for a slot (tests, the demo). */
  whenIdle(): Promise<void> {
    return this.lifecycle?.whenIdle() ?? Promise.resolve();
  }
}

/** AUTOSCALE_KEEPALIVE as Celery reads it: seconds, default 30. */
function keepaliveSeconds(): number {
  const value = Number(process.env.AUTOSCALE_KEEPALIVE);
  return process.env.AUTOSCALE_KEEPALIVE !== undefined && Number.isFinite(value) && value >= 0 ? value : 30;
}

/** Resolves true when `promise` settles in time, false after `ms` (a late rejection is ignored). */
async function within(promise: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const settled = promise.then(() => true);
  settled.catch(() => undefined);
  try {
    return await Promise.race([settled, new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(false), ms)))]);
  } finally {
    clearTimeout(timer);
  }
}
