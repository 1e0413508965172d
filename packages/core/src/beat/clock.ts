/**
 * Beat's clock, injectable: the system clock in production, `ManualClock` in tests
 * (and anywhere a simulated day must pass in milliseconds). Only the schedule runs
 * on it; the leader lock's renewals use real timers, because Redis expires the
 * lock in real time.
 */

/** What beat needs from a clock. */
export interface BeatClock {
  /** Unix milliseconds. */
  now(): number;
  /** Resolve after `ms` (or at once when `signal` aborts). */
  sleep(ms: number, signal?: AbortSignal): Promise<void>;
}

/** The real clock. */
export const systemClock: BeatClock = {
  now: () => Date.now(),
  sleep: (ms, signal) =>
    new Promise<void>((resolve) => {
      if (signal?.aborted) return resolve();
      const timer = setTimeout(done, Math.max(0, Math.min(ms, 2_147_000_000)));
      function done() {
        clearTimeout(timer);
        signal?.removeEventListener('abort', done);
        resolve();
      }
      signal?.addEventListener('abort', done, { once: true });
    }),
};

/** A clock that moves only when told to: `advance(ms)` wakes every sleeper whose time has come. */
export class ManualClock implements BeatClock {
  private current: number;
  private readonly sleepers = new Set<{ until: number; wake: () => void }>();

  constructor(start: number | Date) {
    this.current = typeof start === 'number' ? start : start.getTime();
  }

  now(): number {
    return this.current;
  }

  sleep(ms: number, signal?: AbortSignal): Promise<void> {
    return new Promise<void>((resolve) => {
      if (signal?.aborted) return resolve();
      const sleeper = {
        until: this.current + Math.max(0, ms),
        wake: () => {
          this.sleepers.delete(sleeper);
          signal?.removeEventListener('abort', sleeper.wake);
          resolve();
        },
      };
      if (sleeper.until <= this.current) return resolve();
      this.sleepers.add(sleeper);
      signal?.addEventListener('abort', sleeper.wake, { once: true });
    });
  }

  /** Move time forward by `ms`, waking the sleepers now due. */
  advance(ms: number): void {
    this.set(this.current + ms);
  }

  /** Move time to `instant` (never backwards), waking the sleepers now due. */
  set(instant: number | Date): void {
    const t = typeof instant === 'number' ? instant : instant.getTime();
    if (t < this.current) throw new RangeError(`ManualClock cannot go back in time (from ${new Date(this.current).toISOString()} to ${new Date(t).toISOString()}).`);
    this.current = t;
    for (const sleeper of [...this.sleepers]) if (sleeper.until <= t) sleeper.wake();
  }

  /** How many sleeps are waiting. */
  get sleeping(): number {
    return this.sleepers.size;
  }
}
