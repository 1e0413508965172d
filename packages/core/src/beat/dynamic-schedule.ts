/**
 * The dynamic schedule (RedBeat-like): entries kept in the broker's Redis
 * (`_celeriac.beat.entries`), added, updated, disabled and removed at run time —
 * from code (`app.beat.dynamic`) or `celeriac beat add | remove | list` — and
 * picked up by running beats at once (a PUBLISH on `_celeriac.beat.changed` wakes
 * them). A dynamic entry with the name of a configured one replaces it while it exists.
 */
import type { Redis } from 'ioredis';
import { ConfigurationError } from '../errors.js';
import { resolveEntry, scheduleFromJSON, type BeatEntry, type ResolvedEntry, type StoredEntry } from './entry.js';
import { BEAT_KEYS } from './redis-beat-keys.js';
import { decodeLastRun, type LastRun } from './state-store.js';

/** One dynamic entry as listed. */
export interface DynamicEntryInfo {
  name: string;
  entry: StoredEntry;
  /** Its run record, when it ran or was seen by a beat. */
  lastRun: LastRun | null;
}

/** Changes to a dynamic entry (`update`). */
export type BeatEntryPatch = Partial<BeatEntry>;

/** Entries in Redis. The client is given by the caller (`app.beat.dynamic` opens one). */
export class DynamicSchedule {
  constructor(private readonly client: () => Promise<Redis>) {}

  /** Add or replace `name` (checked first: a bad entry throws naming it). */
  async add(name: string, entry: BeatEntry): Promise<StoredEntry> {
    const stored = toStored(resolveEntry(name, entry, 'redis'));
    await this.write(name, stored);
    return stored;
  }

  /** Change fields of an existing entry; throws when there is none of that name. */
  async update(name: string, patch: BeatEntryPatch): Promise<StoredEntry> {
    const current = await this.get(name);
    if (!current) throw new ConfigurationError(`No dynamic beat entry ${JSON.stringify(name)} to update: add it first (celeriac beat add, or app.beat.dynamic.add()).`);
    const merged: BeatEntry = { ...current, schedule: scheduleFromJSON(current.schedule), ...patch };
    return this.add(name, merged);
  }

  /** Keep the entry but stop sending it. */
  disable(name: string): Promise<StoredEntry> {
    return this.update(name, { enabled: false });
  }

  /** Send it again. */
  enable(name: string): Promise<StoredEntry> {
    return this.update(name, { enabled: true });
  }

  /** Remove `name` and its run record; true when it existed. */
  async remove(name: string): Promise<boolean> {
    const redis = await this.client();
    const replies = await redis.multi().hdel(BEAT_KEYS.entries, name).hdel(BEAT_KEYS.state, name).publish(BEAT_KEYS.changed, name).exec();
    return Number(replies?.[0]?.[1] ?? 0) > 0;
  }

  /** One entry, or null. */
  async get(name: string): Promise<StoredEntry | null> {
    const redis = await this.client();
    const text = await redis.hget(BEAT_KEYS.entries, name);
    return text ? (JSON.parse(text) as StoredEntry) : null;
  }

  /** Every dynamic entry with its last run, sorted by name. */
  async list(): Promise<DynamicEntryInfo[]> {
    const redis = await this.client();
    const [entries, state] = await Promise.all([redis.hgetall(BEAT_KEYS.entries), redis.hgetall(BEAT_KEYS.state)]);
    return Object.keys(entries)
      .sort()
      .map((name) => ({ name, entry: JSON.parse(entries[name]!) as StoredEntry, lastRun: decodeLastRun(state[name]) }));
  }

  private async write(name: string, stored: StoredEntry): Promise<void> {
    const redis = await this.client();
    await redis.multi().hset(BEAT_KEYS.entries, name, JSON.stringify(stored)).publish(BEAT_KEYS.changed, name).exec();
  }
}

/** The stored form of a checked entry. */
export function toStored(entry: ResolvedEntry): StoredEntry {
  return { task: entry.task, schedule: entry.schedule.toJSON(), args: entry.args, kwargs: entry.kwargs, options: entry.options, enabled: entry.enabled };
}

/** Read the dynamic entries; each bad one is passed to `onBad` and skipped. */
export async function loadDynamicEntries(redis: Redis, onBad: (name: string, err: Error) => void): Promise<ResolvedEntry[]> {
  const raw = await redis.hgetall(BEAT_KEYS.entries);
  const out: ResolvedEntry[] = [];
  for (const [name, text] of Object.entries(raw)) {
    try {
      const stored = JSON.parse(text) as StoredEntry;
      out.push(resolveEntry(name, { ...stored, schedule: scheduleFromJSON(stored.schedule) }, 'redis'));
    } catch (err) {
      onBad(name, err as Error);
    }
  }
  return out;
}
