/**
 * The Redis transport's Lua scripts, loaded from `redis-lua/<name>-<numKeys>.lua`
 * (each file starts with a header listing its KEYS and ARGV; shared code lives in
 * `redis-lua/includes/` and is pulled in by `--- @include "<name>"` lines), behind
 * a typed wrapper: `script.run(client, keys, args)` with the keys and arguments as
 * tuples and the reply parsed into a typed result.
 *
 * Scripts run with EVALSHA, falling back to EVAL (which also caches the script)
 * when the server does not know the hash yet (first use, restart, SCRIPT FLUSH).
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { moduleRoot } from '../module-root.cjs';

/** The part of an ioredis client (or pipeline) a script needs. */
export interface ScriptClient {
  evalsha(sha: string, numKeys: number, ...keysAndArgs: (string | Buffer | number)[]): Promise<unknown>;
  eval(script: string, numKeys: number, ...keysAndArgs: (string | Buffer | number)[]): Promise<unknown>;
}

const LUA_DIR = pathToFileURL(join(moduleRoot, 'brokers', 'redis-lua') + '/');

/** Source of a script file in `dir` (default: the transport's `redis-lua/`) with its `--- @include "x"` lines expanded. */
export function loadLua(file: string, dir: URL = LUA_DIR): string {
  const text = readFileSync(new URL(file, dir), 'utf8');
  return text.replace(/^--- @include "([\w-]+)"$/gm, (_, name: string) => loadLua(`includes/${name}.lua`, dir));
}

/** One Lua script: fixed KEYS tuple `K` (plus `extraKeys` when variadic), ARGV tuple `A`, parsed result `R`. */
export class RedisScript<K extends readonly string[], A extends readonly (string | Buffer | number)[], R> {
  /** Full source, includes expanded. */
  readonly lua: string;
  readonly sha: string;

  constructor(
    /** File name without `.lua`, e.g. `reserveMessages-3`. */
    readonly file: string,
    private readonly parse: (reply: unknown) => R,
    /** Folder of the file (the result backend keeps its scripts beside itself). Default: `brokers/redis-lua/`. */
    dir: URL = LUA_DIR,
  ) {
    this.lua = loadLua(`${file}.lua`, dir);
    this.sha = createHash('sha1').update(this.lua).digest('hex');
  }

  /** Run on `client`; `extraKeys` follow the fixed keys (for scripts that take lists of keys). */
  async run(client: ScriptClient, keys: K, args: A, extraKeys: readonly string[] = []): Promise<R> {
    const allKeys = extraKeys.length > 0 ? [...keys, ...extraKeys] : keys;
    try {
      return this.parse(await client.evalsha(this.sha, allKeys.length, ...allKeys, ...args));
    } catch (err) {
      if (!(err instanceof Error) || !err.message.startsWith('NOSCRIPT')) throw err;
      return this.parse(await client.eval(this.lua, allKeys.length, ...allKeys, ...args));
    }
  }

  /**
   * EVALSHA (`bySha`: the caller knows the server has the script) or EVAL with the
   * source: the command name and arguments, for a caller that writes the command
   * itself (this module stays free of ioredis: the heartbeat thread loads it).
   */
  commandArgs(keys: K, args: A, bySha: boolean, extraKeys: readonly string[] = []): ['evalsha' | 'eval', (string | Buffer | number)[]] {
    return [bySha ? 'evalsha' : 'eval', [bySha ? this.sha : this.lua, keys.length + extraKeys.length, ...keys, ...extraKeys, ...args]];
  }

  /** Parse a reply of this script (see `commandArgs`). */
  parseReply(reply: unknown): R {
    return this.parse(reply);
  }
}

/** Reply parsers. */
export const replies = {
  integer(reply: unknown): number {
    if (typeof reply !== 'number') throw new TypeError(`Expected an integer reply from a Redis script, got ${typeof reply}`);
    return reply;
  },
  array(reply: unknown): unknown[] {
    if (!Array.isArray(reply)) throw new TypeError(`Expected an array reply from a Redis script, got ${typeof reply}`);
    return reply;
  },
  strings(reply: unknown): string[] {
    if (!Array.isArray(reply)) throw new TypeError(`Expected an array reply from a Redis script, got ${typeof reply}`);
    return reply.map((item) => String(item));
  },
};

type Keys3 = readonly [unacked: string, unackedIndex: string, third: string];
type Keys4 = readonly [unacked: string, unackedIndex: string, third: string, fourth: string];

/** The transport's scripts (see each file's header for KEYS and ARGV). */
export const scripts = {
  /** Returns flat quintuples: envelope, tag, source index (1-based into the ready lists), lease, redeliveries. */
  reserveMessages: new RedisScript<Keys3, readonly (string | number)[], string[]>('reserveMessages-3', replies.strings),
  /** Returns the tags another holder has now (left alone). */
  ackMessages: new RedisScript<Keys3, readonly string[], string[]>('ackMessages-3', replies.strings),
  /** Returns the tags this consumer no longer holds (left alone). */
  restoreTags: new RedisScript<Keys3, readonly string[], string[]>('restoreTags-3', replies.strings),
  /** Returns how many messages of one reserve (by lease prefix) were given back. */
  restoreLease: new RedisScript<Keys3, readonly [leasePrefix: string, queue: string], number>('restoreLease-3', replies.integer),
  deferMessage: new RedisScript<Keys4, readonly [tag: string, lease: string, delayMs: number], number>('deferMessage-4', replies.integer),
  heartbeatConsumer: new RedisScript<Keys4, readonly [consumerId: string, ttlMs: number], number>('heartbeatConsumer-4', replies.integer),
  promoteDeferred: new RedisScript<Keys3, readonly number[], number>('promoteDeferred-3', replies.integer),
  restoreDeadConsumers: new RedisScript<Keys3, readonly [consumerId: string, retentionMs: number, batch: number], number>('restoreDeadConsumers-3', replies.integer),
  retireConsumer: new RedisScript<Keys3, readonly [consumerId: string], number>('retireConsumer-3', replies.integer),
  /** Returns how many redelivery counts were deleted. */
  sweepRedeliveries: new RedisScript<Keys3, readonly [ageMs: number, batch: number], number>('sweepRedeliveries-3', replies.integer),
  restoreVisible: new RedisScript<Keys3, readonly [lockToken: string, visibilitySeconds: number, batch: number], number>('restoreVisible-3', replies.integer),
  /** Run by the heartbeat thread over its own socket (raw EVAL of `.lua`); returns a status "<restored> <dropped> <requeued>". */
  releaseHungConsumer: new RedisScript<Keys3, readonly string[], string>('releaseHungConsumer-3', (reply) => String(reply)),
};
