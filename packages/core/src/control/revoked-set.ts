/**
 * The ids of revoked tasks a worker remembers, as Celery's `worker_state.revoked`: a
 * `LimitedSet` of at most 50,000 ids, each forgotten 3 hours (10,800 s) after it was
 * revoked (Celery's REVOKES_MAX / REVOKE_EXPIRES).
 */
export const REVOKES_MAX = 50_000;
export const REVOKE_EXPIRES_SECONDS = 10_800;

/** Revoked task ids with the unix time (seconds, float) each was revoked. */
export class RevokedSet {
  /** Insertion order is revocation order: the oldest entry is first. */
  private readonly data = new Map<string, number>();
  /** Called after an id is added (the `--statedb` file follows the set). */
  onChange: (() => void) | undefined;

  constructor(
    private readonly maxLength = REVOKES_MAX,
    private readonly expiresSeconds = REVOKE_EXPIRES_SECONDS,
  ) {}

  /** Remember `id` as revoked at `at` (unix seconds; default now). */
  add(id: string, at = Date.now() / 1000): void {
    this.data.delete(id);
    this.data.set(id, at);
    while (this.data.size > this.maxLength) this.data.delete(this.data.keys().next().value as string);
    this.onChange?.();
  }

  has(id: string): boolean {
    const at = this.data.get(id);
    if (at === undefined) return false;
    if (at + this.expiresSeconds < Date.now() / 1000) {
      this.data.delete(id);
      return false;
    }
    return true;
  }

  /** Forget expired entries. */
  purge(now = Date.now() / 1000): void {
    for (const [id, at] of this.data) {
      if (at + this.expiresSeconds >= now) break;
      this.data.delete(id);
    }
  }

  /**
   * Merge what a peer sent: Celery's `hello` reply maps id → `[time, id]` (its
   * LimitedSet's `_data`), a `revoked` dict maps id → time; a list holds ids.
   */
  update(other: unknown): void {
    if (Array.isArray(other)) {
      for (const id of other) if (typeof id === 'string') this.add(id);
      return;
    }
    if (typeof other !== 'object' || other === null) return;
    for (const [id, value] of Object.entries(other)) {
      const at = Array.isArray(value) ? value[0] : value;
      if (typeof at === 'number' && Number.isFinite(at)) this.add(id, at);
    }
  }

  /** Ids, oldest first (`inspect revoked`). */
  ids(): string[] {
    this.purge();
    return [...this.data.keys()];
  }

  /** `[id, unix seconds revoked]`, oldest first (the `--statedb` file). */
  entries(): [string, number][] {
    this.purge();
    return [...this.data];
  }

  /** Celery's `_data` form for a `hello` reply: id → `[time, id]`. */
  toHelloData(): Record<string, [number, string]> {
    this.purge();
    const out: Record<string, [number, string]> = {};
    for (const [id, at] of this.data) out[id] = [at, id];
    return out;
  }

  get size(): number {
    return this.data.size;
  }
}
