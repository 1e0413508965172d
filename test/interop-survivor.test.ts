/**
 * A Celeriac worker dies while blocked waiting for messages, with only a Python
 * Celery worker left: whatever arrived while it was blocked must still be visible
 * to (and run by) the Python worker. Real redis-server and Celery 5.2.
 */
import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { after, before, test } from 'node:test';
import { Redis } from 'ioredis';
import { createApp } from '../packages/core/src/index.ts';
import { interopEnv, pythonCeleryMissing, startPythonWorker, type PeerProcess } from './helpers/python-celery.ts';
import { missing, REDIS_SERVER, startRedis, stopChild, type RedisServer } from './helpers/services.ts';
import { startWorkerProcess, waitFor } from './helpers/worker-process.ts';

const skip = missing(REDIS_SERVER, 'apt-get install redis-server') ?? pythonCeleryMissing();
let redis: RedisServer;
let client: Redis;
let py: PeerProcess | undefined;
const children = new Set<ChildProcess>();
const producer = createApp('producer');

before(async () => {
  if (skip) return;
  redis = await startRedis();
  client = new Redis(redis.url(0));
  producer.configure({ brokerUrl: redis.url(0), resultBackend: redis.url(1) });
});

after(async () => {
  if (skip) return;
  for (const c of children) await stopChild(c);
  await py?.stop();
  await producer.close();
  client.disconnect();
  await redis.stop();
});

test('a message that arrives while a Celeriac worker is blocked, then killed, is run by a Python worker', { skip: skip ?? false }, async () => {
  const ts = await startWorkerProcess({ broker: redis.url(0), backend: redis.url(1) }, children);
  await waitFor(async () => /cmd=blmove/.test(await client.client('LIST') as string), 10_000, 'the Celeriac worker blocks waiting for messages');
  ts.signal('SIGSTOP');
  const r = await producer.sendTask('tasks.add', [2, 3]); // served by Redis to the blocked (frozen) worker's BLMOVE
  ts.signal('SIGKILL');
  await ts.exited;
  py = await startPythonWorker({ env: interopEnv(redis), hostname: 'py@survivor' });
  assert.equal(await r.get({ timeout: 20_000 }), 5);
  assert.deepEqual(await client.keys('_celeriac.inflight.*'), []);
});
