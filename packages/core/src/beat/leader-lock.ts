/**
 * One beat leads per broker: a Redis lock taken with `SET key owner NX PX ttl`,
 * renewed every third of the TTL by a compare-and-renew script (only the owner can
 * extend it), released by a compare-and-delete on a clean stop. A standby asks for
 * the lock again as soon as the current one expires (it reads `PTTL`), so it takes
 * over within the TTL of the leader's last renewal when the leader dies. Runs on
 * real timers whatever clock the schedule uses: Redis expires the lock in real time.
 */
import { randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import type { Redis } from 'ioredis';
import { BEAT_KEYS, beatScripts } from './redis-beat-keys.js';
import type { LeaderFence } from './state-store.js';

/** Callbacks of `LeaderLock`. */
export interface LeaderLockEvents {
  /** This beat now holds the lock. */
  onAcquired(): void;
  /** This beat lost the lock (a renewal found it gone or someone else's, or Redis stayed away past the TTL). */
  onLost(reason: string): void;
}

/** The leader lock of one beat. */
export class LeaderLock {
  /** This beat's owner id: `<host>:<pid>:<uuid>`. */
  readonly owner = `${hostname()}:${process.pid}:${randomUUID()}`;
  readonly key: string;
  private held = false;
  private timer: NodeJS.Timeout | undefined;
  private stopped = false;
  private lastRenewal = 0;

  constructor(
    private readonly client: Redis,
    /** Lock time to live in ms. */
    readonly ttlMs: number,
    private readonly events: LeaderLockEvents,
    key: string = BEAT_KEYS.lock,
  ) {
    this.key = key;
  }

  /** Whether this beat holds the lock (as of the last renewal). */
  get isLeader(): boolean {
    return this.held;
  }

  /** What a claim must check: this lock, this owner. */
  get fence(): LeaderFence {
    return { key: this.key, owner: this.owner };
  }

  /** Start trying for the lock (and renewing it once held). */
  start(): void {
    this.stopped = false;
    void this.step();
  }

  /** Stop; release the lock when held (a standby takes over at once). */
  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    if (this.held) {
      this.held = false;
      await beatScripts.releaseLock.run(this.client, [this.key], [this.owner]).catch(() => undefined);
    }
  }

  /** Stop without releasing (as a killed process would): the lock expires after its TTL. */
  abandon(): void {
    this.stopped = true;
    this.held = false;
    clearTimeout(this.timer);
  }

  private schedule(ms: number): void {
    if (this.stopped) return;
    clearTimeout(this.timer);
    this.timer = setTimeout(() => void this.step(), Math.max(1, ms));
  }

  private async step(): Promise<void> {
    if (this.stopped) return;
    const renewEvery = Math.max(10, Math.floor(this.ttlMs / 3));
    try {
      if (this.held) {
        const renewed = await beatScripts.renewLock.run(this.client, [this.key], [this.owner, this.ttlMs]);
        if (this.stopped) return;
        if (renewed === 1) {
          this.lastRenewal = Date.now();
          return this.schedule(renewEvery);
        }
        this.held = false;
        this.events.onLost('the lock expired or another beat holds it');
        return this.schedule(0);
      }
      const taken = await this.client.set(this.key, this.owner, 'PX', this.ttlMs, 'NX');
      if (this.stopped) {
        if (taken === 'OK') await beatScripts.releaseLock.run(this.client, [this.key], [this.owner]).catch(() => undefined);
        return;
      }
      if (taken === 'OK') {
        this.held = true;
        this.lastRenewal = Date.now();
        this.events.onAcquired();
        return this.schedule(renewEvery);
      }
      // Someone else leads: ask again right after their lock would expire.
      // (-2: gone already, try again at once; -1: a lock without expiry, set by hand — keep asking at the renewal pace.)
      const pttl = await this.client.pttl(this.key);
      this.schedule(pttl === -2 ? 5 : pttl > 0 ? Math.min(pttl + 5, renewEvery) : renewEvery);
    } catch (err) {
      // Redis away: a leader that cannot renew within its TTL must assume another took over.
      if (this.held && Date.now() - this.lastRenewal >= this.ttlMs) {
        this.held = false;
        this.events.onLost(`Redis unreachable for longer than the lock TTL (${(err as Error).message})`);
      }
      this.schedule(Math.min(renewEvery, 1000));
    }
  }
}
