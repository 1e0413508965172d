/**
 * Fault test: RabbitMQ is killed (SIGKILL, a crash) and started again while a
 * producer publishes 2,000 tasks and a worker (acks late) consumes them. Every
 * task whose publish was confirmed runs; the test reports how many ran twice
 * (at-least-once: a crash can redeliver an unacknowledged message, and a publish
 * whose confirm was lost is retried).
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { createApp, Worker, type Celeriac } from '../packages/core/src/index.ts';
import { rabbitmqMissing, startRabbitMQ, type RabbitServer } from './helpers/rabbitmq.ts';

const skip = rabbitmqMissing();
const N = 2000;
let rabbit: RabbitServer | undefined;
let app: Celeriac | undefined;
let worker: Worker | undefined;

before(async () => {
  if (!skip) rabbit = await startRabbitMQ();
});
after(async () => {
  await worker?.stop({ cold: true });
  await app?.close();
  await rabbit?.stop();
});

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

test(`RabbitMQ killed and restarted during ${N} publishes and consumption (acks late): every confirmed task runs`, { skip: skip ?? false }, async () => {
  app = createApp('fault', { brokerUrl: rabbit!.url, resultBackend: null, taskAcksLate: true, taskDefaultQueue: 'fault' });
  const runs = new Map<number, number>();
  app.task('fault.run', async (i: number) => {
    runs.set(i, (runs.get(i) ?? 0) + 1);
    await sleep(1);
  });
  worker = new Worker(app, { concurrency: 8, logLevel: 'error' });
  await worker.start();

  const confirmed = new Set<number>();
  const failed: number[] = [];
  const policy = { maxRetries: 200, intervalStart: 0.1, intervalStep: 0.1, intervalMax: 0.5 };
  let crashed = false;
  const producing = (async () => {
    for (let i = 0; i < N; i += 10) {
      await Promise.all(
        Array.from({ length: 10 }, async (_, k) => {
          try {
            await app!.sendTask('fault.run', [i + k], {}, { retryPolicy: policy });
            confirmed.add(i + k);
          } catch {
            failed.push(i + k);
          }
        }),
      );
    }
  })();
  // Crash the broker once a quarter of the tasks are confirmed and some have run.
  while (confirmed.size < N / 4 || runs.size === 0) await sleep(5);
  await rabbit!.kill({ hard: true });
  crashed = true;
  const confirmedAtCrash = confirmed.size;
  await sleep(500);
  await rabbit!.start();
  await producing;

  const deadline = Date.now() + 90_000;
  const missingRuns = () => [...confirmed].filter((i) => !runs.has(i));
  while (missingRuns().length > 0 && Date.now() < deadline) await sleep(100);
  const lost = missingRuns();
  const twice = [...runs].filter(([, n]) => n > 1).length;
  console.log(
    `fault test: ${confirmed.size}/${N} publishes confirmed (${confirmedAtCrash} before the crash), ${failed.length} failed after retries; ` +
      `${runs.size} distinct tasks ran, ${twice} ran more than once, ${lost.length} confirmed tasks never ran`,
  );
  assert.ok(crashed);
  assert.deepEqual(lost.slice(0, 20), [], `${lost.length} confirmed tasks never ran`);
  assert.equal(failed.length, 0, 'every publish got through once the broker was back');
  assert.equal(confirmed.size, N);
});
