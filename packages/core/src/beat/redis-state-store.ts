/**
 * Last runs in Redis (`_celeriac.beat.state`), shared by every beat on the broker:
 * a run is recorded by a compare-and-set script that also checks the leader lock,
 * so two beats — even two that both believe they lead — never both send one due run.
 */
import type { Redis } from 'ioredis';
import { BEAT_KEYS, beatScripts } from './redis-beat-keys.js';
import { decodeLastRun, encodeLastRun, type BeatStateStore, type ClaimOutcome, type LastRun, type LeaderFence } from './state-store.js';

/** Redis-backed `BeatStateStore` (the client is the caller's; `close` leaves it open). */
export class RedisStateStore implements BeatStateStore {
  readonly description: string;

  constructor(
    private readonly client: Redis,
    displayUrl: string,
  ) {
    this.description = `redis ${displayUrl} (${BEAT_KEYS.state})`;
  }

  async load(): Promise<Map<string, LastRun>> {
    const raw = await this.client.hgetall(BEAT_KEYS.state);
    const out = new Map<string, LastRun>();
    for (const [name, text] of Object.entries(raw)) {
      const record = decodeLastRun(text);
      if (record) out.set(name, record);
    }
    return out;
  }

  async init(name: string, record: LastRun): Promise<LastRun> {
    const replies = await this.client.multi().hsetnx(BEAT_KEYS.state, name, encodeLastRun(record)).hget(BEAT_KEYS.state, name).exec();
    return decodeLastRun(replies?.[1]?.[1] as string | null) ?? record;
  }

  async claim(name: string, previous: LastRun, next: LastRun, fence?: LeaderFence): Promise<ClaimOutcome> {
    const lockKey = fence?.key ?? BEAT_KEYS.lock;
    const outcome = await beatScripts.claimRun.run(this.client, [BEAT_KEYS.state, lockKey], [name, previous.lastRunAt, previous.totalRunCount, encodeLastRun(next), fence?.owner ?? '']);
    return outcome === 1 ? 'claimed' : outcome === 0 ? 'taken' : 'not-leader';
  }

  async unclaim(name: string, claimed: LastRun, previous: LastRun): Promise<void> {
    await beatScripts.unclaimRun.run(this.client, [BEAT_KEYS.state], [name, encodeLastRun(claimed), encodeLastRun(previous)]);
  }

  async close(): Promise<void> {}
}
