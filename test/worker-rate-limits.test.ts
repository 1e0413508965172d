/**
 * Rate limits through a real worker (memory:// transport): a task's `rateLimit`
 * spaces its runs (token bucket, capacity 1), every message still runs (none
 * dropped), other tasks keep flowing meanwhile, the limit can be changed while the
 * worker runs, and a bad rate fails at start-up. Timings: lower bounds only.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { ConfigurationError, createApp, Worker } from '../packages/core/src/index.ts';
import { parseRate } from '../packages/core/src/worker/rate-limits.ts';

test("parseRate reads Celery's forms", () => {
  assert.equal(parseRate('10/s'), 10);
  assert.equal(parseRate('120/m'), 2);
  assert.equal(parseRate('3600/h'), 1);
  assert.equal(parseRate('5'), 5);
  assert.equal(parseRate(2.5), 2.5);
  assert.equal(parseRate(null), null);
  assert.equal(parseRate('0'), null);
  assert.throws(() => parseRate('10/d'), /must be a rate such as '10\/s'/);
});

test('10/s: runs are spaced by the bucket, none is dropped, and other tasks flow meanwhile', async () => {
  const app = createApp('rl-basic', { brokerUrl: 'memory://rl-basic' });
  const ranAt: number[] = [];
  let freeDoneAt = 0;
  app.task('rl.limited', (i: number) => (ranAt.push(Date.now()), i), { rateLimit: '10/s' });
  app.task('rl.free', () => (freeDoneAt = Date.now()));
  const worker = new Worker(app, { concurrency: 4, logLevel: 'silent' });
  await worker.start();
  try {
    const limited = await Promise.all(Array.from({ length: 6 }, (_, i) => app.sendTask<number>('rl.limited', [i])));
    const free = await app.sendTask('rl.free');
    await free.get({ timeout: 5000 });
    assert.deepEqual(await Promise.all(limited.map((r) => r.get({ timeout: 10_000 }))), [0, 1, 2, 3, 4, 5], 'every message ran, in order');
    // Capacity 1 at 10/s: tokens are handed out 100 ms apart, so 6 runs span at least ~500 ms
    // (less a little: a run starts a moment after its token, and the first one's moment may be longer).
    const span = ranAt[ranAt.length - 1]! - ranAt[0]!;
    assert.ok(span >= 450, `6 runs at 10/s spanned ${span} ms`);
    assert.ok(freeDoneAt < ranAt[ranAt.length - 1]!, 'the unlimited task did not wait behind the limited ones');
  } finally {
    await worker.stop();
    await app.close();
  }
});

test('the limit changes while the worker runs: 1/m, then none releases the waiting messages', async () => {
  const app = createApp('rl-change', { brokerUrl: 'memory://rl-change' });
  let runs = 0;
  app.task('rl.slow', () => ++runs, { rateLimit: '1/m' });
  const worker = new Worker(app, { concurrency: 2, logLevel: 'silent' });
  await worker.start();
  try {
    const results = await Promise.all(Array.from({ length: 4 }, () => app.sendTask('rl.slow')));
    const deadline = Date.now() + 5000;
    while (runs < 1 && Date.now() < deadline) await sleep(10);
    await sleep(200);
    assert.equal(runs, 1, 'at 1/m only the first runs; the others wait in the worker');
    assert.equal(worker.stats.reserved, 3, 'the waiting messages stay reserved, not dropped');
    worker.setRateLimit('rl.slow', null);
    await Promise.all(results.map((r) => r.get({ timeout: 5000 })));
    assert.equal(runs, 4);
    worker.setRateLimit('rl.slow', '100/s');
    assert.equal(await (await app.sendTask('rl.slow')).get({ timeout: 5000 }), 5);
    assert.throws(() => worker.setRateLimit('rl.slow', 'fast'), ConfigurationError);
  } finally {
    await worker.stop();
    await app.close();
  }
});

test('a bad rateLimit fails at start-up, naming the task', async () => {
  const app = createApp('rl-bad', { brokerUrl: 'memory://rl-bad' });
  app.task('rl.bad', () => 1, { rateLimit: 'ten per second' });
  await assert.rejects(new Worker(app, { logLevel: 'silent' }).start(), /The rateLimit of task rl\.bad must be a rate such as '10\/s'/);
  await app.close();
});
