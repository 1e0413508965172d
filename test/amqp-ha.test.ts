/**
 * High-availability pieces on one RabbitMQ node: a failover URL list whose first
 * broker is down (the next one is used), and quorum queues (`x-queue-type:
 * quorum`, `x-delivery-limit`): declared, consumed with a per-consumer prefetch
 * (quorum queues refuse a channel-wide QoS), and RabbitMQ's delivery count read
 * as the redelivery count.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { createApp, createBroker, buildTaskMessage, Worker, type Celeriac } from '../packages/core/src/index.ts';
import { routingFromSettings } from '../packages/core/src/brokers/queue-topology.ts';
import { resolveSettings } from '../packages/core/src/config.ts';
import { rabbitmqMissing, type RabbitServer } from './helpers/rabbitmq.ts';
import { useRabbitMQ } from './helpers/rabbitmq-shared.ts';
import { freePort } from './helpers/services.ts';

const skip = rabbitmqMissing();
let rabbit: RabbitServer | undefined;
const apps: Celeriac[] = [];

before(async () => {
  if (!skip) rabbit = await useRabbitMQ();
});
after(async () => {
  for (const a of apps) await a.close();
  await rabbit?.stop();
});

describe('RabbitMQ high availability (one node)', { skip: skip ?? false }, () => {
  test('failover list amqp://down;amqp://up: sends and workers use the reachable broker', async () => {
    const dead = await freePort();
    const app = createApp('failover', { brokerUrl: `amqp://guest:guest@127.0.0.1:${dead}//;${rabbit!.url}`, resultBackend: null, taskDefaultQueue: 'failover' });
    apps.push(app);
    const ran: number[] = [];
    app.task('f.run', (i: number) => void ran.push(i));
    const worker = new Worker(app, { concurrency: 1, logLevel: 'error' });
    await worker.start();
    try {
      await app.sendTask('f.run', [1]);
      const deadline = Date.now() + 10_000;
      while (ran.length === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
      assert.deepEqual(ran, [1]);
    } finally {
      await worker.stop();
    }
  });

  test('quorum queue: declared with x-queue-type quorum and a delivery limit, consumed by a worker, requeues counted', async () => {
    const taskQueues = [{ name: 'qq', queueArguments: { 'x-queue-type': 'quorum', 'x-delivery-limit': 5 } }];
    const app = createApp('quorum', { brokerUrl: rabbit!.url, resultBackend: null, taskQueues });
    apps.push(app);
    const ran: number[] = [];
    app.task('q.run', (i: number) => void ran.push(i));
    await app.sendMany([1, 2, 3].map((i) => ({ name: 'q.run', args: [i], options: { queue: 'qq' } })));
    const worker = new Worker(app, { concurrency: 2, logLevel: 'error' });
    await worker.start();
    try {
      const deadline = Date.now() + 10_000;
      while (ran.length < 3 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
      assert.deepEqual(ran.sort(), [1, 2, 3]);
    } finally {
      await worker.stop();
    }
    // A message given back twice carries RabbitMQ's delivery count: the consumer reports it as redeliveries.
    const broker = await createBroker(rabbit!.url, { routing: routingFromSettings(resolveSettings({ taskQueues })) });
    try {
      await broker.publish(buildTaskMessage({ taskName: 'q.run', taskId: 'qq-1', args: [9], kwargs: {}, origin: 't', replyTo: 'r', serializer: 'json' }), { exchange: '', routingKey: 'qq', queue: 'qq' });
      const c = await broker.openConsumer(['qq']);
      let d = (await c.reserve({ max: 1, timeoutMs: 3000 }))[0]!;
      await c.restore([d]);
      d = (await c.reserve({ max: 1, timeoutMs: 3000 }))[0]!;
      await c.restore([d]);
      d = (await c.reserve({ max: 1, timeoutMs: 3000 }))[0]!;
      assert.equal(d.message?.headers.id, 'qq-1');
      assert.equal(d.redelivered, true);
      assert.equal(d.redeliveries, 2);
      await c.ack([d]);
      await c.close();
    } finally {
      await broker.close();
    }
  });
});
