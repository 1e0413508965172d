/**
 * The beat service: checks the schedule at start-up, keeps last runs (a file, or
 * Redis with a Redis broker or result backend, see beat-redis.ts), leads or stands
 * by (Redis leader lock), and runs the
 * scheduler loop on an injectable clock. Started by `celeriac beat`, by
 * `celeriac worker -B`, or in code:
 *
 * ```ts
 * const beat = new Beat(app);
 * await beat.start();
 * // ...
 * await beat.stop();
 * ```
 */
import type { Redis } from 'ioredis';
import type { Celeriac } from '../app.js';
import { ConfigurationError } from '../errors.js';
import type { Logger } from '../logger.js';
import { closeRedisClient, createRedisClient, duplicateRedisClient, whenRedisReady } from '../redis-client.js';
import { waitForRedis } from '../wait-for-redis.js';
import { pyRepr } from '../protocol/python-repr.js';
import { beatRedis } from './beat-redis.js';
import { systemClock, type BeatClock } from './clock.js';
import { loadDynamicEntries } from './dynamic-schedule.js';
import type { ResolvedEntry } from './entry.js';
import { FileStateStore } from './file-state-store.js';
import { LeaderLock } from './leader-lock.js';
import { BEAT_KEYS } from './redis-beat-keys.js';
import { RedisStateStore } from './redis-state-store.js';
import { NotLeaderError, Scheduler } from './scheduler.js';
import type { BeatStateStore } from './state-store.js';
import { beatZone } from './zone.js';

/** Options of `Beat` (each overrides the matching setting). */
export interface BeatOptions {
  /** The clock the schedule runs on. Default: the system clock. */
  clock?: BeatClock;
  /** Default: the app's logger. */
  logger?: Logger;
  /** Last-run file (`--schedule`), when the broker is not Redis. Default: `beatScheduleFilename`. */
  scheduleFile?: string;
  /** Longest sleep in seconds (`--max-interval`). Default: `beatMaxLoopInterval`. */
  maxInterval?: number;
  /** Leader lock TTL in seconds. Default: `beatLockTtl`. */
  lockTtl?: number;
  /** Keep last runs here instead (tests, custom storage). */
  store?: BeatStateStore;
}

/** A running beat. */
export class Beat {
  /** The zone crontabs are evaluated in. */
  zone = 'UTC';
  /** Where last runs are kept (set by `start`). */
  storeDescription = '';
  private readonly clock: BeatClock;
  private log: Logger;
  private store: BeatStateStore | undefined;
  private scheduler: Scheduler | undefined;
  private lock: LeaderLock | undefined;
  private redis: Redis | undefined;
  private subscriber: Redis | undefined;
  private staticEntries: ResolvedEntry[] = [];
  private current: ResolvedEntry[] = [];
  private running = false;
  private loop: Promise<void> | undefined;
  private wake = new AbortController();
  private leaderWaiters: (() => void)[] = [];
  private reportedUnregistered = new Set<string>();
  private reportedBad = new Map<string, string>();
  private sleepUntil: number | null = null;
  private leading = false;
  /** A pass failed and no pass has worked since (its error is logged once). */
  private failing = false;

  constructor(
    readonly app: Celeriac,
    private readonly options: BeatOptions = {},
  ) {
    this.clock = options.clock ?? systemClock;
    this.log = options.logger ?? app.logger;
  }

  /** Whether this beat sends the periodic tasks now (the only one on the broker). */
  get isLeader(): boolean {
    return this.leading;
  }

  /** While the loop sleeps: the clock time it sleeps until; null while it works, stands by, or is stopped. */
  get sleepingUntil(): number | null {
    return this.sleepUntil;
  }

  /** Tasks sent by this beat so far. */
  get sent(): number {
    return this.scheduler?.sent ?? 0;
  }

  /** The entries in force (static and dynamic), as of the last pass. */
  get entries(): readonly ResolvedEntry[] {
    return this.current;
  }

