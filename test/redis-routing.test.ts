/**
 * Celery's routing on Redis through kombu's emulation, checked against Python's
 * kombu and Celery 5.2: the `_kombu.binding.*` members (Python declaring the same
 * queues adds nothing), topic routing (`usa.#`, `*.weather`), fanout through
 * PUBLISH on kombu's channel names, direct exchanges with a binding key, taskRoutes
 * forms end to end, priorities, `-X`, and queues added and cancelled at run time
 * (the API, `app.control`, and Python's `celery control add_consumer`).
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { after, before, describe, test } from 'node:test';
import type { Redis } from 'ioredis';
import { createApp, Worker, type Celeriac, type TaskContext } from '../packages/core/src/index.ts';
import type { QueueSpec } from '../packages/core/src/config.ts';
import { missing, REDIS_SERVER, startRedis, SYSTEM_PYTHON, type RedisServer } from './helpers/services.ts';
import { interopEnv, pythonCeleryMissing, redisClient, runCeleryCli, runPythonProducer, startPythonWorker, type InteropEnv } from './helpers/python-celery.ts';

const skip = missing(REDIS_SERVER, 'apt-get install redis-server');
const pySkip = skip ?? pythonCeleryMissing();
const SEP = '\x06\x16';

/** The topology test/python/routing_tasks.py declares too. */
const taskQueues: QueueSpec[] = [
  { name: 'usa', exchange: 'news', exchangeType: 'topic', routingKey: 'usa.#' },
  { name: 'weather', exchange: 'news', exchangeType: 'topic', routingKey: '*.weather' },
  { name: 'bc-a', exchange: 'bc', exchangeType: 'fanout' },
  { name: 'bc-b', exchange: 'bc', exchangeType: 'fanout' },
  { name: 'plain', exchange: 'dx', routingKey: 'dkey' },
  { name: 'prio', exchange: 'prio', routingKey: 'prio', queueArguments: { 'x-max-priority': 10 } },
  { name: 'celery', exchange: 'celery', routingKey: 'celery' },
];

let redis: RedisServer | undefined;
let env: InteropEnv;
let client: Redis;
let app: Celeriac;
const seen: string[] = [];

before(async () => {
  if (skip) return;
  redis = await startRedis();
  env = interopEnv(redis);
  client = redisClient(redis.url(0));
  app = createApp('routing', {
    brokerUrl: redis.url(0),
    resultBackend: null,
    taskQueues,
    taskRoutes: [
      (name: string, args: readonly unknown[]) => (name === 'routing.where' && args[0] === 'fn' ? { queue: 'usa', routing_key: 'usa.fn' } : null),
      [[/^routing\.re\./, 'plain']],
      { 'routing.map': { queue: 'weather', routing_key: 'eu.weather' }, 'routing.glob.*': 'bc-a' },
    ],
  });
  const record = function (this: TaskContext, tag: string) {
    seen.push(`${tag}@${this.deliveryInfo?.routingKey}`);
  };
  app.task('routing.where', record);
  app.task('routing.re.x', record);
  app.task('routing.map', record);
  app.task('routing.glob.x', record);
});
after(async () => {
  client?.disconnect();
  await app?.close();
  await redis?.stop();
});

