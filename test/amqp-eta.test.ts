/**
 * Long ETAs on RabbitMQ without the consumer_timeout trap (celery#6760): the test
 * broker closes any channel that holds a delivery unacknowledged for more than
 * 3 s. Holding a countdown message in memory trips it (the channel is closed and
 * the message comes back); parking it in the delay queues does not: a countdown of
 * twice the consumer_timeout runs exactly once, at its ETA. What we park is the
 * original message, so a Python worker runs it when it comes back.
 */
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { after, before, describe, test } from 'node:test';
import { pino } from 'pino';
import { createApp, Worker, type Celeriac } from '../packages/core/src/index.ts';
import { pythonCeleryMissing, redisClient, startPythonWorker, type PeerProcess } from './helpers/python-celery.ts';
import { rabbitmqMissing, startRabbitMQ, type RabbitServer } from './helpers/rabbitmq.ts';
import { missing, REDIS_SERVER, startRedis, type RedisServer } from './helpers/services.ts';

const skip = rabbitmqMissing() ?? missing(REDIS_SERVER, 'apt-get install redis-server');
const CONSUMER_TIMEOUT_MS = 3000;
let rabbit: RabbitServer | undefined;
let redis: RedisServer | undefined;
const apps: Celeriac[] = [];

before(async () => {
  if (skip) return;
  // The channel tick checks consumer timeouts: every 500 ms instead of every minute.
  [rabbit, redis] = await Promise.all([startRabbitMQ({ consumerTimeoutMs: CONSUMER_TIMEOUT_MS, advancedRabbit: ['{channel_tick_interval, 500}'] }), startRedis()]);
});
after(async () => {
  for (const a of apps) await a.close();
  await rabbit?.stop();
  await redis?.stop();
});

/** A worker whose log lines (JSON) are collected. */
function loggedWorker(app: Celeriac, queue: string) {
  const lines: string[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, done) {
      lines.push(...chunk.toString().split('\n').filter(Boolean));
      done();
    },
  });
  const worker = new Worker(app, { concurrency: 2, queues: [queue], logger: pino({ level: 'info' }, sink) });
  return { worker, lines };
}

function etaApp(queue: string, holdSeconds: number): { app: Celeriac; runs: number[] } {
  const app = createApp(`eta-${queue}`, { brokerUrl: rabbit!.url, resultBackend: null, workerEtaHoldSeconds: holdSeconds, taskDefaultQueue: queue });
  apps.push(app);
  const runs: number[] = [];
  app.task('eta.run', () => void runs.push(Date.now()));
  return { app, runs };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('long ETA over RabbitMQ with consumer_timeout = 3 s', { skip: skip ?? false }, () => {
  test('the trap is real: a worker holding a 6 s countdown in memory gets its channel closed by RabbitMQ', async () => {
    const { app } = etaApp('eta-held', 60);
    const { worker, lines } = loggedWorker(app, 'eta-held');
    await worker.start();
    try {
      await app.sendTask('eta.run', [], {}, { countdown: (2 * CONSUMER_TIMEOUT_MS) / 1000 });
      const deadline = Date.now() + 15_000;
      while (!lines.some((l) => /consumer_timeout/.test(l)) && Date.now() < deadline) await sleep(100);
      assert.ok(lines.some((l) => /unacknowledged past its consumer_timeout/.test(l)), `no channel closure logged:\n${lines.join('\n')}`);
    } finally {
      await worker.stop({ cold: true });
    }
  });

  test('parked in the delay queues, a countdown of 2 × consumer_timeout runs exactly once, not before its ETA, and no channel is closed', async () => {
    const { app, runs } = etaApp('eta-parked', 1);
    const { worker, lines } = loggedWorker(app, 'eta-parked');
    await worker.start();
    try {
      const countdownMs = 2 * CONSUMER_TIMEOUT_MS;
      const sent = Date.now();
      await app.sendTask('eta.run', [], {}, { countdown: countdownMs / 1000 });
      const deadline = Date.now() + countdownMs + 15_000;
      while (runs.length === 0 && Date.now() < deadline) await sleep(50);
      await sleep(CONSUMER_TIMEOUT_MS + 1000); // a duplicate would show up by now
      assert.equal(runs.length, 1, `ran ${runs.length} times`);
      assert.ok(runs[0]! >= sent + countdownMs - 5, `ran ${runs[0]! - sent} ms after sending, countdown ${countdownMs} ms`);
      assert.deepEqual(lines.filter((l) => /closed the consumer channel/.test(l)), []);
    } finally {
      await worker.stop();
    }
  });

  test('a Python worker runs what a Celeriac worker parked', { skip: pythonCeleryMissing() ?? false }, async () => {
    const queue = 'eta-py';
    const { app, runs } = etaApp(queue, 1);
    // Registered here too (a worker rejects tasks it does not know); it stops before the ETA.
    app.task('mixed.who', (i: number) => void runs.push(i));
    const { worker } = loggedWorker(app, queue);
    await worker.start();
    const record = redisClient(redis!.url(2));
    let py: PeerProcess | undefined;
    try {
      await record.del('interop:executions');
      const sent = Date.now();
      // mixed.who: the Python task records `py:<i>` in db 2 when it runs.
      await app.sendTask('mixed.who', [7], {}, { countdown: 5 });
      // Wait until the Celeriac worker has parked it (acked: nothing left in the queue or unacked).
      await sleep(1500);
      await worker.stop();
      assert.equal(runs.length, 0);
      py = await startPythonWorker({
        env: { INTEROP_BROKER_URL: rabbit!.url, INTEROP_BACKEND_URL: redis!.url(1), INTEROP_RECORD_URL: redis!.url(2) },
        hostname: 'py@eta',
        queues: [queue],
      });
      const deadline = Date.now() + 20_000;
      let executions: string[] = [];
      while (executions.length === 0 && Date.now() < deadline) {
        executions = await record.lrange('interop:executions', 0, -1);
        await sleep(100);
      }
      assert.deepEqual(executions, ['py:7'], py.output().slice(-2000));
      assert.ok(Date.now() - sent >= 5000, 'not before its ETA');
    } finally {
      await py?.stop();
      record.disconnect();
    }
  });
});
