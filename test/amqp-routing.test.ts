/**
 * Celery's routing on RabbitMQ: `taskQueues` with direct, topic (`usa.#`) and
 * fanout exchanges and extra bindings, per-call exchange / routing key,
 * `taskRoutes` in every form (function, RegExp pair, map, glob), priorities (9
 * first with `x-max-priority`), a worker consuming every configured queue except
 * the `-X` ones, queues added and cancelled at run time; and the same topic and
 * priority routing between Python Celery 5.2 and Celeriac, both ways.
 */
import assert from 'node:assert/strict';
import { connect } from 'amqplib';
import { after, before, describe, test } from 'node:test';
import { createApp, Worker, type Celeriac, type TaskContext } from '../packages/core/src/index.ts';
import type { QueueSpec } from '../packages/core/src/config.ts';
import { rabbitmqMissing, type RabbitServer } from './helpers/rabbitmq.ts';
import { useRabbitMQ } from './helpers/rabbitmq-shared.ts';
import { pythonCeleryMissing, redisClient, runPythonProducer, startPythonWorker, type InteropEnv } from './helpers/python-celery.ts';
import { missing, REDIS_SERVER, startRedis, type RedisServer } from './helpers/services.ts';

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
  rabbit = await useRabbitMQ();
  app = createApp('routing', { brokerUrl: rabbit.url, resultBackend: null, taskQueues, taskRoutes: { 'route.usa': { queue: 'usa' } } });
});
after(async () => {
  await app?.close();
  await formsApp?.close();
  await redis?.stop();
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

/** The topology test/python/routing_tasks.py declares too (same arguments, so both declare it alike). */
const formsQueues: QueueSpec[] = [
  { name: 'usa', exchange: 'news', exchangeType: 'topic', routingKey: 'usa.#' },
  { name: 'weather', exchange: 'news', exchangeType: 'topic', routingKey: '*.weather' },
  { name: 'plain', exchange: 'dx', exchangeType: 'direct', routingKey: 'dkey' },
  { name: 'prio', exchange: 'prio', routingKey: 'prio', queueArguments: { 'x-max-priority': 10 } },
  { name: 'celery', exchange: 'celery', routingKey: 'celery' },
];
let formsApp: Celeriac;
let redis: RedisServer | undefined;
const pySkip = skip ?? missing(REDIS_SERVER, 'apt-get install redis-server') ?? pythonCeleryMissing();
const seen: string[] = [];

function startForms(): Celeriac {
  if (formsApp) return formsApp;
  formsApp = createApp('routing-forms', {
    brokerUrl: rabbit!.url,
    resultBackend: null,
    taskQueues: formsQueues,
    taskRoutes: [
      (name: string, args: readonly unknown[]) => (name === 'routing.where' && args[0] === 'fn' ? { queue: 'usa', routing_key: 'usa.fn' } : null),
      [[/^routing\.re\./, 'plain']],
      { 'routing.map': { queue: 'weather', routing_key: 'eu.weather' }, 'routing.glob.*': 'usa' },
    ],
  });
  const record = function (this: TaskContext, tag: string) {
    seen.push(`${tag}@${this.deliveryInfo?.routingKey}`);
  };
  for (const name of ['routing.where', 'routing.re.x', 'routing.map', 'routing.glob.x']) formsApp.task(name, record);
  return formsApp;
}

async function waitUntil(what: string, cond: () => boolean | Promise<boolean>, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

async function withWorker<T>(options: ConstructorParameters<typeof Worker>[1], fn: (w: Worker) => Promise<T>): Promise<T> {
  const worker = new Worker(startForms(), { concurrency: 2, logLevel: 'error', heartbeat: false, mingle: false, ...options });
  await worker.start();
  try {
    return await fn(worker);
  } finally {
    await worker.stop();
  }
}

describe('taskRoutes forms, priorities and run-time queues on RabbitMQ', { skip: skip ?? false }, () => {
  test('taskRoutes forms (function, RegExp pair, map, glob) end to end; -X leaves weather alone', async () => {
    seen.length = 0;
    const a = startForms();
    await withWorker({ excludeQueues: ['weather', 'prio', 'celery'] }, async (w) => {
      assert.deepEqual(w.queues, ['usa', 'plain']);
      await a.sendTask('routing.where', ['fn']);
      await a.sendTask('routing.re.x', ['re']);
      await a.sendTask('routing.map', ['map']);
      await a.sendTask('routing.glob.x', ['glob']);
      await waitUntil('three runs', () => seen.length >= 3);
      await new Promise((r) => setTimeout(r, 200));
    });
    assert.deepEqual(seen.sort(), ['fn@usa.fn', 'glob@usa.#', 're@plain']);
    assert.deepEqual(await drainCounts(['weather']), { weather: 1 });
  });

  test('priorities 0–9 with x-max-priority: 9 first (Celery on RabbitMQ)', async () => {
    seen.length = 0;
    const a = startForms();
    for (const p of [0, 3, 9, 5, 1]) await a.sendTask('routing.where', [`p${p}`], {}, { queue: 'prio', priority: p });
    await withWorker({ queues: ['prio'], concurrency: 1, prefetchMultiplier: 1 }, async () => {
      await waitUntil('five runs', () => seen.length >= 5);
    });
    assert.deepEqual(seen, ['p9@prio', 'p5@prio', 'p3@prio', 'p1@prio', 'p0@prio']);
  });

  test('addConsumer / cancelConsumer at run time (basic.consume / basic.cancel)', async () => {
    seen.length = 0;
    const a = startForms();
    await withWorker({ queues: ['plain'] }, async (w) => {
      assert.equal(await w.addConsumer('extra', { exchange: 'extra-x', routingKey: 'ek' }), true);
      assert.equal(await w.addConsumer('extra'), false);
      await a.sendTask('routing.where', ['x1'], {}, { exchange: 'extra-x', routingKey: 'ek' });
      await waitUntil('run from the added queue', () => seen.includes('x1@ek'));
      assert.equal(await w.cancelConsumer('extra'), true);
      await a.sendTask('routing.where', ['x2'], {}, { queue: 'extra' });
      await a.sendTask('routing.where', ['d1'], {}, { queue: 'plain' });
      await waitUntil('run from plain', () => seen.includes('d1@plain'));
      await new Promise((r) => setTimeout(r, 300));
      assert.ok(!seen.includes('x2@extra'), 'nothing taken from the cancelled queue');
    });
    assert.deepEqual(await drainCounts(['extra']), { extra: 1 });
  });
});

describe('topic and priority routing between Python Celery 5.2 and Celeriac over RabbitMQ', { skip: pySkip ?? false }, () => {
  let env: InteropEnv;
  before(async () => {
    redis = await startRedis();
    env = { INTEROP_BROKER_URL: rabbit!.url, INTEROP_BACKEND_URL: redis.url(1), INTEROP_RECORD_URL: redis.url(2) };
  });

  test('Python sends to topic queue usa with key usa.weather: the Celeriac worker on usa and weather runs both copies', async () => {
    seen.length = 0;
    await withWorker({ queues: ['usa', 'weather'] }, async () => {
      await runPythonProducer('topic', env, ['py-topic', 'usa.weather'], 30_000, 'routing_tasks.py');
      await waitUntil('two topic copies', () => seen.length >= 2);
      await new Promise((r) => setTimeout(r, 200));
    });
    assert.deepEqual(seen, ['py-topic@usa.weather', 'py-topic@usa.weather']);
  });

  test('Python sends priorities 0, 3, 9, 5, 1: the Celeriac worker runs them 9 first', async () => {
    seen.length = 0;
    for (const p of [0, 3, 9, 5, 1]) await runPythonProducer('priority', env, [`py${p}`, String(p)], 30_000, 'routing_tasks.py');
    await withWorker({ queues: ['prio'], concurrency: 1, prefetchMultiplier: 1 }, async () => {
      await waitUntil('five runs', () => seen.length >= 5);
    });
    assert.deepEqual(seen, ['py9@prio', 'py5@prio', 'py3@prio', 'py1@prio', 'py0@prio']);
  });

  test('Celeriac sends a topic message and five priorities: the Python worker runs both topic copies and the priorities 9 first', async () => {
    const a = startForms();
    const rec = redisClient(env.INTEROP_RECORD_URL);
    await rec.del('interop:executions');
    for (const p of [0, 3, 9, 5, 1]) await a.sendTask('routing.where', [`ts${p}`], {}, { queue: 'prio', priority: p });
    await a.sendTask('routing.where', ['ts-topic'], {}, { exchange: 'news', routingKey: 'usa.weather' });
    const py = await startPythonWorker({ env, queues: ['prio'], module: 'routing_tasks', hostname: 'py@routing' });
    try {
      await waitUntil('five priority runs', async () => (await rec.llen('interop:executions')) >= 5, 30_000);
      assert.deepEqual(await rec.lrange('interop:executions', 0, -1), ['py:ts9@prio@9', 'py:ts5@prio@5', 'py:ts3@prio@3', 'py:ts1@prio@1', 'py:ts0@prio@0']);
    } finally {
      await py.stop();
    }
    await rec.del('interop:executions');
    const pyTopic = await startPythonWorker({ env, queues: ['usa', 'weather'], module: 'routing_tasks', hostname: 'py@routing' });
    try {
      await waitUntil('two topic runs', async () => (await rec.llen('interop:executions')) >= 2, 30_000);
      await new Promise((r) => setTimeout(r, 300));
      assert.deepEqual(await rec.lrange('interop:executions', 0, -1), ['py:ts-topic@usa.weather@0', 'py:ts-topic@usa.weather@0']);
    } finally {
      await pyTopic.stop();
      rec.disconnect();
    }
  });
});
