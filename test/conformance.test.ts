/**
 * The conformance suite every broker and every result backend runs: the same
 * behaviours through the interfaces, on memory://, a real Redis and a real
 * RabbitMQ (a vhost of its own on the run's shared node: helpers/rabbitmq-shared.ts).
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { buildTaskMessage, createBackend, createBroker, TimeoutError, type Broker, type Consumer, type Delivery, type ResultBackend } from '../packages/core/src/index.ts';
import { rabbitmqMissing, type RabbitServer } from './helpers/rabbitmq.ts';
import { useRabbitMQ } from './helpers/rabbitmq-shared.ts';
import { missing, REDIS_SERVER, startRedis, type RedisServer } from './helpers/services.ts';

const redisSkip = missing(REDIS_SERVER, 'apt-get install redis-server');
const rabbitSkip = rabbitmqMissing();
let redis: RedisServer | undefined;
let rabbit: RabbitServer | undefined;
before(async () => {
  if (!redisSkip) redis = await startRedis();
  if (!rabbitSkip) rabbit = await useRabbitMQ();
});
after(async () => {
  await redis?.stop();
  await rabbit?.stop();
});

/** RabbitMQ queues made by the suite get x-max-priority 10 (task_queue_max_priority), so priorities apply. */
const amqpRouting = {
  queues: null,
  defaultQueue: 'celery',
  defaultExchange: 'celery',
  defaultExchangeType: 'direct' as const,
  defaultRoutingKey: 'celery',
  createMissingQueues: true,
  queueMaxPriority: 10,
};

function message(id: string = randomUUID(), args: unknown[] = [1, 2]) {
  return buildTaskMessage({ taskName: 'conf.task', taskId: id, args, kwargs: {}, origin: 'test', replyTo: 'r', serializer: 'json' });
}

interface Transport {
  name: string;
  skip: string | null;
  broker: () => Promise<Broker>;
  backend?: () => Promise<ResultBackend>;
  /** Consumed first → last for priorities 9, 0, 6, 3: kombu's Redis buckets run 0 first, RabbitMQ runs 9 first. */
  priorityOrder: string[];
  /** The broker pushes to consumers (RabbitMQ): a message given back may go straight to the same consumer. */
  push: boolean;
}

const transports: Transport[] = [
  {
    name: 'memory',
    skip: null,
    broker: () => createBroker(`memory://conf-${randomUUID()}`),
    backend: () => createBackend(`memory://conf-${randomUUID()}`, { resultExpires: 60 }),
    priorityOrder: ['p0', 'p3', 'p6', 'p9'],
    push: false,
  },
  {
    name: 'redis',
    skip: redisSkip,
    broker: () => createBroker(redis!.url(0)),
    backend: () => createBackend(redis!.url(1), { resultExpires: 60 }),
    priorityOrder: ['p0', 'p3', 'p6', 'p9'],
    push: false,
  },
  { name: 'amqp', skip: rabbitSkip, broker: () => createBroker(rabbit!.url, { routing: amqpRouting }), priorityOrder: ['p9', 'p6', 'p3', 'p0'], push: true },
];

