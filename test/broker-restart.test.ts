/**
 * The broker's redis-server restarts under a running worker: the worker
 * reconnects by itself and serves tasks sent afterwards. Real redis-server,
 * stopped and started again on the same port by PID.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { pino } from 'pino';
import { createApp, Worker } from '../packages/core/src/index.ts';
import { missing, REDIS_SERVER, startRedis, type RedisServer } from './helpers/services.ts';

const skip = missing(REDIS_SERVER, 'apt-get install redis-server');
let redis: RedisServer;
let worker: Worker;
const app = createApp('restart', { workerHeartbeatInterval: 0.5 });
const add = app.task('restart.add', (x: number, y: number) => x + y);

before(async () => {
  if (skip) return;
  redis = await startRedis();
  app.configure({ brokerUrl: redis.url(0), resultBackend: redis.url(1) });
  worker = new Worker(app, { concurrency: 2, logger: pino({ level: 'silent' }) });
  await worker.start();
});

after(async () => {
  if (skip) return;
  await worker.stop();
  await app.close();
  await redis.stop();
});

test('the worker keeps serving after the broker restarts', { skip: skip ?? false }, async () => {
  assert.equal(await (await add.delay(1, 2)).get({ timeout: 5000 }), 3);
  const port = redis.port;
  await redis.stop();
  await new Promise((r) => setTimeout(r, 500));
  redis = await startRedis(port);
  const after = await add.delay(20, 22);
  assert.equal(await after.get({ timeout: 15_000 }), 42);
});
