/**
 * Finished tasks counted per time bucket (default 10 s), for the dashboard's
 * throughput and failure-rate chart: succeeded and failed per bucket, the oldest
 * forgotten past `buckets`.
 */

/** One bucket of the series. */
export interface RateBucket {
  /** Unix seconds the bucket starts at. */
  start: number;
  succeeded: number;
  failed: number;
}

/** A rolling count of finished tasks. */
export class RateSeries {
  private readonly counts = new Map<number, RateBucket>();

  constructor(
    /** Seconds per bucket. */
    readonly bucketSeconds = 10,
    /** Buckets kept (and shown). */
    readonly buckets = 60,
  ) {}

  /** Count one finished task at `at` (unix seconds). */
  add(at: number, kind: 'succeeded' | 'failed'): void {
    const start = Math.floor(at / this.bucketSeconds) * this.bucketSeconds;
    let bucket = this.counts.get(start);
    if (!bucket) {
      bucket = { start, succeeded: 0, failed: 0 };
      this.counts.set(start, bucket);
      const oldest = start - this.bucketSeconds * this.buckets;
      for (const key of this.counts.keys()) if (key <= oldest) this.counts.delete(key);
    }
    bucket[kind]++;
  }

  /** The last `buckets` buckets up to `now`, oldest first, empty ones included. */
  window(now = Date.now() / 1000): RateBucket[] {
    const last = Math.floor(now / this.bucketSeconds) * this.bucketSeconds;
    const out: RateBucket[] = [];
    for (let i = this.buckets - 1; i >= 0; i--) {
      const start = last - i * this.bucketSeconds;
      out.push(this.counts.get(start) ?? { start, succeeded: 0, failed: 0 });
    }
    return out;
  }
}
