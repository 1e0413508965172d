/**
 * Time limits on the async pool, through a real worker (memory:// transport):
 * the soft limit aborts the task's `signal` with SoftTimeLimitExceeded (timers and
 * fetch given the signal reject, the task may catch it and clean up); the hard
 * limit stores FAILURE TimeLimitExceeded at once but keeps the slot while the
 * JavaScript still runs, so concurrency stays bounded; limits come from the call
 * (the message's `timelimit` header), the task, or the worker, in Celery's order;
 * the worker warns at start-up that async hard limits cannot stop code.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { buildTaskMessage, createApp, SoftTimeLimitExceeded, States, Worker, type Celeriac } from '../packages/core/src/index.ts';

function capturingLogger(lines: string[]) {
  const stream = new Writable({
    write(chunk, _enc, done) {
      lines.push(...String(chunk).split('\n').filter(Boolean));
      done();
    },
  });
  return pino({ level: 'info' }, stream);
}

async function withWorker(app: Celeriac, options: ConstructorParameters<typeof Worker>[1], body: (worker: Worker) => Promise<void>): Promise<void> {
  const worker = new Worker(app, { logLevel: 'silent', ...options });
  await worker.start();
  try {
    await body(worker);
  } finally {
    await worker.stop();
    await app.close();
  }
}

async function storedFailure(app: Celeriac, id: string) {
  const backend = await app.getBackend();
  const deadline = Date.now() + 10_000;
  for (;;) {
    const doc = await backend.getResult(id);
    if (doc && (doc.status === States.FAILURE || doc.status === States.SUCCESS)) return doc;
    if (Date.now() > deadline) throw new Error(`no outcome stored for ${id}`);
    await sleep(10);
  }
}

test('soft limit: the signal fires, a timer given the signal rejects, FAILURE SoftTimeLimitExceeded as billiard stores it', async () => {
  const app = createApp('tl-soft', { brokerUrl: 'memory://tl-soft' });
  let reason: unknown;
  app.task(
    'tl.wait',
    async function () {
      try {
        await sleep(10_000, undefined, { signal: this.signal });
      } finally {
        reason = this.signal.reason;
      }
    },
    { softTimeLimit: 0.1 },
  );
  await withWorker(app, { concurrency: 1 }, async () => {
    const started = Date.now();
    const r = await app.sendTask('tl.wait', []);
    const doc = await storedFailure(app, r.id);
    assert.ok(Date.now() - started >= 100, 'not before the soft limit');
    assert.equal(doc.status, States.FAILURE);
    // Celery 5.2 stores exactly this (test/fixtures/celery-5.2/worker-redis/w14_soft_time_limit.json).
    assert.deepEqual(doc.result, { exc_type: 'SoftTimeLimitExceeded', exc_message: [], exc_module: 'billiard.exceptions' });
    assert.ok(reason instanceof SoftTimeLimitExceeded, 'the signal reason is SoftTimeLimitExceeded');
    await assert.rejects(r.get({ timeout: 5000 }), (err: Error) => err.name === 'SoftTimeLimitExceeded');
  });
});

test('soft limit: fetch given the signal stops, and a task that catches SoftTimeLimitExceeded cleans up and succeeds', async () => {
  const hanging = createServer(() => undefined); // never answers
  await new Promise<void>((resolve) => hanging.listen(0, '127.0.0.1', resolve));
  const url = `http://127.0.0.1:${(hanging.address() as AddressInfo).port}/`;
  const app = createApp('tl-fetch', { brokerUrl: 'memory://tl-fetch' });
  app.task('tl.fetch', async function (target: string) {
    try {
      await fetch(target, { signal: this.signal });
      return 'answered';
    } catch (err) {
      if (err instanceof SoftTimeLimitExceeded) return 'cleaned up';
      throw err;
    }
  });
  try {
    await withWorker(app, { concurrency: 1 }, async () => {
      const r = await app.sendTask<string>('tl.fetch', [url], {}, { softTimeLimit: 0.1 });
      assert.equal(await r.get({ timeout: 5000 }), 'cleaned up');
      assert.equal(await r.state, States.SUCCESS);
    });
  } finally {
    hanging.closeAllConnections();
    hanging.close();
  }
});

test('hard limit on the async pool: FAILURE TimeLimitExceeded at once, the slot kept while the code runs, so concurrency never exceeds the limit', async () => {
  const app = createApp('tl-hard', { brokerUrl: 'memory://tl-hard' });
  let inFlight = 0;
  let most = 0;
  let finished = 0;
  const BODY_MS = 300;
  app.task('tl.stubborn', async () => {
    inFlight++;
    most = Math.max(most, inFlight);
    await sleep(BODY_MS); // ignores the signal: cannot be stopped
    inFlight--;
    finished++;
    return 'done';
  });
  const CONCURRENCY = 2;
  const COUNT = 6;
  await withWorker(app, { concurrency: CONCURRENCY, prefetchMultiplier: 4 }, async (worker) => {
    const started = Date.now();
    const results = await Promise.all(Array.from({ length: COUNT }, () => app.sendTask('tl.stubborn', [], {}, { timeLimit: 0.05 })));
    for (const r of results) {
      const doc = await storedFailure(app, r.id);
      assert.equal(doc.status, States.FAILURE);
      assert.deepEqual(doc.result, { exc_type: 'TimeLimitExceeded', exc_message: [0.05], exc_module: 'billiard.exceptions' });
    }
    const deadline = Date.now() + 10_000;
    while (finished < COUNT && Date.now() < deadline) await sleep(10);
    assert.equal(finished, COUNT, 'every body ran to its end');
    assert.equal(most, CONCURRENCY, `at most ${CONCURRENCY} task bodies at once, saw ${most}`);
    // Lower bound only: 6 bodies of 300 ms, 2 at a time, cannot end before 3 × 300 ms.
    assert.ok(Date.now() - started >= (COUNT / CONCURRENCY) * BODY_MS, 'bodies waited for slots');
    assert.equal(worker.stats.failed, COUNT);
  });
});

test('per call: the timelimit header [hard, soft] as Python sends it is honoured and wins over the worker default', async () => {
  const app = createApp('tl-header', { brokerUrl: 'memory://tl-header' });
  app.task('tl.patient', async function (ms: number) {
    await sleep(ms, undefined, { signal: this.signal });
    return ms;
  });
  await withWorker(app, { concurrency: 2, softTimeLimit: 0.05 }, async () => {
    // Python: patient.apply_async((10000,), soft_time_limit=0.1) → headers.timelimit = [None, 0.1]
    const message = buildTaskMessage({ taskName: 'tl.patient', taskId: randomUUID(), args: [10_000], kwargs: {}, timeLimit: [null, 0.1], serializer: 'json', origin: 'gen1@py', replyTo: randomUUID() });
    assert.deepEqual(message.headers.timelimit, [null, 0.1]);
    await app.publishMessage(message, { exchange: '', routingKey: 'celery' });
    const doc = await storedFailure(app, message.headers.id);
    assert.equal(doc.result && (doc.result as { exc_type: string }).exc_type, 'SoftTimeLimitExceeded');
    // The worker's 0.05 s default would stop a 200 ms task; the call's 5 s limit lets it finish.
    const r = await app.sendTask('tl.patient', [200], {}, { softTimeLimit: 5 });
    assert.equal(await r.get({ timeout: 5000 }), 200);
  });
});

test('per worker: --soft-time-limit applies to tasks that set no limit', async () => {
  const app = createApp('tl-worker', { brokerUrl: 'memory://tl-worker' });
  app.task('tl.long', async function () {
    await sleep(10_000, undefined, { signal: this.signal });
  });
  await withWorker(app, { concurrency: 1, softTimeLimit: 0.1 }, async () => {
    const r = await app.sendTask('tl.long', []);
    await assert.rejects(r.get({ timeout: 5000 }), (err: Error) => err.name === 'SoftTimeLimitExceeded');
  });
});

test('start-up: the async pool warns that hard limits cannot stop code; no warning without one', async () => {
  const lines: string[] = [];
  const app = createApp('tl-warn', { brokerUrl: 'memory://tl-warn' });
  app.task('tl.limited', () => 1, { timeLimit: 30 });
  await withWorker(app, { concurrency: 1, logger: capturingLogger(lines), timeLimit: 60 }, async () => undefined);
  const warning = lines.map((l) => JSON.parse(l) as { level: number; msg: string }).find((l) => /cannot stop running code on the async pool/.test(l.msg));
  assert.ok(warning, `expected the warning, got ${lines.join('\n')}`);
  assert.equal(warning.level, 40);
  assert.match(warning.msg, /--time-limit, task tl\.limited/);

  const quiet: string[] = [];
  const plain = createApp('tl-nowarn', { brokerUrl: 'memory://tl-nowarn' });
  plain.task('tl.free', () => 1);
  await withWorker(plain, { concurrency: 1, logger: capturingLogger(quiet) }, async () => undefined);
  assert.ok(!quiet.some((l) => /cannot stop running code/.test(l)));
});
