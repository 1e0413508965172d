/**
 * Runs in the heartbeat thread: store FAILURE (WorkerLostError, as Celery stores
 * for a lost worker) for the started tasks a released hang settled. The event
 * loop, which owns the result backend's ioredis client, is what hung, so the
 * thread writes over one raw socket of its own, with the backend's `storeResult`
 * script (a SUCCESS already stored is kept).
 */
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import type { ThreadResultTarget } from '../backends/backend.js';
import { RedisScript, replies } from '../brokers/redis-scripts.js';
import { moduleRoot } from '../module-root.cjs';
import { dumpsPython } from '../protocol/python-json.js';
import { connectRedisSocket, encodeCommand, handshakeCommands } from '../redis-probe.js';
import { States } from '../states.js';
import type { LostTask } from './loop-watch.js';
import { resultDocument } from './result-document.js';

const storeResult = new RedisScript<readonly [key: string], readonly [json: string, ttlSeconds: number], number>(
  'storeResult-1',
  replies.integer,
  pathToFileURL(join(moduleRoot, 'backends', 'redis-lua') + '/'),
);

/**
 * Write one FAILURE document per task; resolves with how many kept an earlier
 * SUCCESS. Rejects on a connection or server error, or after `timeoutMs`.
 */
export async function storeLostResults(target: ThreadResultTarget, tasks: readonly LostTask[], why: string, timeoutMs = 10_000): Promise<number> {
  const exception = { exc_type: 'WorkerLostError', exc_message: [why], exc_module: 'billiard.exceptions' };
  const commands = handshakeCommands(target.connection);
  const replyCount = commands.length + tasks.length;
  for (const task of tasks) {
    const doc = dumpsPython(resultDocument(task, States.FAILURE, exception));
    commands.push(encodeCommand(['EVAL', storeResult.lua, 1, `celery-task-meta-${task.id}`, doc, target.expiresSeconds]));
  }
  // With Sentinel: the master the sentinels name now.
  const socket = await connectRedisSocket(target.connection);
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => done(new Error(`no reply within ${timeoutMs / 1000} s`)), timeoutMs);
    let buffered = '';
    let replies = 0;
    let kept = 0;
    const done = (err: Error | null) => {
      clearTimeout(timer);
      socket.destroy();
      if (err) reject(err);
      else resolve(kept);
    };
    socket.on('error', (err) => done(err));
    socket.on('close', () => done(new Error('connection closed')));
    socket.on('data', (chunk) => {
      buffered += chunk.toString('utf8');
      let end: number;
      // Every reply here is one line: +OK (AUTH, SELECT), :0 / :1 (the script), or -error.
      while ((end = buffered.indexOf('\r\n')) >= 0) {
        const line = buffered.slice(0, end);
        buffered = buffered.slice(end + 2);
        if (line.startsWith('-')) return done(new Error(line.slice(1)));
        replies++;
        if (replies > replyCount - tasks.length && line === ':0') kept++;
        if (replies === replyCount) return done(null);
      }
    });
    for (const command of commands) socket.write(command);
  });
}
