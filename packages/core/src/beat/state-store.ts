/**
 * Where beat keeps each entry's last run, so a restart neither re-fires what ran
 * nor forgets what was due: a JSON file by default (file-state-store.ts), Redis
 * when the broker is Redis (redis-state-store.ts, shared by every beat on it).
 */

/** An entry's run record. */
export interface LastRun {
  /** Unix ms of the last run (or, before the first run, of when the entry was first seen). */
  lastRunAt: number;
  /** Runs so far. */
  totalRunCount: number;
}

/** Result of `claim`. */
export type ClaimOutcome = 'claimed' | 'taken' | 'not-leader';

/** Last-run storage. */
export interface BeatStateStore {
  /** For the start-up banner: `file /path/to/celeriac-beat-schedule.json`, `redis redis://…/0`. */
  readonly description: string;
  /** Every stored record. */
  load(): Promise<Map<string, LastRun>>;
  /** Store `record` for `name` unless one exists; returns the one in force. */
  init(name: string, record: LastRun): Promise<LastRun>;
  /**
   * Record a run of `name` if its stored record still equals `previous` (no other
   * beat ran it meanwhile) and, when `fence` is given, this beat still holds the
   * leader lock: `claimed`, else `taken` or `not-leader`.
   */
  claim(name: string, previous: LastRun, next: LastRun, fence?: LeaderFence): Promise<ClaimOutcome>;
  /** Put `previous` back if the record is still `claimed` (the send failed: try again next tick). */
  unclaim(name: string, claimed: LastRun, previous: LastRun): Promise<void>;
  close(): Promise<void>;
}

/** The lock a claim is conditional on. */
export interface LeaderFence {
  key: string;
  owner: string;
}

/** JSON form of a record (stable key order, so compare-and-set can compare strings). */
export function encodeLastRun(r: LastRun): string {
  return JSON.stringify({ lastRunAt: r.lastRunAt, totalRunCount: r.totalRunCount });
}

/** A record from its JSON form; null when unreadable. */
export function decodeLastRun(text: string | null | undefined): LastRun | null {
  if (!text) return null;
  try {
    const v = JSON.parse(text) as Partial<LastRun>;
    if (typeof v.lastRunAt === 'number' && Number.isFinite(v.lastRunAt)) return { lastRunAt: v.lastRunAt, totalRunCount: typeof v.totalRunCount === 'number' ? v.totalRunCount : 0 };
  } catch {
    // fall through
  }
  return null;
}