for (const t of transports) {
  describe(`broker conformance: ${t.name}`, { skip: t.skip ?? false }, () => {
    let broker: Broker;
    const consumers: Consumer[] = [];
    before(async () => (broker = await t.broker()));
    after(async () => {
      await Promise.all(consumers.map((c) => c.close()));
      await broker.close();
    });
    const q = () => `conf-${randomUUID().slice(0, 8)}`;
    /** A consumer of `queues` with fast liveness/upkeep (deferred messages come back quickly). */
    const consume = async (...queues: string[]) => {
      const c = await broker.openConsumer(queues, { heartbeatIntervalSeconds: 0.1, heartbeatThread: false });
      consumers.push(c);
      return c;
    };

    test('publish → reserve → ack', async () => {
      const queue = q();
      const c = await consume(queue);
      const m = message();
      await broker.publish(m, { exchange: '', routingKey: queue });
      assert.equal(await broker.queueLength(queue), 1);
      const [d, ...rest] = await c.reserve({ max: 10, timeoutMs: 100 });
      assert.equal(rest.length, 0);
      assert.equal(d!.message!.headers.id, m.headers.id);
      assert.deepEqual(d!.message!.body, m.body);
      assert.equal(d!.queue, queue);
      assert.equal(d!.redelivered, false);
      await c.ack([d!]);
      assert.equal(await broker.queueLength(queue), 0);
      assert.deepEqual(await c.reserve({ max: 10, timeoutMs: 50 }), []);
    });

    test('reserve respects max and FIFO order', async () => {
      const queue = q();
      const c = await consume(queue);
      const ids = Array.from({ length: 5 }, () => randomUUID());
      for (const id of ids) await broker.publish(message(id), { exchange: '', routingKey: queue });
      const first = await c.reserve({ max: 3, timeoutMs: 100 });
      const second = await c.reserve({ max: 3, timeoutMs: 100 });
      assert.deepEqual([...first, ...second].map((d) => d.message!.headers.id), ids);
      assert.equal(first.length, 3);
      await c.ack([...first, ...second]);
    });

    test(`priorities: ${t.priorityOrder.join(' before ')} (Celery's semantics on this transport)`, async () => {
      const queue = q();
      const c = await consume(queue);
      const order: [string, number][] = [['p9', 9], ['p0', 0], ['p6', 6], ['p3', 3]]; // one per kombu bucket (0, 3, 6, 9)
      for (const [id, priority] of order) await broker.publish(message(id), { exchange: '', routingKey: queue, priority });
      const got = await c.reserve({ max: 10, timeoutMs: 100 });
      assert.deepEqual(got.map((d) => d.message!.headers.id), t.priorityOrder);
      await c.ack(got);
    });

    test('a blocked reserve wakes up when a message arrives', async () => {
      const queue = q();
      const c = await consume(queue);
      const started = Date.now();
      const pending = c.reserve({ max: 1, timeoutMs: 3000 });
      setTimeout(() => void broker.publish(message('late'), { exchange: '', routingKey: queue }), 100);
      const got = await pending;
      assert.equal(got[0]?.message?.headers.id, 'late');
      assert.ok(Date.now() - started < 1500, `woke after ${Date.now() - started} ms`);
      await c.ack(got);
    });

    test('a blocked reserve wakes for a high-priority message on any consumed queue', async () => {
      const first = q();
      const second = q();
      const c = await consume(first, second);
      let sentAt = 0;
      setTimeout(() => {
        sentAt = Date.now();
        void broker.publish(message('urgent'), { exchange: '', routingKey: second, priority: 9 });
      }, 100);
      const got = await c.reserve({ max: 1, timeoutMs: 5000 });
      assert.equal(got[0]?.message?.headers.id, 'urgent');
      assert.equal(got[0]!.queue, second);
      assert.ok(sentAt > 0 && Date.now() - sentAt < 1000, `woke ${Date.now() - sentAt} ms after the publish (the block was 5 s)`);
      await c.ack(got);
    });

    test('reject with requeue puts the message back; without requeue drops it', async () => {
      const queue = q();
      const c = await consume(queue);
      await broker.publish(message('again'), { exchange: '', routingKey: queue });
      const [d] = await c.reserve({ max: 1, timeoutMs: 100 });
      await c.reject(d!, true);
      const [again] = await c.reserve({ max: 1, timeoutMs: 100 });
      assert.equal(again!.message!.headers.id, 'again');
      await c.reject(again!, false);
      assert.equal(await broker.queueLength(queue), 0);
      assert.deepEqual(await c.reserve({ max: 1, timeoutMs: 50 }), []);
    });

    test('restore gives messages back, marked redelivered', async () => {
      const queue = q();
      const c = await consume(queue);
      await broker.publish(message('restored'), { exchange: '', routingKey: queue });
      const got = await c.reserve({ max: 1, timeoutMs: 100 });
      await c.restore(got);
      const [d] = await c.reserve({ max: 1, timeoutMs: 100 });
      assert.equal(d!.message!.headers.id, 'restored');
      assert.equal(d!.redelivered, true);
      await c.ack([d!]);
    });

    test('defer parks a message; the consumer\'s own upkeep delivers it again when due', async () => {
      const queue = q();
      const c = await consume(queue);
      await broker.publish(message('later'), { exchange: '', routingKey: queue });
      const [d] = await c.reserve({ max: 1, timeoutMs: 100 });
      await c.defer(d!, new Date(Date.now() + 300));
      assert.deepEqual(await c.reserve({ max: 1, timeoutMs: 10 }), []);
      const deadline = Date.now() + 5000;
      let back: Delivery[] = [];
      while (back.length === 0 && Date.now() < deadline) back = await c.reserve({ max: 1, timeoutMs: 100 });
      assert.equal(back[0]?.message?.headers.id, 'later');
      await c.ack(back);
    });

    test('close gives back what the consumer still holds; a second consumer gets it', async () => {
      const queue = q();
      const c = await consume(queue);
      for (const id of ['h1', 'h2']) await broker.publish(message(id), { exchange: '', routingKey: queue });
      const held = await c.reserve({ max: 2, timeoutMs: 100 });
      assert.equal(held.length, 2);
      await c.close();
      assert.deepEqual(await c.reserve({ max: 1, timeoutMs: 10 }), [], 'a closed consumer reserves nothing');
      const other = await consume(queue);
      const back = await other.reserve({ max: 5, timeoutMs: 100 });
      assert.deepEqual(back.map((d) => d.message!.headers.id).sort(), ['h1', 'h2']);
      assert.ok(back.every((d) => d.redelivered));
      await other.ack(back);
    });

    test('settling a delivery a consumer does not hold is a no-op', async () => {
      const queue = q();
      const a = await consume(queue);
      await broker.publish(message('owned'), { exchange: '', routingKey: queue });
      const [d] = await a.reserve({ max: 1, timeoutMs: 100 });
      await a.restore([d!]);
      // A push transport may hand the restored message straight back to `a` (its window is open).
      const b = t.push ? a : await consume(queue);
      const [again] = await b.reserve({ max: 1, timeoutMs: 1000 });
      assert.equal(again!.message!.headers.id, 'owned');
      await a.ack([d!]); // stale: a gave it back
      await a.reject(d!, true);
      await b.restore([again!]);
      const [third] = await b.reserve({ max: 5, timeoutMs: 100 });
      assert.equal(third?.message?.headers.id, 'owned', 'the stale ack did not remove the message');
      assert.equal(await broker.queueLength(queue), 0, 'the stale reject did not requeue a copy');
      await b.ack([third!]);
    });

    test('purge removes waiting messages and says how many', async () => {
      const queue = q();
      for (let i = 0; i < 3; i++) await broker.publish(message(), { exchange: '', routingKey: queue, priority: i * 4 });
      assert.equal(await broker.purge([queue]), 3);
      assert.equal(await broker.queueLength(queue), 0);
    });
  });

  if (!t.backend) continue;
  const openBackend = t.backend;
  describe(`result backend conformance: ${t.name}`, { skip: t.skip ?? false }, () => {
    let backend: ResultBackend;
    before(async () => (backend = await openBackend()));
    after(async () => backend.close());
    const doc = (id: string, status: string, result: unknown) => ({ status, result, traceback: null, children: [], date_done: null, task_id: id });

    test('store, read, forget', async () => {
      const id = randomUUID();
      assert.equal(await backend.getResult(id), null);
      await backend.storeResult(doc(id, 'SUCCESS', { a: [1, 2] }));
      assert.deepEqual(await backend.getResult(id), doc(id, 'SUCCESS', { a: [1, 2] }));
      await backend.forget(id);
      assert.equal(await backend.getResult(id), null);
    });

    test('SUCCESS is never overwritten', async () => {
      const id = randomUUID();
      await backend.storeResult(doc(id, 'SUCCESS', 1));
      await backend.storeResult(doc(id, 'FAILURE', 2));
      assert.equal((await backend.getResult(id))!.status, 'SUCCESS');
    });

    test('waitForResult wakes on a later ready state and ignores non-ready ones', async () => {
      const id = randomUUID();
      const waiting = backend.waitForResult(id, { timeoutMs: 3000 });
      setTimeout(() => void backend.storeResult(doc(id, 'STARTED', null)), 30);
      setTimeout(() => void backend.storeResult(doc(id, 'SUCCESS', 'done')), 100);
      const got = await waiting;
      assert.equal(got.status, 'SUCCESS');
      assert.equal(got.result, 'done');
    });

    test('waitForResult returns a result stored before the wait began', async () => {
      const id = randomUUID();
      await backend.storeResult(doc(id, 'FAILURE', { exc_type: 'X', exc_message: [], exc_module: 'y' }));
      assert.equal((await backend.waitForResult(id, { timeoutMs: 1000 })).status, 'FAILURE');
    });

    test('waitForResult times out with TimeoutError', async () => {
      await assert.rejects(backend.waitForResult(randomUUID(), { timeoutMs: 100 }), TimeoutError);
    });
  });
}
