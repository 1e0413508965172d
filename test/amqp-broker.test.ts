/**
 * The RabbitMQ transport against a private rabbitmq-server: Celery's topology and
 * message bytes, publisher confirms, prefetch = concurrency × multiplier (raised
 * for held ETAs), priorities with a worker, clear 404/406 errors, queue
 * arguments, and recovery when the connection drops (producer retry policy,
 * consumer resumes).
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { connect, type Channel, type ConsumeMessage } from 'amqplib';
import { after, before, describe, test } from 'node:test';
import { BrokerUnavailable, buildTaskMessage, createApp, createBroker, Worker, type Celeriac } from '../packages/core/src/index.ts';
import type { Delivery } from '../packages/core/src/brokers/broker.ts';
import { routingFromSettings } from '../packages/core/src/brokers/queue-topology.ts';
import { resolveSettings, type Settings } from '../packages/core/src/config.ts';
import { fixture } from './helpers/fixtures.ts';
import { rabbitmqMissing, startRabbitMQ, type RabbitServer } from './helpers/rabbitmq.ts';

const skip = rabbitmqMissing();
let rabbit: RabbitServer | undefined;
const apps: Celeriac[] = [];
const workers: Worker[] = [];

before(async () => {
  if (!skip) rabbit = await startRabbitMQ();
});
after(async () => {
  for (const w of workers) await w.stop({ cold: true });
  for (const a of apps) await a.close();
  await rabbit?.stop();
});

function newApp(settings: Partial<Settings> = {}): Celeriac {
  const app = createApp(`amqp-${randomUUID().slice(0, 6)}`, { brokerUrl: rabbit!.url, resultBackend: null, ...settings });
  apps.push(app);
  return app;
}

/** Run `op` on a fresh channel of a plain amqplib connection (passive checks, raw gets). */
async function withChannel<T>(op: (ch: Channel) => Promise<T>): Promise<T> {
  const conn = await connect(rabbit!.url);
  try {
    const ch = await conn.createChannel();
    ch.on('error', () => undefined);
    return await op(ch);
  } finally {
    await conn.close().catch(() => undefined);
  }
}

/** Ready messages in a queue. */
const ready = (queue: string) => withChannel((ch) => ch.checkQueue(queue).then((r) => r.messageCount));

/** The channel error code a declaration gets (0 when RabbitMQ accepts it as equivalent). */
const declareCode = (op: (ch: Channel) => Promise<unknown>) => withChannel((ch) => op(ch).then(() => 0, (err: { code?: number }) => err.code ?? -1));

/**
 * Record the basic.ack frames every amqplib channel of this process sends (one class
 * for all channels, the consumer's included) until `stop`.
 */
async function recordAckFrames(): Promise<{ frames: [tag: number, multiple: boolean][]; stop: () => Promise<void> }> {
  const probe = await connect(rabbit!.url);
  const proto = Object.getPrototypeOf(await probe.createChannel()) as { ack: (msg: ConsumeMessage, allUpTo?: boolean) => void };
  const realAck = proto.ack;
  const frames: [tag: number, multiple: boolean][] = [];
  proto.ack = function (this: unknown, msg: ConsumeMessage, allUpTo?: boolean) {
    frames.push([msg.fields.deliveryTag, allUpTo === true]);
    return realAck.call(this, msg, allUpTo);
  };
  return {
    frames,
    stop: async () => {
      proto.ack = realAck;
      await probe.close().catch(() => undefined);
    },
  };
}

