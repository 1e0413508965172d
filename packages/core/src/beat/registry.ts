/**
 * `app.beat`: the periodic tasks declared in code (`add`), beside the
 * `beatSchedule` setting, and the dynamic schedule in Redis (`dynamic`).
 */
import type { Redis } from 'ioredis';
import type { Celeriac } from '../app.js';
import { ConfigurationError } from '../errors.js';
import { closeRedisClient, createRedisClient, whenRedisReady } from '../redis-client.js';
import { beatRedis } from './beat-redis.js';
import { DynamicSchedule } from './dynamic-schedule.js';
import { resolveEntry, type BeatEntry, type ResolvedEntry } from './entry.js';

/** The app's periodic tasks. */
export class BeatRegistry {
  private readonly added = new Map<string, BeatEntry>();
  private redis: Promise<Redis> | undefined;
  private dynamicSchedule: DynamicSchedule | undefined;

  constructor(private readonly app: Celeriac) {}

  /**
   * Declare a periodic task in code (checked now: a bad schedule throws naming the
   * entry). `app.beat.add('cleanup', { task: 'tasks.cleanup', schedule: crontab({ minute: 0, hour: 4 }) })`.
   */
  add(name: string, entry: BeatEntry): this {
    if (this.added.has(name)) throw new ConfigurationError(`beat entry ${JSON.stringify(name)} is already added; entry names must be unique.`);
    resolveEntry(name, entry, 'code');
    this.added.set(name, entry);
    return this;
  }

  /** Remove an entry added with `add`; true when it existed. */
  delete(name: string): boolean {
    return this.added.delete(name);
  }

  /**
   * Every static entry (the `beatSchedule` setting, then `add()`), checked. Throws
   * `ConfigurationError` naming the first bad entry, or a name declared twice.
   */
  staticEntries(): ResolvedEntry[] {
    const out: ResolvedEntry[] = [];
    const config = this.app.settings.beatSchedule ?? {};
    for (const [name, entry] of Object.entries(config)) out.push(resolveEntry(name, entry, 'config'));
    for (const [name, entry] of this.added) {
      if (name in config) throw new ConfigurationError(`beat entry ${JSON.stringify(name)} is declared both in beatSchedule and with app.beat.add(): keep one, or rename one.`);
      out.push(resolveEntry(name, entry, 'code'));
    }
    return out;
  }

  /** The dynamic schedule in the broker's Redis (needs a `redis://` broker). */
  get dynamic(): DynamicSchedule {
    return (this.dynamicSchedule ??= new DynamicSchedule(() => this.client()));
  }

  private client(): Promise<Redis> {
    const coordination = beatRedis(this.app.settings);
    if (!coordination) {
      const scheme = this.app.settings.brokerUrl.split(':')[0];
      return Promise.reject(
        new ConfigurationError(`The dynamic beat schedule lives in Redis, but neither the broker (${scheme}://) nor the result backend is Redis: set brokerUrl (or resultBackend) to redis://host:6379/0 to use it.`),
      );
    }
    return (this.redis ??= (async () => {
      const client = createRedisClient(coordination.connection, { redis: { maxRetriesPerRequest: 1 }, events: this.app.connectionEvents(coordination.role) });
      await whenRedisReady(client, this.app.settings.brokerConnectionTimeout * 1000);
      return client;
    })());
  }

  /** Close the dynamic schedule's connection (called by `app.close()`). */
  async close(): Promise<void> {
    const opened = this.redis;
    this.redis = undefined;
    if (opened) await closeRedisClient(await opened).catch(() => undefined);
  }
}
