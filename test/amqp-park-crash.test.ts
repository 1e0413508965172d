/**
 * Parking a far-future ETA message (Consumer.defer on RabbitMQ) is at least once:
 * the copy is published to the delay queue and confirmed BEFORE the original is
 * acknowledged. The test cuts the connection in exactly that gap (after the
 * confirm, before the ack — what a worker crash there looks like to RabbitMQ) and
 * checks that nothing is lost: at the moment of the cut the copy is in the delay
 * queue and the original is still unacknowledged; afterwards both come back to the
 * task queue (the original at once, redelivered; the copy when its TTL runs out),
 * one duplicate, no loss.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import type { Message } from 'amqplib';
import { buildTaskMessage, createBroker, type Delivery } from '../packages/core/src/index.ts';
import { AmqpBroker, DELAY_PREFIX, delayLevel } from '../packages/core/src/brokers/amqp.ts';
import { rabbitmqMissing, startRabbitMQ, type RabbitServer } from './helpers/rabbitmq.ts';

const skip = rabbitmqMissing();
let rabbit: RabbitServer | undefined;

before(async () => {
  if (!skip) rabbit = await startRabbitMQ();
});
after(async () => {
  await rabbit?.stop();
});

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface QueueRow {
  name: string;
  messages_ready: number;
  messages_unacknowledged: number;
}

test('a crash between the delay-queue confirm and the ack of the original loses nothing (one duplicate)', { skip: skip ?? false }, async () => {
  const broker = await createBroker(rabbit!.url);
  assert.ok(broker instanceof AmqpBroker);
  const delayMs = 1500;
  const delayQueue = `${DELAY_PREFIX}${delayLevel(delayMs)}`;
  const order: string[] = [];
  let atCut: QueueRow[] = [];
  try {
    await broker.publish(
      buildTaskMessage({ taskName: 'park.run', taskId: 'park-1', args: [1], kwargs: {}, origin: 't', replyTo: 'r', serializer: 'json' }),
      { exchange: '', routingKey: 'park', queue: 'park' },
    );
    const consumer = await broker.openConsumer(['park']);
    const [delivery] = await consumer.reserve({ max: 1, timeoutMs: 10_000 });
    assert.equal(delivery?.message?.headers.id, 'park-1');

    // Cut the connection right after the park is confirmed, before defer() acks the original.
    const park = broker.publishDelayed.bind(broker);
    broker.publishDelayed = async (queue: string, msg: Message, ms: number) => {
      order.push('park publish');
      await park(queue, msg, ms);
      order.push('park confirmed');
      atCut = JSON.parse(await rabbit!.ctl(['list_queues', 'name', 'messages_ready', 'messages_unacknowledged', '--formatter', 'json'])) as QueueRow[];
      await rabbit!.ctl(['close_all_connections', 'test: crash between the park confirm and the ack']);
      const deadline = Date.now() + 30_000;
      while (broker.connection.live && Date.now() < deadline) await sleep(20);
      order.push('connection cut');
    };
    await consumer.defer(delivery!, new Date(Date.now() + delayMs)).catch((err: Error) => order.push(`defer failed: ${err.message}`));
    assert.deepEqual(order.slice(0, 3), ['park publish', 'park confirmed', 'connection cut']);
    // At the cut: the original is still unacknowledged, and the confirmed copy is stored — in the
    // delay queue, or already back in 'park' if its 1 s TTL ran out while rabbitmqctl was starting.
    const row = (name: string) => atCut.find((q) => q.name === name) ?? { name, messages_ready: 0, messages_unacknowledged: 0 };
    assert.equal(row('park').messages_unacknowledged, 1, JSON.stringify(atCut));
    assert.equal(row(delayQueue).messages_ready + row('park').messages_ready, 1, JSON.stringify(atCut));

    // After the crash: the original is redelivered, and the copy dead-letters back after its TTL.
    const got: Delivery[] = [];
    const deadline = Date.now() + 30_000;
    while (got.length < 2 && Date.now() < deadline) got.push(...(await consumer.reserve({ max: 2, timeoutMs: 1000 })));
    await sleep(1500); // a third copy, if there were one, would arrive now
    got.push(...(await consumer.reserve({ max: 2, timeoutMs: 500 })));
    assert.deepEqual(got.map((d) => d.message?.headers.id), ['park-1', 'park-1']);
    assert.equal(got[0]!.redelivered, true, 'the first is the original, given back by RabbitMQ');
    await consumer.ack(got);
    await consumer.close();
    assert.equal(await broker.queueLength('park'), 0);
    assert.equal(await broker.queueLength(delayQueue), 0);
  } finally {
    await broker.close();
  }
});
