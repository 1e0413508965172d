/**
 * The consumer loop refills the prefetch window in batches: while reserved messages
 * are still waiting to run it reserves again only once half the window is free, so a
 * busy worker makes one reserve round trip per prefetch/2 tasks instead of one per
 * task slot freed (at -c 8 on Redis that was one reserve, ack and result script per 8
 * tasks). An idle worker still reserves whatever is free at once.
 */
import assert from 'node:assert/strict';
import { after, test } from 'node:test';
import { MemoryBroker } from '../packages/core/src/brokers/memory.ts';
import type { Consumer, ReserveOptions } from '../packages/core/src/brokers/broker.ts';
import { createApp, Worker } from '../packages/core/src/index.ts';

const app = createApp('prefetch-batches', { brokerUrl: 'memory://prefetch-batches', resultBackend: 'memory://prefetch-batches' });
const work = app.task('pb.work', async (i: number) => {
  await new Promise((r) => setTimeout(r, 2));
  return i;
});

/** max of every reserve call that returned messages, recorded by wrapping the consumer. */
const asked: number[] = [];
const openConsumer = MemoryBroker.prototype.openConsumer;
MemoryBroker.prototype.openConsumer = async function (this: MemoryBroker, ...args: Parameters<typeof openConsumer>): Promise<Consumer> {
  const consumer = await openConsumer.apply(this, args);
  const reserve = consumer.reserve.bind(consumer);
  consumer.reserve = async (options: ReserveOptions) => {
    const got = await reserve(options);
    if (got.length > 0) asked.push(options.max);
    return got;
  };
  return consumer;
};

let worker: Worker | undefined;
after(async () => {
  await worker?.stop();
  MemoryBroker.prototype.openConsumer = openConsumer;
  await app.close();
});

test('a busy worker reserves at least half its prefetch window per call (c=2, prefetch 8: never fewer than 4)', { timeout: 20_000 }, async () => {
  const results = await work.delayMany(Array.from({ length: 80 }, (_, i) => [i] as [number]));
  worker = new Worker(app, { concurrency: 2, prefetchMultiplier: 4, logLevel: 'silent' });
  await worker.start();
  const values = await Promise.all(results.map((r) => r.get({ timeout: 15_000 })));
  assert.deepEqual(values, Array.from({ length: 80 }, (_, i) => i));
  assert.ok(asked.length >= 2, `reserve calls: ${JSON.stringify(asked)}`);
  assert.ok(
    asked.every((max) => max >= 4),
    `every reserve that got messages asked for >= 4 (half of prefetch 8): ${JSON.stringify(asked)}`,
  );
});

test('messages arriving one at a time fill every slot of a window of prefetch = concurrency (the buffer draining wakes the loop)', { timeout: 20_000 }, async () => {
  // Regression: starting received runs after the current step left the loop waiting for
  // "half the window free" while the buffer still held the message just received; once
  // it started nothing woke the loop, and the 4th slot stayed empty (3 of 4 ran).
  await worker?.stop();
  worker = undefined;
  let release!: () => void;
  const released = new Promise<void>((resolve) => (release = resolve));
  const running = new Set<number>();
  // Acks late: a running message keeps its prefetch slot (an early ack would free it and wake the loop).
  const hold = app.task(
    'pb.hold',
    async (i: number) => {
      running.add(i);
      await released;
      return i;
    },
    { acksLate: true },
  );
  worker = new Worker(app, { concurrency: 4, prefetchMultiplier: 1, logLevel: 'silent' });
  await worker.start();
  const results = [];
  for (let i = 0; i < 4; i++) {
    results.push(await hold.delay(i));
    const deadline = Date.now() + 5_000;
    while (running.size < i + 1 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
    assert.equal(running.size, i + 1, `task ${i} started while the earlier ones still run (running: ${[...running].join(', ')})`);
  }
  release();
  assert.deepEqual(await Promise.all(results.map((r) => r.get({ timeout: 5_000 }))), [0, 1, 2, 3]);
});