  /**
   * Check everything (zone, every entry — a bad one throws `ConfigurationError`
   * naming it and the fix), open the state store, and start leading or standing by.
   */
  async start(): Promise<void> {
    if (this.running) return;
    const s = this.app.settings;
    try {
      this.zone = beatZone(s.timezone, s.enableUtc);
    } catch (err) {
      throw new ConfigurationError((err as Error).message);
    }
    this.staticEntries = this.app.beat.staticEntries();
    const maxInterval = this.options.maxInterval ?? s.beatMaxLoopInterval;
    const lockTtl = this.options.lockTtl ?? s.beatLockTtl;
    if (!(maxInterval > 0)) throw new ConfigurationError(`beat max interval must be a positive number of seconds, got ${maxInterval}.`);
    if (!(lockTtl > 0)) throw new ConfigurationError(`beatLockTtl must be a positive number of seconds, got ${lockTtl}.`);

    const coordination = beatRedis(s);
    if (coordination) {
      const settings = coordination.connection;
      // Like the worker: until Redis answers, Celery's "Cannot connect to ...: Trying again in 2.00 seconds..." lines.
      const redisOptions = (coordination.role === 'broker' ? s.brokerTransportOptions.redis : s.resultBackendTransportOptions.redis) as Record<string, unknown> | undefined;
      await waitForRedis(coordination.url, redisOptions, {
        retry: s.brokerConnectionRetry,
        maxRetries: s.brokerConnectionMaxRetries,
        timeoutMs: s.brokerConnectionTimeout * 1000,
        log: this.log,
      });
      this.redis = createRedisClient(settings, { redis: { maxRetriesPerRequest: 1 }, events: this.app.connectionEvents(coordination.role) });
      await whenRedisReady(this.redis, s.brokerConnectionTimeout * 1000);
      this.store = this.options.store ?? new RedisStateStore(this.redis, settings.displayUrl);
      this.subscriber = duplicateRedisClient(this.redis);
      this.subscriber.on('message', () => this.wake.abort());
      await this.subscriber.subscribe(BEAT_KEYS.changed).catch((err: Error) => this.log.warn({ err }, 'beat: cannot subscribe to dynamic schedule changes; they are picked up at the next check'));
    } else {
      const file = this.options.scheduleFile ?? s.beatScheduleFilename;
      const store = this.options.store ?? new FileStateStore(file, this.zone);
      if (store instanceof FileStateStore && store.zoneChangedFrom) {
        this.log.warn(`beat: the time zone changed (${store.zoneChangedFrom} → ${this.zone}); last runs in ${file} were reset`);
      }
      this.store = store;
    }
    this.storeDescription = this.store.description;
    try {
      await this.prepare(maxInterval);
    } catch (err) {
      await this.closeConnections();
      throw err;
    }
    this.running = true;
    if (this.redis) {
      this.lock = new LeaderLock(this.redis, Math.round(lockTtl * 1000), {
        onAcquired: () => {
          this.leading = true;
          this.log.info(`beat: leader now (lock ${BEAT_KEYS.lock}); sending periodic tasks`);
          for (const w of this.leaderWaiters.splice(0)) w();
        },
        onLost: (reason) => {
          this.leading = false;
          this.log.warn(`beat: no longer the leader (${reason}); standing by`);
          this.wake.abort();
        },
      });
      this.lock.start();
    } else this.leading = true;
    this.loop = this.run();
  }

  /** The scheduler and the first view of the entries (Redis: the dynamic ones too). */
  private async prepare(maxInterval: number): Promise<void> {
    this.scheduler = new Scheduler({
      zone: this.zone,
      clock: this.clock,
      store: this.store!,
      log: this.log,
      maxIntervalMs: maxInterval * 1000,
      fence: () => this.lock?.fence,
      send: async (entry) => {
        // As Celery's beat: an entry's args are its list ("[1, 2]"); without args, the empty tuple ("()").
        const argsrepr = entry.args.length > 0 ? pyRepr(entry.args) : '()';
        await this.app.sendTask(entry.task, entry.args, entry.kwargs, { argsrepr, ...entry.options });
      },
    });
    this.current = await this.currentEntries();
    this.reportEntries();
  }

  /** Stop the loop, release the lock (a standby takes over at once), close connections. */
  async stop(): Promise<void> {
    if (!this.running) return;
    this.running = false;
    this.wake.abort();
    for (const w of this.leaderWaiters.splice(0)) w();
    await this.loop;
    await this.lock?.stop();
    this.leading = false;
    await this.closeConnections();
  }

  /**
   * Stop at once without releasing the leader lock, as a killed process would (the
   * lock then expires after its TTL). For failover tests and drills.
   */
  async kill(): Promise<void> {
    this.running = false;
    this.lock?.abandon();
    this.leading = false;
    this.wake.abort();
    for (const w of this.leaderWaiters.splice(0)) w();
    await this.loop;
    await this.closeConnections();
  }

