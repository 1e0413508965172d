/**
 * Celery's routing on RabbitMQ: `taskQueues` with direct, topic (`usa.#`) and
 * fanout exchanges and extra bindings, per-call exchange / routing key,
 * `taskRoutes` to a topic queue, and a worker consuming every configured queue
 * except the `-X` ones.
 */
import assert from 'node:assert/strict';
import { connect } from 'amqplib';
import { after, before, describe, test } from 'node:test';
import { createApp, Worker, type Celeriac, type TaskContext } from '../packages/core/src/index.ts';
import type { QueueSpec } from '../packages/core/src/config.ts';
import { rabbitmqMissing, startRabbitMQ, type RabbitServer } from './helpers/rabbitmq.ts';

const skip = rabbitmqMissing();
let rabbit: RabbitServer | undefined;
let app: Celeriac;

const taskQueues: QueueSpec[] = [
  { name: 'usa', exchange: 'news', exchangeType: 'topic', routingKey: 'usa.#' },
  { name: 'europe', exchange: 'news', exchangeType: 'topic', routingKey: 'europe.#' },
  { name: 'weather', exchange: 'news', exchangeType: 'topic', routingKey: '*.weather', bindings: [{ exchange: 'alerts', exchangeType: 'direct', routingKey: 'storm' }] },
  { name: 'bcast-a', exchange: 'bcast', exchangeType: 'fanout' },
  { name: 'bcast-b', exchange: 'bcast', exchangeType: 'fanout' },
  { name: 'plain', exchange: 'dx', exchangeType: 'direct', routingKey: 'dkey' },
];

before(async () => {
  if (skip) return;
  rabbit = await startRabbitMQ();
  app = createApp('routing', { brokerUrl: rabbit.url, resultBackend: null, taskQueues, taskRoutes: { 'route.usa': { queue: 'usa' } } });
});
after(async () => {
  await app?.close();
  await rabbit?.stop();
});

/** Ready messages per queue (0 for a queue not declared yet: nothing was routed through its exchange), then empty them. */
async function drainCounts(queues: string[]): Promise<Record<string, number>> {
  const conn = await connect(rabbit!.url);
  try {
    const out: Record<string, number> = {};
    for (const q of queues) {
      const ch = await conn.createChannel();
      ch.on('error', () => undefined);
      out[q] = await ch.purgeQueue(q).then((r) => r.messageCount, () => 0);
    }
    return out;
  } finally {
    await conn.close();
  }
}

const ALL = taskQueues.map((q) => q.name);

describe('routing on RabbitMQ', { skip: skip ?? false }, () => {
  test("topic exchange: routing key usa.weather reaches usa (usa.#) and weather (*.weather), not europe", async () => {
    await app.sendTask('t.any', [], {}, { exchange: 'news', routingKey: 'usa.weather' });
    await app.sendTask('t.any', [], {}, { exchange: 'news', routingKey: 'europe.sport' });
    assert.deepEqual(await drainCounts(ALL), { usa: 1, europe: 1, weather: 1, 'bcast-a': 0, 'bcast-b': 0, plain: 0 });
  });

  test('fanout: every bound queue gets a copy', async () => {
    await app.sendTask('t.any', [], {}, { exchange: 'bcast' });
    assert.deepEqual(await drainCounts(ALL), { usa: 0, europe: 0, weather: 0, 'bcast-a': 1, 'bcast-b': 1, plain: 0 });
  });

  test('direct exchange with a binding key, and an extra binding (alerts/storm → weather)', async () => {
    await app.sendTask('t.any', [], {}, { exchange: 'dx', routingKey: 'dkey' });
    await app.sendTask('t.any', [], {}, { exchange: 'alerts', routingKey: 'storm' });
    assert.deepEqual(await drainCounts(ALL), { usa: 0, europe: 0, weather: 1, 'bcast-a': 0, 'bcast-b': 0, plain: 1 });
  });

  test("queue= a topic queue: sent through its exchange with its binding key (Celery's rule); taskRoutes does the same", async () => {
    await app.sendTask('t.any', [], {}, { queue: 'europe' });
    await app.sendTask('route.usa', []);
    assert.deepEqual(await drainCounts(ALL), { usa: 1, europe: 1, weather: 0, 'bcast-a': 0, 'bcast-b': 0, plain: 0 });
  });

  test('a worker consumes every taskQueues queue except -X ones, and sees where each message came from', async () => {
    const seen: string[] = [];
    app.task('t.where', function (this: TaskContext) {
      seen.push(`${this.deliveryInfo?.routingKey ?? '?'}`);
    });
    const worker = new Worker(app, { concurrency: 2, excludeQueues: ['europe', 'bcast-b'], logLevel: 'error' });
    assert.deepEqual(worker.queues, ['usa', 'weather', 'bcast-a', 'plain']);
    await worker.start();
    try {
      await app.sendTask('t.where', [], {}, { exchange: 'news', routingKey: 'usa.news' });
      await app.sendTask('t.where', [], {}, { exchange: 'news', routingKey: 'europe.news' });
      await app.sendTask('t.where', [], {}, { exchange: 'bcast' });
      const deadline = Date.now() + 10_000;
      while (seen.length < 2 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
      await new Promise((r) => setTimeout(r, 300));
      // Without a routing key, Celery uses the default queue's (celery) — a fanout exchange ignores it.
      assert.deepEqual(seen.sort(), ['celery', 'usa.news']);
    } finally {
      await worker.stop();
    }
    assert.deepEqual(await drainCounts(['europe', 'bcast-b']), { europe: 1, 'bcast-b': 1 });
  });
});
