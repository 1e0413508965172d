/**
 * The pool's concurrency is a hard limit, also while a run awaits its early ack:
 * a message waiting for a slot is neither acknowledged nor started. Memory transport.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { createApp, Worker } from '../packages/core/src/index.ts';

test('concurrency 1: one task function at a time, and a message waiting for the slot is not acked yet', async () => {
  const app = createApp('conc', { brokerUrl: 'memory://worker-concurrency', workerConcurrency: 1, workerPrefetchMultiplier: 4 });
  let running = 0;
  let most = 0;
  const nap = app.task('c.nap', async (i: number) => {
    running++;
    most = Math.max(most, running);
    await new Promise((r) => setTimeout(r, 30));
    running--;
    return i;
  });
  const worker = new Worker(app, { logLevel: 'silent' });
  await worker.start();
  try {
    const results = await Promise.all(Array.from({ length: 6 }, (_, i) => nap.delay(i)));
    assert.deepEqual(await Promise.all(results.map((r) => r.get({ timeout: 5000 }))), [0, 1, 2, 3, 4, 5]);
    assert.equal(most, 1, `at most one function at a time (saw ${most})`);
  } finally {
    await worker.stop();
    await app.close();
  }
});
