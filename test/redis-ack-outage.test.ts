/**
 * Acks that fail during a Redis outage are retried until they land: a task that ran
 * never runs again. redis-server with AOF (fsync always) stopped and restarted on the
 * same port and data directory mid-run; worker processes stopped by PID.
 */
import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { Redis } from 'ioredis';
import { createApp } from '../packages/core/src/index.ts';
import { missing, REDIS_SERVER, startRedis, stopChild, type RedisServer } from './helpers/services.ts';
import { logLines, startWorkerProcess, waitFor } from './helpers/worker-process.ts';

const skip = missing(REDIS_SERVER, 'apt-get install redis-server');
const tmp = mkdtempSync(join(tmpdir(), 'celeriac-ack-outage-'));
const dataDir = join(tmp, 'redis-data');
const persistent = ['--appendonly', 'yes', '--appendfsync', 'always', '--dir', dataDir];
let redis: RedisServer;
const children = new Set<ChildProcess>();
const producer = createApp('producer');

before(async () => {
  if (skip) return;
  mkdirSync(dataDir, { recursive: true });
  redis = await startRedis(undefined, persistent);
  producer.configure({ brokerUrl: redis.url(0), resultBackend: redis.url(1) });
});

after(async () => {
  if (skip) return;
  for (const c of children) await stopChild(c);
  await producer.close();
  await redis.stop();
  rmSync(tmp, { recursive: true, force: true });
});

test('acks that fail while Redis is down (AOF on, stopped and restarted) are retried until they land: no finished task runs again', { skip: skip ?? false }, async () => {
  const runlog = join(tmp, 'runs.log');
  const env = { CELERIAC_TEST_RUNLOG: runlog, CELERIAC_TEST_HEARTBEAT: '0.5', CELERIAC_TEST_REDIS_RETRIES: '1' };
  const urls = { broker: redis.url(0), backend: redis.url(1) };
  const a = await startWorkerProcess(urls, children, env, ['-c', '2'], 'test/apps/crash-app.ts');
  const N = 10;
  for (let i = 0; i < N; i++) await producer.sendTask('tasks.slow_early', [1500, `t${i}`]);
  // Two finished, two more acknowledged and running: those finish during the outage and
  // the next two must be acknowledged before they run.
  await waitFor(() => logLines(runlog).length >= 2, 15_000, 'the first tasks finished');
  const port = redis.port;
  await redis.stop(); // AOF, fsync always: everything acknowledged so far survives
  // The outage: t2/t3 finish, t4/t5 must be acknowledged before they run; with
  // maxRetriesPerRequest 1 those acks fail at once (with ioredis's default of 20 they
  // fail after ~10 s of reconnect attempts, or later when queued behind a pipeline).
  await new Promise((r) => setTimeout(r, 5000));
  redis = await startRedis(port, persistent);
  await waitFor(() => new Set(logLines(runlog).map((l) => l.split(' ')[0])).size === N, 60_000, 'every task ran');
  // A warm shutdown gives back whatever A still holds; a second worker runs it.
  a.signal('SIGTERM');
  await a.exited;
  const client = new Redis(redis.url(0));
  try {
    const b = await startWorkerProcess(urls, children, env, ['-c', '2'], 'test/apps/crash-app.ts');
    await waitFor(async () => (await client.llen('celery')) === 0 && (await client.hlen('unacked')) === 0, 20_000, 'queue and unacked drained');
    const sentinel = await producer.sendTask('tasks.add', [1, 1]);
    assert.equal(await sentinel.get({ timeout: 15_000 }), 2); // B is past anything it restored
    const runs = logLines(runlog).map((l) => l.split(' ')[0]!);
    const twice = runs.filter((tag, i) => runs.indexOf(tag) !== i);
    assert.deepEqual(twice, [], `tasks that ran twice: ${twice.join(', ')}`);
    b.signal('SIGTERM');
    await b.exited;
  } finally {
    client.disconnect();
  }
});
