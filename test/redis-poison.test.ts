/**
 * Poison messages on Redis: tasks that kill their worker process. Early-ack tasks
 * are acknowledged before they run (as Celery does), so a crash does not bring them
 * back; late-ack ones come back at most `workerMaxRedeliveries` times, then FAILURE
 * is stored and the message dropped. Real worker processes, real redis-server.
 */
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { Redis } from 'ioredis';
import { States } from '../packages/core/src/index.ts';
import { missing, REDIS_SERVER } from './helpers/services.ts';
import { useRedisWorkers } from './helpers/redis-workers.ts';
import { logLines, waitFor, type WorkerProcess } from './helpers/worker-process.ts';

const skip = missing(REDIS_SERVER, 'apt-get install redis-server');
const tmp = mkdtempSync(join(tmpdir(), 'celeriac-poison-'));
const workers = useRedisWorkers(skip);
const { producer } = workers;
const env = (startlog: string) => ({ CELERIAC_TEST_STARTLOG: startlog, CELERIAC_TEST_HEARTBEAT: '0.2' }); // TTL 1 s
const crashWorker = (startlog: string, waitReady = true) => workers.startWorker({ env: env(startlog), app: 'test/apps/crash-app.ts', waitReady });

test('an early-ack task that kills its process is acknowledged before it ran: it does not come back', { skip: skip ?? false }, async () => {
  const startlog = join(tmp, 'early.log');
  const first = await crashWorker(startlog);
  await producer.sendTask('tasks.crash_early', ['early']);
  assert.equal(await first.exited, 70);
  const second = await crashWorker(startlog);
  // The second worker restores what the dead one held (at start, then every 0.2 s) before this runs.
  const sentinel = await producer.sendTask('tasks.add', [1, 2]);
  assert.equal(await sentinel.get({ timeout: 15_000 }), 3);
  await waitFor(async () => (await workers.client.hlen('unacked')) === 0, 5000, 'nothing left unacked');
  assert.deepEqual(logLines(startlog), [`early ${first.pid}`], 'ran once, on the first worker');
  assert.equal(second.child.exitCode, null, 'the second worker is alive');
  second.signal('SIGTERM');
  await second.exited;
});

test('a late-ack task that kills its process runs 1 + workerMaxRedeliveries times, then FAILURE is stored and it is dropped', { skip: skip ?? false }, async () => {
  const startlog = join(tmp, 'late.log');
  const r = await producer.sendTask('tasks.crash_late', ['late']);
  let last: WorkerProcess | undefined;
  for (let i = 0; i < 7 && (await r.state) !== States.FAILURE; i++) {
    // Not waiting for "ready.": the message is already queued, and the worker may take it (and die) before it prints that line.
    last = await crashWorker(startlog, false);
    const settled = await Promise.race([last.exited.then(() => 'died'), waitFor(async () => (await r.state) === States.FAILURE, 15_000).then(() => 'failed')]);
    if (settled === 'failed') break;
  }
  assert.equal(await r.state, States.FAILURE);
  const results = new Redis(workers.redis.url(1));
  const doc = JSON.parse((await results.get(`celery-task-meta-${r.id}`))!) as { result: { exc_type: string; exc_module: string } };
  results.disconnect();
  assert.deepEqual([doc.result.exc_type, doc.result.exc_module], ['WorkerLostError', 'billiard.exceptions']);
  assert.equal(logLines(startlog).length, 4, 'the first run and 3 redeliveries');
  assert.match(last!.output(), /workerMaxRedeliveries/);
  assert.equal(last!.child.exitCode, null, 'the worker that gave up is alive');
  await waitFor(async () => (await workers.client.hlen('unacked')) === 0 && (await workers.client.llen('celery')) === 0, 5000, 'the message is gone');
  last!.signal('SIGTERM');
  await last!.exited;
});
