/**
 * Beat's keys in the broker's Redis database, and its Lua scripts (one `.lua` file
 * each in `redis-lua/`, run through the transport's typed `RedisScript` wrapper).
 * Python Celery ignores these keys.
 *
 * - `_celeriac.beat.lock` — string: the leader's owner id, `SET NX PX`, renewed by
 *   `renewLock`; whoever holds it sends the periodic tasks.
 * - `_celeriac.beat.state` — hash: entry name → `{"lastRunAt": ms, "totalRunCount": n}`.
 * - `_celeriac.beat.entries` — hash: entry name → the dynamic entry's JSON (`StoredEntry`).
 * - `_celeriac.beat.changed` — pub/sub channel: a dynamic entry changed; beats reload at once.
 */
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { RedisScript, replies } from '../brokers/redis-scripts.js';
import { moduleRoot } from '../module-root.cjs';

/** Key names. */
export const BEAT_KEYS = {
  lock: '_celeriac.beat.lock',
  state: '_celeriac.beat.state',
  entries: '_celeriac.beat.entries',
  changed: '_celeriac.beat.changed',
} as const;

const LUA_DIR = pathToFileURL(join(moduleRoot, 'beat', 'redis-lua') + '/');

/** Beat's scripts (see each file's header for KEYS and ARGV). */
export const beatScripts = {
  /** 1 claimed, 0 taken by another beat, -1 not the leader. */
  claimRun: new RedisScript<readonly [state: string, lock: string], readonly [name: string, previousLastRunAt: number, previousCount: number, next: string, owner: string], number>('claimRun-2', replies.integer, LUA_DIR),
  /** 1 put back, 0 changed meanwhile. */
  unclaimRun: new RedisScript<readonly [state: string], readonly [name: string, claimed: string, previous: string], number>('unclaimRun-1', replies.integer, LUA_DIR),
  /** 1 renewed, 0 not ours. */
  renewLock: new RedisScript<readonly [lock: string], readonly [owner: string, ttlMs: number], number>('renewLock-1', replies.integer, LUA_DIR),
  /** 1 released, 0 not ours. */
  releaseLock: new RedisScript<readonly [lock: string], readonly [owner: string], number>('releaseLock-1', replies.integer, LUA_DIR),
};
