/**
 * Per-task rate limits on one worker, as Celery's: a token bucket per task name
 * (capacity 1, refilled at the rate) — `'10/s'`, `'100/m'`, `'1000/h'`, or a bare
 * number per second. A message over the limit waits here (reserved, never dropped)
 * and is released when a token is there; other tasks keep flowing. Limits can be
 * changed while the worker runs (`Worker.setRateLimit`, remote control).
 */
import { ConfigurationError } from '../errors.js';

/** A rate as Celery writes it: `'10/s'`, `'100/m'`, `'1000/h'`, `'5'` (per second), or a number per second. */
export type RateLimit = string | number;

const PER: Record<string, number> = { s: 1, m: 60, h: 3600 };

/** Tokens per second for a rate, or null for "no limit" (null, 0, '', '0'). Throws on anything else. */
export function parseRate(rate: RateLimit | null | undefined, where = 'rateLimit'): number | null {
  if (rate === null || rate === undefined || rate === '' || rate === 0) return null;
  if (typeof rate === 'number') {
    if (Number.isFinite(rate) && rate > 0) return rate;
  } else {
    const m = /^\s*(\d+(?:\.\d+)?)\s*(?:\/\s*([smh]))?\s*$/.exec(rate);
    if (m) {
      const n = Number(m[1]);
      return n === 0 ? null : n / PER[m[2] ?? 's']!;
    }
  }
  throw new ConfigurationError(`${where} must be a rate such as '10/s', '100/m' or '1000/h' (or a number per second; null for none), got ${JSON.stringify(rate)}.`);
}

interface Bucket {
  /** Tokens per second. */
  rate: number;
  tokens: number;
  filledAt: number;
  waiting: (() => void)[];
  timer?: NodeJS.Timeout;
}

/** The token buckets of one worker. */
export class RateLimiter {
  private readonly buckets = new Map<string, Bucket>();
  /** Limits set at run time, over the task's own (null = none). */
  private readonly overrides = new Map<string, number | null>();
  private waitingCount = 0;

  /** @param limitOf the configured rate of a task (its `rateLimit`, else the app's default). */
  constructor(private readonly limitOf: (taskName: string) => RateLimit | null | undefined) {}

  /** Messages waiting for a token. */
  get waiting(): number {
    return this.waitingCount;
  }

  /** Change a task's limit now (null: no limit); messages already waiting follow the new rate. */
  set(taskName: string, rate: RateLimit | null): void {
    const perSecond = parseRate(rate, `The rate limit of ${taskName}`);
    this.overrides.set(taskName, perSecond);
    const bucket = this.buckets.get(taskName);
    if (!bucket) return;
    if (perSecond === null) {
      this.buckets.delete(taskName);
      clearTimeout(bucket.timer);
      const released = bucket.waiting.splice(0);
      this.waitingCount -= released.length;
      released.forEach((run) => run());
      return;
    }
    this.refill(bucket);
    bucket.rate = perSecond;
    this.schedule(bucket);
  }

  /** The rate in force for a task (tokens per second), or null. */
  rateOf(taskName: string): number | null {
    return this.overrides.has(taskName) ? this.overrides.get(taskName)! : parseRate(this.limitOf(taskName), `The rateLimit of task ${taskName}`);
  }

  /**
   * Run `run` now (returns true without calling it) if the task has no limit or a
   * token is there; otherwise keep it and call it when a token is (returns false).
   */
  admit(taskName: string, run: () => void): boolean {
    const rate = this.rateOf(taskName);
    if (rate === null) return true;
    let bucket = this.buckets.get(taskName);
    if (!bucket) this.buckets.set(taskName, (bucket = { rate, tokens: 1, filledAt: Date.now(), waiting: [] }));
    bucket.rate = rate;
    this.refill(bucket);
    if (bucket.waiting.length === 0 && bucket.tokens >= 1) {
      bucket.tokens -= 1;
      return true;
    }
    bucket.waiting.push(run);
    this.waitingCount++;
    this.schedule(bucket);
    return false;
  }

  /** Forget every waiting message (shutdown, or a hang released them): they stay unsettled and are given back. */
  clear(): void {
    for (const bucket of this.buckets.values()) {
      clearTimeout(bucket.timer);
      bucket.waiting.length = 0;
    }
    this.waitingCount = 0;
  }

  private refill(bucket: Bucket): void {
    const now = Date.now();
    bucket.tokens = Math.min(1, bucket.tokens + ((now - bucket.filledAt) / 1000) * bucket.rate);
    bucket.filledAt = now;
  }

  private schedule(bucket: Bucket): void {
    clearTimeout(bucket.timer);
    if (bucket.waiting.length === 0) return;
    const ms = Math.max(0, Math.ceil(((1 - bucket.tokens) / bucket.rate) * 1000));
    bucket.timer = setTimeout(() => {
      this.refill(bucket);
      while (bucket.waiting.length > 0 && bucket.tokens >= 1 - 1e-9) {
        bucket.tokens = Math.max(0, bucket.tokens - 1);
        this.waitingCount--;
        bucket.waiting.shift()!();
      }
      this.schedule(bucket);
    }, ms);
  }
}
