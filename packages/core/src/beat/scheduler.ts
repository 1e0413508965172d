/**
 * One pass of beat over its entries (Celery's `Scheduler.tick`): send every entry
 * that is due, record its run, and say how long to sleep until the next one is due.
 *
 * Catch-up policy (Celery's): an entry whose due time passed while no beat ran is
 * sent once when beat is back — not once per missed slot — and its next run is
 * then counted from that catch-up run. A run is recorded before it is sent, by a
 * compare-and-set that fails if another beat recorded it first (and, on Redis,
 * if this beat no longer holds the leader lock); a send that fails is un-recorded
 * and tried again on the next pass, so a broker outage delays a run, never drops it.
 */
import type { Logger } from '../logger.js';
import type { BeatClock } from './clock.js';
import type { ResolvedEntry } from './entry.js';
import { isDue } from './schedule.js';
import type { BeatStateStore, LastRun, LeaderFence } from './state-store.js';

/** What the scheduler needs. */
export interface SchedulerOptions {
  zone: string;
  clock: BeatClock;
  store: BeatStateStore;
  /** Send one entry's task (the app's `sendTask`). */
  send(entry: ResolvedEntry): Promise<void>;
  log: Logger;
  /** The longest sleep, ms (`beatMaxLoopInterval`). */
  maxIntervalMs: number;
  /** The lock claims must check, when beats share Redis. */
  fence?: () => LeaderFence | undefined;
}

/** Thrown by `tick` when a claim found that this beat no longer leads. */
export class NotLeaderError extends Error {
  override name = 'NotLeaderError';
}

/** Ms before a failed send is tried again. */
const SEND_RETRY_MS = 5_000;

/** Celery's scheduler pass, over a state store. */
export class Scheduler {
  /** Entries sent so far by this scheduler (for tests and logs). */
  sent = 0;

  constructor(private readonly options: SchedulerOptions) {}

  /** Send what is due now; returns the ms to sleep before the next pass. */
  async tick(entries: readonly ResolvedEntry[]): Promise<number> {
    const { clock, store, zone, log } = this.options;
    const now = clock.now();
    const state = await store.load();
    let sleep = this.options.maxIntervalMs;
    for (const entry of entries) {
      if (!entry.enabled) continue;
      const last: LastRun = state.get(entry.name) ?? (await store.init(entry.name, { lastRunAt: now, totalRunCount: 0 }));
      const check = isDue(entry.schedule, last.lastRunAt, now, zone);
      if (check.due) {
        const next: LastRun = { lastRunAt: now, totalRunCount: last.totalRunCount + 1 };
        const outcome = await store.claim(entry.name, last, next, this.options.fence?.());
        if (outcome === 'not-leader') throw new NotLeaderError('another beat holds the leader lock');
        if (outcome === 'claimed') {
          log.info({ entry: entry.name, task: entry.task }, `Scheduler: Sending due task ${entry.name} (${entry.task})`);
          try {
            await this.options.send(entry);
            this.sent++;
          } catch (err) {
            await store.unclaim(entry.name, next, last).catch(() => undefined);
            log.error({ err, entry: entry.name }, `Scheduler: could not send ${entry.name} (${entry.task}): ${(err as Error).message}; trying again in ${SEND_RETRY_MS / 1000} s`);
            sleep = Math.min(sleep, SEND_RETRY_MS);
            continue;
          }
        } else log.debug({ entry: entry.name }, `Scheduler: ${entry.name} was already sent by another beat`);
      }
      if (check.nextCheckMs !== null) sleep = Math.min(sleep, check.nextCheckMs);
    }
    return Math.max(0, sleep);
  }
}
