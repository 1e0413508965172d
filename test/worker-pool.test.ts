/**
 * The async pool's slots through a real worker (memory:// transport): no more task
 * functions run at once than `concurrency`, whether the message is acknowledged
 * before the run (early ack, awaited) or after it (late ack).
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { createApp, Worker } from '../packages/core/src/index.ts';

for (const acksLate of [false, true]) {
  test(`at most \`concurrency\` task functions run at once (${acksLate ? 'late' : 'early'} ack)`, async () => {
    const app = createApp(`pool-${acksLate}`, { brokerUrl: `memory://pool-${acksLate}` });
    let running = 0;
    let most = 0;
    const sleepy = app.task(
      'p.sleepy',
      async (i: number) => {
        running++;
        most = Math.max(most, running);
        await new Promise((r) => setTimeout(r, 20));
        running--;
        return i;
      },
      { acksLate },
    );
    const worker = new Worker(app, { concurrency: 3, prefetchMultiplier: 4, logLevel: 'silent' });
    await worker.start();
    try {
      await Promise.all(Array.from({ length: 24 }, (_, i) => sleepy.delay(i)));
      const deadline = Date.now() + 5000;
      while (worker.stats.processed < 24 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
      assert.equal(worker.stats.processed, 24, 'every task ran');
      assert.equal(most, 3, `at most 3 at once, saw ${most}`);
    } finally {
      await worker.stop();
      await app.close();
    }
  });
}