  private async closeConnections(): Promise<void> {
    await this.store?.close();
    for (const client of [this.subscriber, this.redis]) if (client) await closeRedisClient(client).catch(() => undefined);
    this.subscriber = this.redis = undefined;
  }

  private async run(): Promise<void> {
    while (this.running) {
      if (!this.leading) {
        await new Promise<void>((resolve) => this.leaderWaiters.push(resolve));
        continue;
      }
      if (this.wake.signal.aborted) this.wake = new AbortController();
      let sleep: number;
      try {
        const entries = await this.currentEntries();
        await this.forgetRemoved(this.current, entries);
        this.reportChanges(this.current, entries);
        this.current = entries;
        this.reportEntries();
        sleep = await this.scheduler!.tick(this.current);
        if (this.failing) this.log.info('beat: passes over the schedule work again');
        this.failing = false;
      } catch (err) {
        if (err instanceof NotLeaderError) {
          this.leading = false;
          this.log.warn('beat: another beat holds the leader lock; standing by');
          continue;
        }
        if (!this.running) break;
        if (!this.failing) this.log.error({ err }, `beat: a pass over the schedule failed: ${(err as Error).message}; trying again every second`);
        this.failing = true;
        sleep = 1000;
      }
      if (!this.running || !this.leading) continue;
      const signal = this.wake.signal;
      if (signal.aborted) continue; // a change arrived during the pass
      this.sleepUntil = this.clock.now() + sleep;
      await this.clock.sleep(sleep, signal);
      this.sleepUntil = null;
    }
    this.sleepUntil = null;
  }

  /** Static entries, with dynamic ones (Redis) replacing those of the same name. */
  private async currentEntries(): Promise<ResolvedEntry[]> {
    if (!this.redis) return this.staticEntries;
    const dynamic = await loadDynamicEntries(this.redis, (name, err) => {
      if (this.reportedBad.get(name) === err.message) return;
      this.reportedBad.set(name, err.message);
      this.log.error(`beat: dynamic entry ${JSON.stringify(name)} is skipped: ${err.message}`);
    });
    const names = new Set(dynamic.map((e) => e.name));
    return [...this.staticEntries.filter((e) => !names.has(e.name)), ...dynamic];
  }

  /**
   * Delete the run records of entries gone since the last pass. `beat remove` deletes
   * the record with the entry, but a pass under way may still have claimed the entry's
   * next run after that, writing the record back.
   */
  private async forgetRemoved(before: readonly ResolvedEntry[], after: readonly ResolvedEntry[]): Promise<void> {
    if (!this.redis) return;
    const now = new Set(after.map((e) => e.name));
    const removed = before.filter((e) => !now.has(e.name)).map((e) => e.name);
    if (removed.length > 0) await this.redis.hdel(BEAT_KEYS.state, ...removed);
  }

  /** Log dynamic changes to the entry set (added, removed, changed). */
  private reportChanges(before: readonly ResolvedEntry[], after: readonly ResolvedEntry[]): void {
    const key = (e: ResolvedEntry) => JSON.stringify([e.task, e.schedule.toJSON(), e.args, e.kwargs, e.options, e.enabled]);
    const old = new Map(before.map((e) => [e.name, key(e)]));
    const now = new Map(after.map((e) => [e.name, key(e)]));
    const added = [...now.keys()].filter((n) => !old.has(n));
    const removed = [...old.keys()].filter((n) => !now.has(n));
    const changed = [...now.keys()].filter((n) => old.has(n) && old.get(n) !== now.get(n));
    if (added.length + removed.length + changed.length === 0) return;
    const parts = [added.length ? `added ${added.join(', ')}` : '', removed.length ? `removed ${removed.join(', ')}` : '', changed.length ? `changed ${changed.join(', ')}` : ''];
    this.log.info(`beat: schedule changed: ${parts.filter(Boolean).join('; ')}`);
  }

  /** List, once per name, the entries whose task this process does not define. */
  private reportEntries(): void {
    const missing = [...new Set(this.current.map((e) => e.task))].filter((task) => !this.app.hasTask(task) && !this.reportedUnregistered.has(task)).sort();
    if (missing.length === 0) return;
    for (const task of missing) this.reportedUnregistered.add(task);
    this.log.info(
      `beat: ${missing.length === 1 ? 'task' : 'tasks'} not registered in this process, sent by name (a worker elsewhere, e.g. Python, must define ${missing.length === 1 ? 'it' : 'them'}): ${missing.join(', ')}`,
    );
  }
}
