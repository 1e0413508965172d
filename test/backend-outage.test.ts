/**
 * The result backend goes away while a late-ack task runs: the run is not
 * acknowledged as if recorded; the message is parked and run again once the
 * backend is back, and its result is then stored. Real redis-servers, stopped and
 * restarted by PID.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { Redis } from 'ioredis';
import { pino } from 'pino';
import { createApp, Worker } from '../packages/core/src/index.ts';
import { missing, REDIS_SERVER, startRedis, type RedisServer } from './helpers/services.ts';

const skip = missing(REDIS_SERVER, 'apt-get install redis-server');
let brokerServer: RedisServer;
let backendServer: RedisServer;
let client: Redis;
let worker: Worker;
const runs: number[] = [];
const errors: string[] = [];
const app = createApp('outage', { workerHeartbeatInterval: 0.5 });
const record = app.task('outage.record', (n: number) => (runs.push(n), n * 2), { acksLate: true });

before(async () => {
  if (skip) return;
  brokerServer = await startRedis();
  backendServer = await startRedis();
  client = new Redis(brokerServer.url(0));
  app.configure({
    brokerUrl: brokerServer.url(0),
    resultBackend: backendServer.url(1),
    // Fail fast instead of ioredis's default ~10 s of reconnect attempts per command.
    resultBackendTransportOptions: { redis: { maxRetriesPerRequest: 1, retryStrategy: () => 200 } },
    // Give up on the write after 1 s (default 60 s: result-backend-retry.test.ts) to reach the late-ack path.
    resultBackendRetryWindow: 1,
  });
  const logger = pino({ level: 'error' }, { write: (line: string) => void errors.push(JSON.parse(line).msg) });
  worker = new Worker(app, { concurrency: 2, logger });
  await worker.start();
});

after(async () => {
  if (skip) return;
  await worker.stop();
  await app.close();
  client.disconnect();
  await brokerServer.stop();
  await backendServer.stop();
});

test('a late-ack run whose result cannot be stored is run again after the backend returns', { skip: skip ?? false }, async () => {
  assert.equal(await (await record.delay(1)).get({ timeout: 5000 }), 2); // backend up: normal
  const port = backendServer.port;
  await backendServer.stop();
  const sent = await record.delay(21);
  const deadline = Date.now() + 15_000;
  while (!errors.some((m) => /Could not store SUCCESS .*redelivered in 5 s/.test(m))) {
    if (Date.now() > deadline) throw new Error(`no store error logged: ${JSON.stringify(errors)}`);
    await new Promise((r) => setTimeout(r, 50));
  }
  assert.deepEqual(runs, [1, 21]);
  while ((await client.zcard('_celeriac.eta')) !== 1) {
    if (Date.now() > deadline) throw new Error('the message was not parked for a later run');
    await new Promise((r) => setTimeout(r, 20));
  }
  assert.equal(await client.hlen('unacked'), 0);
  backendServer = await startRedis(port);
  assert.equal(await sent.get({ timeout: 20_000 }), 42);
  assert.deepEqual(runs, [1, 21, 21], 'ran again once the backend was back');
});