async function waitUntil(what: string, cond: () => boolean | Promise<boolean>, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

/** Ready messages per queue (all priority lists), then empty them. */
async function drainCounts(queues: string[]): Promise<Record<string, number>> {
  const broker = await app.getBroker();
  const out: Record<string, number> = {};
  for (const q of queues) out[q] = await broker.purge([q]);
  return out;
}
const ALL = taskQueues.map((q) => q.name);

async function withWorker<T>(options: ConstructorParameters<typeof Worker>[1], fn: (w: Worker) => Promise<T>): Promise<T> {
  const worker = new Worker(app, { concurrency: 2, logLevel: 'error', heartbeat: false, mingle: false, ...options });
  await worker.start();
  try {
    return await fn(worker);
  } finally {
    await worker.stop();
  }
}

describe('routing on Redis (kombu emulation)', { skip: skip ?? false }, () => {
  test('topic exchange: routing key usa.weather reaches usa (usa.#) and weather (*.weather), europe.sport reaches nothing bound → clear error', async () => {
    await app.sendTask('routing.where', ['t'], {}, { exchange: 'news', routingKey: 'usa.weather' });
    await app.sendTask('routing.where', ['t'], {}, { exchange: 'news', routingKey: 'eu.weather' });
    await assert.rejects(app.sendTask('routing.where', ['t'], {}, { exchange: 'news', routingKey: 'europe.sport' }), /No queue is bound to topic exchange "news" with routing key "europe\.sport"/);
    assert.deepEqual(await drainCounts(ALL), { usa: 1, weather: 2, 'bc-a': 0, 'bc-b': 0, plain: 0, prio: 0, celery: 0 });
  });

  test("binding members are kombu's: Python declaring the same queues adds no member", { skip: pySkip ?? false }, async () => {
    await withWorker({}, async () => undefined); // consuming every taskQueues queue declares them all
    const sets = ['news', 'bc', 'dx', 'prio', 'celery'].map((x) => `_kombu.binding.${x}`);
    const before = Object.fromEntries(await Promise.all(sets.map(async (k) => [k, (await client.smembers(k)).sort()] as const)));
    assert.deepEqual(before['_kombu.binding.news'], [`*.weather${SEP}^.*?[^\\.]\\.weather$${SEP}weather`, `usa.#${SEP}^usa\\..*?$${SEP}usa`]);
    // app.amqp.queues: task_queues as Celery's Queues._add completes them (a fanout queue's key becomes `celery`).
    const py = spawnSync(SYSTEM_PYTHON, ['-c', 'import routing_tasks as r\nwith r.app.connection_for_write() as c:\n    ch = c.default_channel\n    for q in r.app.amqp.queues.values(): q(ch).declare()\n'], {
      cwd: 'test/python',
      env: { PATH: process.env.PATH ?? '', PYTHONPATH: '.', INTEROP_BROKER_URL: env.INTEROP_BROKER_URL },
      encoding: 'utf8',
    });
    assert.equal(py.status, 0, py.stderr);
    const afterPy = Object.fromEntries(await Promise.all(sets.filter((k) => k !== '_kombu.binding.dx').map(async (k) => [k, (await client.smembers(k)).sort()] as const)));
    for (const [k, members] of Object.entries(afterPy)) assert.deepEqual(members, before[k], `${k} changed when Python declared the same queues`);
  });

  test('fanout: every subscribed queue gets a copy through PUBLISH /0.bc/…; nobody subscribed → clear error, nothing silently lost', async () => {
    await assert.rejects(app.sendTask('routing.where', ['f0'], {}, { exchange: 'bc', routingKey: 'celery' }), /Nobody is subscribed to fanout exchange "bc"/);
    seen.length = 0;
    await withWorker({ queues: ['bc-a', 'bc-b'] }, async () => {
      const subs = (await client.call('PUBSUB', 'NUMPAT')) as number;
      assert.ok(subs >= 1, 'the worker PSUBSCRIBEd kombu topics');
      await app.sendTask('routing.where', ['f1'], {}, { queue: 'bc-a' });
      await waitUntil('two fanout copies', () => seen.length >= 2);
      await new Promise((r) => setTimeout(r, 200));
    });
    assert.deepEqual(seen, ['f1@celery', 'f1@celery']);
  });

  test('direct exchange with a binding key; -X leaves a queue alone; taskRoutes forms (function, RegExp pair, map, glob) end to end', async () => {
    seen.length = 0;
    await withWorker({ excludeQueues: ['weather', 'bc-b', 'prio', 'celery'] }, async (w) => {
      assert.deepEqual(w.queues, ['usa', 'bc-a', 'plain']);
      await app.sendTask('routing.where', ['direct'], {}, { exchange: 'dx', routingKey: 'dkey' });
      await app.sendTask('routing.where', ['fn']);
      await app.sendTask('routing.re.x', ['re']);
      await app.sendTask('routing.map', ['map']);
      await app.sendTask('routing.glob.x', ['glob']);
      await waitUntil('four runs', () => seen.length >= 4);
      await new Promise((r) => setTimeout(r, 200));
    });
    assert.deepEqual(seen.sort(), ['direct@dkey', 'fn@usa.fn', 'glob@celery', 're@plain']);
    // routing.map went to weather, which -X excluded: still there.
    assert.deepEqual(await drainCounts(['weather']), { weather: 1 });
  });

  test('priorities 0–9: kombu buckets, 0 first (Celery on Redis), FIFO within a bucket', async () => {
    seen.length = 0;
    for (const p of [9, 6, 3, 0, 5, 1]) await app.sendTask('routing.where', [`p${p}`], {}, { queue: 'prio', priority: p });
    await withWorker({ queues: ['prio'], concurrency: 1, prefetchMultiplier: 1 }, async () => {
      await waitUntil('six runs', () => seen.length >= 6);
    });
    // Buckets 0/3/6/9 (the largest step ≤ p): 0 and 1 → 0, 3 and 5 → 3, 6 → 6, 9 → 9.
    assert.deepEqual(seen, ['p0@prio', 'p1@prio', 'p3@prio', 'p5@prio', 'p6@prio', 'p9@prio']);
  });

  test('addConsumer / cancelConsumer at run time: a new queue is consumed, a cancelled one left alone', async () => {
    seen.length = 0;
    await withWorker({ queues: ['usa'] }, async (w) => {
      assert.equal(await w.addConsumer('extra'), true);
      assert.equal(await w.addConsumer('extra'), false, 'consumed already');
      assert.deepEqual(w.queues, ['usa', 'extra']);
      assert.deepEqual(await client.smembers('_kombu.binding.extra'), [`extra${SEP}${SEP}extra`]);
      await app.sendTask('routing.where', ['x1'], {}, { queue: 'extra' });
      await waitUntil('run from the added queue', () => seen.includes('x1@extra'));
      assert.equal(await w.cancelConsumer('extra'), true);
      assert.equal(await w.cancelConsumer('extra'), false);
      await app.sendTask('routing.where', ['x2'], {}, { queue: 'extra' });
      await app.sendTask('routing.where', ['u1'], {}, { queue: 'usa' });
      await waitUntil('run from usa', () => seen.includes('u1@usa.#'));
      await new Promise((r) => setTimeout(r, 300));
      assert.ok(!seen.includes('x2@extra'), 'nothing taken from the cancelled queue');
      // A fanout queue added at run time subscribes too.
      await w.addConsumer('bc-b');
      await app.sendTask('routing.where', ['fb'], {}, { exchange: 'bc', routingKey: 'celery' });
      await waitUntil('fanout copy to the added queue', () => seen.includes('fb@celery'));
    });
    assert.deepEqual(await drainCounts(['extra']), { extra: 1 });
  });

  test("remote control from app.control: add_consumer / cancel_consumer with Celery's replies", async () => {
    seen.length = 0;
    await withWorker({ queues: ['usa'], hostname: 'ts@routing' }, async (w) => {
      const added = await app.control.addConsumer('rc', { reply: true, destination: ['ts@routing'] });
      assert.deepEqual(added, [{ 'ts@routing': { ok: 'add consumer rc' } }]);
      await waitUntil('queue rc consumed', () => w.queues.includes('rc'));
      await app.sendTask('routing.where', ['rc1'], {}, { queue: 'rc' });
      await waitUntil('run from rc', () => seen.includes('rc1@rc'));
      const active = (await app.control.inspect({ destination: ['ts@routing'] }).activeQueues()) as Record<string, { name: string }[]> | null;
      assert.deepEqual(active?.['ts@routing']?.map((q) => q.name), ['usa', 'rc']);
      const cancelled = await app.control.cancelConsumer('rc', { reply: true, destination: ['ts@routing'] });
      assert.deepEqual(cancelled, [{ 'ts@routing': { ok: 'no longer consuming from rc' } }]);
      await waitUntil('queue rc dropped', () => !w.queues.includes('rc'));
    });
  });

  test('remote control from Python: celery control add_consumer / cancel_consumer', { skip: pySkip ?? false }, async () => {
    seen.length = 0;
    await withWorker({ queues: ['usa'], hostname: 'ts@routing' }, async (w) => {
      const add = await runCeleryCli(env, ['control', 'add_consumer', 'pyq', '-d', 'ts@routing', '-t', '5']);
      assert.equal(add.code, 0, add.stderr);
      assert.match(add.stdout, /ts@routing: OK\s+add consumer pyq/);
      await waitUntil('queue pyq consumed', () => w.queues.includes('pyq'));
      await app.sendTask('routing.where', ['py1'], {}, { queue: 'pyq' });
      await waitUntil('run from pyq', () => seen.includes('py1@pyq'));
      const cancel = await runCeleryCli(env, ['control', 'cancel_consumer', 'pyq', '-d', 'ts@routing', '-t', '5']);
      assert.equal(cancel.code, 0, cancel.stderr);
      assert.match(cancel.stdout, /ts@routing: OK\s+no longer consuming from pyq/);
      await waitUntil('queue pyq dropped', () => !w.queues.includes('pyq'));
    });
  });
});

describe('routing between Python Celery 5.2 and Celeriac on Redis', { skip: pySkip ?? false }, () => {
  test('Python sends to topic queue usa with key usa.weather: a Celeriac worker on usa and weather runs both copies', async () => {
    seen.length = 0;
    await withWorker({ queues: ['usa', 'weather'] }, async () => {
      await runPythonProducer('topic', env, ['py-topic', 'usa.weather'], 30_000, 'routing_tasks.py');
      await waitUntil('two topic copies', () => seen.length >= 2);
      await new Promise((r) => setTimeout(r, 200));
    });
    assert.deepEqual(seen, ['py-topic@usa.weather', 'py-topic@usa.weather']);
  });

  test('Python sends to fanout queue bc-a: kombu PUBLISHes, the subscribed Celeriac worker runs it', async () => {
    seen.length = 0;
    await withWorker({ queues: ['bc-a'] }, async () => {
      await runPythonProducer('fanout', env, ['py-fan'], 30_000, 'routing_tasks.py');
      await waitUntil('fanout copy', () => seen.length >= 1);
    });
    assert.deepEqual(seen, ['py-fan@celery']);
  });

  test('Celeriac sends topic and fanout messages: a Python worker on usa, weather and bc-a runs each copy', async () => {
    const rec = redisClient(env.INTEROP_RECORD_URL);
    await rec.del('interop:executions');
    const py = await startPythonWorker({ env, queues: ['usa', 'weather', 'bc-a'], module: 'routing_tasks', hostname: 'py@routing' });
    try {
      await app.sendTask('routing.where', ['ts-topic'], {}, { exchange: 'news', routingKey: 'usa.weather' });
      await app.sendTask('routing.where', ['ts-fan'], {}, { queue: 'bc-a' });
      await waitUntil('three Python runs', async () => (await rec.llen('interop:executions')) >= 3, 30_000);
      await new Promise((r) => setTimeout(r, 300));
      assert.deepEqual((await rec.lrange('interop:executions', 0, -1)).sort(), ['py:ts-fan@celery@0', 'py:ts-topic@usa.weather@0', 'py:ts-topic@usa.weather@0']);
    } finally {
      await py.stop();
      rec.disconnect();
    }
  });
});
