/**
 * A Lua script whose command is written to the socket now, past ioredis's
 * auto-pipelining (which holds every command until `setImmediate`, one full turn of
 * the event loop later). For the one command per batch that tasks wait on: the
 * reserve that fetches them and the write of their results. On an idle worker each
 * deferral is a visible share of the round trip from `delay()` to `get()`.
 */
import { Command, type Redis } from 'ioredis';
import type { RedisScript } from './redis-scripts.js';

/**
 * `script.run(redis, keys, args, extraKeys)`, written at once. Takes the pipelined
 * path when commands already wait for the auto-pipeline (issued first, they must
 * reach the server first: a result write must not overtake an earlier state update
 * of the same task) or when the client is not connected (ioredis queues either way),
 * and on NOSCRIPT (EVAL with the source, which also caches it).
 */
export async function runScriptNow<K extends readonly string[], A extends readonly (string | Buffer | number)[], R>(
  redis: Redis,
  script: RedisScript<K, A, R>,
  keys: K,
  args: A,
  extraKeys: readonly string[] = [],
): Promise<R> {
  if (redis.status !== 'ready' || redis.autoPipelineQueueSize > 0) return script.run(redis, keys, args, extraKeys);
  const [name, commandArgs] = script.commandArgs(keys, args, true, extraKeys);
  const command = new Command(name, commandArgs, { replyEncoding: 'utf8' });
  let reply: unknown;
  try {
    reply = await redis.sendCommand(command);
  } catch (err) {
    if (!(err instanceof Error) || !err.message.startsWith('NOSCRIPT')) throw err;
    return script.run(redis, keys, args, extraKeys);
  }
  return script.parseReply(reply);
}
