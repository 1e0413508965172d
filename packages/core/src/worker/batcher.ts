/**
 * Collects items and flushes them together once per event-loop turn (or when
 * `maxBatch` is reached), so N acks or N result writes cost one round trip.
 * `add` resolves when the batch containing the item was flushed.
 */
export class Batcher<T> {
  private items: T[] = [];
  private waiters: { resolve: () => void; reject: (e: unknown) => void }[] = [];
  private scheduled = false;
  private inFlight = new Set<Promise<void>>();

  constructor(
    private readonly flushBatch: (items: T[]) => Promise<void>,
    private readonly maxBatch = 256,
  ) {}

  add(item: T): Promise<void> {
    this.items.push(item);
    const done = new Promise<void>((resolve, reject) => this.waiters.push({ resolve, reject }));
    if (this.items.length >= this.maxBatch) this.flush();
    else if (!this.scheduled) {
      this.scheduled = true;
      setImmediate(() => this.flush());
    }
    return done;
  }

  /** Flush now; resolves when everything added so far is written. */
  flush(): Promise<void> {
    this.scheduled = false;
    if (this.items.length > 0) {
      const items = this.items;
      const waiters = this.waiters;
      this.items = [];
      this.waiters = [];
      const p = this.flushBatch(items).then(
        () => waiters.forEach((w) => w.resolve()),
        (err) => waiters.forEach((w) => w.reject(err)),
      );
      this.inFlight.add(p);
      void p.finally(() => this.inFlight.delete(p));
    }
    return Promise.all(this.inFlight).then(() => undefined);
  }
}