async function waitFor(cond: () => boolean | Promise<boolean>, what: string, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Take one raw message off a queue with a plain amqplib client. */
const rawGet = (queue: string) => withChannel(async (ch) => (await ch.get(queue, { noAck: true })) || null);

describe('RabbitMQ broker', { skip: skip ?? false }, () => {
  test("Celery's topology and bytes: exchange celery (direct, durable), durable queue celery, binding celery; persistent message on exchange '' like fixture a01", async () => {
    const app = newApp();
    const captured = fixture('amqp/a01_apply_async.json') as unknown as { messages: { properties: Record<string, unknown>; body_text: string; delivery_info: Record<string, unknown> }[] };
    const want = captured.messages[0]!;
    await app.sendTask('tasks.add', [2, 2], {}, { taskId: '00000000-0000-4000-8000-000000000001' });
    // RabbitMQ accepts a re-declaration only when it is equivalent (406 otherwise).
    assert.equal(await declareCode((ch) => ch.assertExchange('celery', 'direct', { durable: true, autoDelete: false })), 0, 'exchange celery: direct, durable');
    assert.equal(await declareCode((ch) => ch.assertExchange('celery', 'direct', { durable: false })), 406, 'exchange celery is durable');
    assert.equal(await declareCode((ch) => ch.assertQueue('celery', { durable: true, autoDelete: false, arguments: {} })), 0, 'queue celery: durable, no arguments');
    assert.equal(await declareCode((ch) => ch.assertQueue('celery', { durable: false })), 406, 'queue celery is durable');
    const msg = await rawGet('celery');
    assert.ok(msg);
    assert.equal(msg.fields.exchange, want.delivery_info.exchange);
    assert.equal(msg.fields.routingKey, 'celery');
    assert.equal(msg.content.toString(), want.body_text);
    assert.equal(msg.properties.deliveryMode, 2);
    assert.equal(msg.properties.contentType, 'application/json');
    assert.equal(msg.properties.contentEncoding, 'utf-8');
    assert.equal(msg.properties.correlationId, want.properties.correlation_id);
    const headers = msg.properties.headers as Record<string, unknown>;
    const wantHeaders = want.properties.application_headers as Record<string, unknown>;
    assert.deepEqual(Object.keys(headers), Object.keys(wantHeaders));
    // The binding celery → celery with key celery: a publish to exchange celery lands in the queue.
    const conn = await connect(rabbit!.url);
    const confirm = await conn.createConfirmChannel();
    confirm.publish('celery', 'celery', Buffer.from('probe'));
    await confirm.waitForConfirms();
    await conn.close();
    assert.equal((await rawGet('celery'))?.content.toString(), 'probe');
    for (const key of ['lang', 'task', 'id', 'shadow', 'eta', 'expires', 'group', 'group_index', 'retries', 'timelimit', 'root_id', 'parent_id', 'argsrepr', 'kwargsrepr', 'ignore_result']) {
      assert.deepEqual(headers[key], wantHeaders[key], key);
    }
  });

  test('publisher confirms: a publish RabbitMQ refuses (queue full, reject-publish) rejects instead of resolving', async () => {
    const app = newApp({ taskQueues: [{ name: 'full', queueArguments: { 'x-max-length': 1, 'x-overflow': 'reject-publish' } }] });
    await app.sendTask('t.x', [], {}, { queue: 'full' });
    await assert.rejects(app.sendTask('t.x', [], {}, { queue: 'full', retry: false }), /not confirmed|nack/i);
    assert.equal(await ready('full'), 1);
  });

  test('queue arguments from taskQueues are declared (x-max-priority, x-message-ttl, x-dead-letter-exchange, x-expires)', async () => {
    const app = newApp({
      taskQueues: [{ name: 'argq', maxPriority: 10, queueArguments: { 'x-message-ttl': 60_000, 'x-dead-letter-exchange': 'dlx', 'x-expires': 600_000 } }],
    });
    await app.sendTask('t.x', [], {}, { queue: 'argq' });
    const declared = { 'x-max-priority': 10, 'x-message-ttl': 60_000, 'x-dead-letter-exchange': 'dlx', 'x-expires': 600_000 };
    assert.equal(await declareCode((ch) => ch.assertQueue('argq', { durable: true, arguments: declared })), 0, 'declared with exactly these arguments');
    for (const arg of Object.keys(declared)) {
      const without: Record<string, unknown> = { ...declared };
      delete without[arg];
      assert.equal(await declareCode((ch) => ch.assertQueue('argq', { durable: true, arguments: without })), 406, `${arg} was declared`);
    }
  });

  test('406: a queue that exists with other arguments fails with the queue, the argument and both values named', async () => {
    const first = newApp({ taskQueues: [{ name: 'prio406', maxPriority: 10 }] });
    await first.sendTask('t.x', [], {}, { queue: 'prio406' });
    const second = newApp({ taskQueues: [{ name: 'prio406' }] });
    await assert.rejects(second.sendTask('t.x', [], {}, { queue: 'prio406' }), (err: Error) => {
      assert.match(err.message, /queue "prio406"/);
      assert.match(err.message, /x-max-priority/);
      assert.match(err.message, /10/);
      assert.match(err.message, /taskQueues|delete_queue/);
      return true;
    });
    // The producer still works afterwards (the channel error did not poison the connection).
    await second.sendTask('t.x', [], {}, { queue: 'other406' });
  });

  test('404: with taskCreateMissingQueues off, consuming or sending to an undeclared queue names it and the fix', async () => {
    const app = newApp({ taskCreateMissingQueues: false });
    await assert.rejects(app.sendTask('t.x', [], {}, { queue: 'nowhere' }), /queue "nowhere" does not exist.*taskCreateMissingQueues/);
    const broker = await createBroker(rabbit!.url, { routing: routingFromSettings(resolveSettings({ taskCreateMissingQueues: false })) });
    try {
      await assert.rejects(broker.openConsumer(['nowhere']), /queue "nowhere" does not exist/);
    } finally {
      await broker.close();
    }
  });

  test('prefetch = concurrency × multiplier: 2 × 3 = 6 messages unacknowledged while tasks run', async () => {
    const app = newApp({ taskDefaultQueue: 'prefetch', taskQueues: null, workerPrefetchMultiplier: 3 });
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    let started = 0;
    app.task('t.block', async () => {
      started++;
      await gate;
    });
    await app.sendMany(Array.from({ length: 20 }, () => ({ name: 't.block' })));
    const worker = new Worker(app, { concurrency: 2, logLevel: 'warn' });
    workers.push(worker);
    await worker.start();
    await waitFor(() => started === 2, 'two tasks running');
    // The two running tasks were acknowledged when they started (acks early); 6 more are
    // prefetched (unacknowledged): 20 - 2 - 6 = 12 stay ready, and no more leave.
    await waitFor(async () => (await ready('prefetch')) === 12, '12 ready').catch(async () => assert.fail(`${await ready('prefetch')} ready`));
    await new Promise((r) => setTimeout(r, 300));
    assert.equal(await ready('prefetch'), 12, 'the broker sent no more than 6 beyond the running tasks');
    assert.equal(started, 2);
    release();
    await waitFor(() => started === 20 && worker.stats.succeeded === 20, 'all 20 ran');
    assert.equal(await ready('prefetch'), 0);
    await worker.stop();
  });

  test('prefetch window: one queue starts with a per-consumer prefetch; when the window grows (held messages) the channel switches to a channel-wide one and the old consumer\'s deliveries stay valid', async () => {
    const queue = 'qos-switch';
    const broker = await createBroker(rabbit!.url, { routing: routingFromSettings(resolveSettings({ taskDefaultQueue: queue, taskQueues: null })) });
    const probe = await connect(rabbit!.url);
    const proto = Object.getPrototypeOf(await probe.createChannel()) as { prefetch: (count: number, global?: boolean) => Promise<unknown> };
    const realPrefetch = proto.prefetch;
    const qos: [count: number, global: boolean][] = [];
    proto.prefetch = function (this: unknown, count: number, global?: boolean) {
      qos.push([count, global === true]);
      return realPrefetch.call(this, count, global);
    };
    try {
      for (let i = 1; i <= 6; i++) {
        const message = buildTaskMessage({ taskName: 't.qos', taskId: `qos-${i}`, args: [i], kwargs: {}, origin: 't', replyTo: 'r', serializer: 'json' });
        await broker.publish(message, { exchange: '', routingKey: queue, queue });
      }
      const consumer = await broker.openConsumer([queue]);
      const got: Delivery[] = [];
      while (got.length < 2) got.push(...(await consumer.reserve({ max: 2 - got.length, timeoutMs: 3000 })));
      await new Promise((r) => setTimeout(r, 300));
      assert.equal(await ready(queue), 4, 'a per-consumer prefetch of 2: 4 stay ready');
      assert.deepEqual(qos, [[2, false]]);
      // The worker holds both (an ETA) and asks for 2 more: the window grows to 4.
      while (got.length < 4) got.push(...(await consumer.reserve({ max: 2, timeoutMs: 3000 })));
      assert.deepEqual(qos, [
        [2, false],
        [0, false],
        [4, true],
      ]);
      await waitFor(async () => (await ready(queue)) === 2, '2 ready').catch(async () => assert.fail(`${await ready(queue)} ready`));
      // Acks of the old consumer's and the new one's deliveries, then the rest.
      await consumer.ack(got.splice(0, 4));
      while (got.length < 2) got.push(...(await consumer.reserve({ max: 2, timeoutMs: 3000 })));
      assert.deepEqual(
        got.map((d) => d.message?.headers.id),
        ['qos-5', 'qos-6'],
      );
      await consumer.ack(got);
      await consumer.close();
      await new Promise((r) => setTimeout(r, 300));
      assert.equal(await ready(queue), 0, 'every message acked exactly once, none requeued');
    } finally {
      proto.prefetch = realPrefetch;
      await probe.close().catch(() => undefined);
      await broker.close();
    }
  });

  test('batched acks: a batch acking deliveries 1, 2, 3, 5 of 6 goes out as one multiple ack (up to 3) and one single ack (5); 4 and 6 stay unacknowledged', async () => {
    const queue = 'batched-acks';
    const broker = await createBroker(rabbit!.url, { routing: routingFromSettings(resolveSettings({ taskDefaultQueue: queue, taskQueues: null })) });
    const { frames, stop } = await recordAckFrames();
    try {
      for (let i = 1; i <= 6; i++) {
        const message = buildTaskMessage({ taskName: 't.acks', taskId: `ack-${i}`, args: [i], kwargs: {}, origin: 't', replyTo: 'r', serializer: 'json' });
        await broker.publish(message, { exchange: '', routingKey: queue, queue });
      }
      const consumer = await broker.openConsumer([queue]);
      const got: Delivery[] = [];
      while (got.length < 6) got.push(...(await consumer.reserve({ max: 6 - got.length, timeoutMs: 3000 })));
      assert.deepEqual(got.map((d) => d.message?.headers.id), ['ack-1', 'ack-2', 'ack-3', 'ack-4', 'ack-5', 'ack-6']);
      // Out of order in the batch, with 4 and 6 still held: only 1–3 may be covered by a multiple ack.
      consumer.ackBeforeRun!([got[4]!, got[0]!, got[2]!, got[1]!]);
      assert.deepEqual(frames, [], 'acks are coalesced until setImmediate');
      await new Promise((r) => setImmediate(r));
      assert.deepEqual(frames, [
        [5, false],
        [3, true],
      ]);
      await consumer.close();
      await waitFor(async () => (await ready(queue)) === 2, 'the 2 unacknowledged messages back in the queue').catch(async () => assert.fail(`${await ready(queue)} ready`));
      const back = [await rawGet(queue), await rawGet(queue)].map((m) => (m?.properties.headers as { id?: string } | undefined)?.id);
      assert.deepEqual(back.sort(), ['ack-4', 'ack-6']);
    } finally {
      await stop();
      await broker.close();
    }
  });

  test('coalesced acks: the batches of one event-loop iteration go out as one multiple ack, and close writes pending acks first', async () => {
    const queue = 'coalesced-acks';
    const broker = await createBroker(rabbit!.url, { routing: routingFromSettings(resolveSettings({ taskDefaultQueue: queue, taskQueues: null })) });
    const { frames, stop } = await recordAckFrames();
    try {
      for (let i = 1; i <= 5; i++) {
        const message = buildTaskMessage({ taskName: 't.acks', taskId: `co-${i}`, args: [i], kwargs: {}, origin: 't', replyTo: 'r', serializer: 'json' });
        await broker.publish(message, { exchange: '', routingKey: queue, queue });
      }
      const consumer = await broker.openConsumer([queue]);
      const got: Delivery[] = [];
      while (got.length < 5) got.push(...(await consumer.reserve({ max: 5 - got.length, timeoutMs: 3000 })));
      // Three batches in one turn (early acks, then a late ack): one frame.
      consumer.ackBeforeRun!([got[0]!, got[1]!]);
      consumer.ackBeforeRun!([got[2]!]);
      await consumer.ack([got[3]!]);
      await new Promise((r) => setImmediate(r));
      assert.deepEqual(frames, [[4, true]]);
      // An ack given right before close is written before the channel closes: nothing comes back.
      await consumer.ack([got[4]!]);
      await consumer.close();
      assert.deepEqual(frames, [
        [4, true],
        [5, false],
      ]);
      await new Promise((r) => setTimeout(r, 300));
      assert.equal(await ready(queue), 0);
    } finally {
      await stop();
      await broker.close();
    }
  });

  test('priorities with a worker: on an x-max-priority queue a priority 9 task sent last runs before priority 0 ones', async () => {
    const app = newApp({ taskQueues: [{ name: 'prio', maxPriority: 10 }] });
    const ran: number[] = [];
    app.task('t.rec', (p: number) => void ran.push(p));
    await app.sendMany([0, 0, 0, 9, 5].map((p) => ({ name: 't.rec', args: [p], options: { queue: 'prio', priority: p } })));
    const worker = new Worker(app, { concurrency: 1, prefetchMultiplier: 1, queues: ['prio'], logLevel: 'warn' });
    workers.push(worker);
    await worker.start();
    await waitFor(() => ran.length === 5, 'all five ran');
    await worker.stop();
    assert.deepEqual(ran, [9, 5, 0, 0, 0]);
  });

  test('broker away: a send retries per retryPolicy, then BrokerUnavailable; after a restart workers resume and sends succeed', async () => {
    const app = newApp({ taskDefaultQueue: 'restart' });
    const ran: number[] = [];
    app.task('t.r', (i: number) => void ran.push(i));
    const worker = new Worker(app, { concurrency: 2, logLevel: 'error' });
    workers.push(worker);
    await worker.start();
    await app.sendTask('t.r', [1]);
    await waitFor(() => ran.length === 1, 'first task');
    await rabbit!.kill({ hard: true });
    const started = Date.now();
    await assert.rejects(app.sendTask('t.r', [2], {}, { retryPolicy: { maxRetries: 2, intervalStart: 0.2, intervalStep: 0.2, intervalMax: 1 } }), (err: Error) => {
      assert.ok(err instanceof BrokerUnavailable, String(err));
      assert.match(err.message, /3 attempt\(s\)/);
      return true;
    });
    assert.ok(Date.now() - started >= 550, `gave up after ${Date.now() - started} ms; the policy sleeps 0.2 + 0.4 s`);
    // Back while a send is retrying: the send lands.
    // RabbitMQ can take a minute to boot on a loaded machine: a generous retry budget.
    const sending = app.sendTask('t.r', [3], {}, { retryPolicy: { maxRetries: 600, intervalStart: 0.5, intervalStep: 0, intervalMax: 0.5 } });
    sending.catch(() => undefined); // awaited below, after the restart
    await rabbit!.start();
    await sending;
    await app.sendTask('t.r', [4]);
    await waitFor(() => ran.includes(3) && ran.includes(4), 'tasks after the restart', 30_000);
    await worker.stop();
  });
});
