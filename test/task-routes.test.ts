/**
 * `taskRoutes` in every form Celery 5.2 takes (map with names and globs, [pattern,
 * route] pairs with RegExps, `/regexp/` keys, router functions, lists of routers),
 * Celery's precedence (call options > task attributes > routes > default queue),
 * Celery's queue defaults (`Queues._add`), kombu's topic patterns checked against
 * Python's kombu itself, and exchanges on the memory broker.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { test } from 'node:test';
import { createApp, Worker, type TaskContext, type TaskRoutes } from '../packages/core/src/index.ts';
import { resolveSettings } from '../packages/core/src/config.ts';
import { resolveRoute } from '../packages/core/src/routing.ts';
import { QueueTopology } from '../packages/core/src/brokers/queue-topology.ts';
import { routingFromSettings } from '../packages/core/src/brokers/queue-topology.ts';
import { lookupQueues, topicMatches, topicPattern } from '../packages/core/src/brokers/redis-exchange.ts';
import { missing, SYSTEM_PYTHON } from './helpers/services.ts';

function route(taskRoutes: TaskRoutes, name: string, options = {}, taskDefaults = {}, call = {}) {
  return resolveRoute(name, options, resolveSettings({ taskRoutes }), taskDefaults, call);
}

test('map: exact name, then globs in order; a string value is a queue name; snake or camel keys', () => {
  const routes: TaskRoutes = { 'feed.tasks.import': 'imports', 'feed.tasks.*': { queue: 'feeds', routing_key: 'feed.x' }, 'web.*': { queue: 'web', priority: 2 } };
  assert.deepEqual(route(routes, 'feed.tasks.import'), { queue: 'imports', exchange: '', routingKey: 'imports', priority: undefined });
  // Celery: a direct queue without an exchange goes to exchange '' with the queue name as key, whatever routing_key says.
  assert.deepEqual(route(routes, 'feed.tasks.other'), { queue: 'feeds', exchange: '', routingKey: 'feeds', priority: undefined });
  assert.deepEqual(route(routes, 'web.page'), { queue: 'web', exchange: '', routingKey: 'web', priority: 2 });
  assert.equal(route(routes, 'other').queue, 'celery');
});

test("glob is fnmatch: '?' one character, [seq] a class, the whole name", () => {
  const routes: TaskRoutes = { 'job?.*': 'a', 'x[12].*': 'b' };
  assert.equal(route(routes, 'job1.run').queue, 'a');
  assert.equal(route(routes, 'job12.run').queue, 'celery');
  assert.equal(route(routes, 'x2.run').queue, 'b');
  assert.equal(route(routes, 'x3.run').queue, 'celery');
});

test("pairs with a RegExp match from the name's start (Python re.match), in order; '/…/' keys are regexps in JSON", () => {
  const pairs: TaskRoutes = [
    [
      [/(video|image)\.tasks\./, { queue: 'media' }],
      ['feed.tasks.*', { queue: 'feeds' }],
    ],
  ];
  assert.equal(route(pairs, 'video.tasks.encode').queue, 'media');
  assert.equal(route(pairs, 'image.tasks.resize').queue, 'media');
  assert.equal(route(pairs, 'my.video.tasks.encode').queue, 'celery', 're.match anchors at the start');
  assert.equal(route(pairs, 'feed.tasks.x').queue, 'feeds');
  const fromJson = resolveSettings({ taskRoutes: JSON.parse('{"/^(a|b)\\\\.x$/i": "ab"}') as TaskRoutes });
  assert.equal(resolveRoute('B.X', {}, fromJson).queue, 'ab');
  assert.equal(resolveRoute('c.x', {}, fromJson).queue, 'celery');
});

test("router function gets Celery's (name, args, kwargs, options, task); null asks the next router; a list is asked in order", () => {
  const seen: unknown[] = [];
  const app = createApp('fn-routes', { brokerUrl: 'memory://fn-routes', resultBackend: null });
  const t = app.task('video.encode', () => 1);
  const byArgs = (name: string, args: readonly unknown[], kwargs: Readonly<Record<string, unknown>>, options: object, task: unknown) => {
    seen.push([name, args, kwargs, options, task === t]);
    if (kwargs.hd === true) return { queue: 'hd', priority: 7 };
    if (args[0] === 'big') return 'big';
    return null;
  };
  const routes: TaskRoutes = [byArgs, { 'video.*': 'video' }];
  assert.deepEqual(route(routes, 'video.encode', {}, {}, { args: ['x'], kwargs: { hd: true }, task: t }), { queue: 'hd', exchange: '', routingKey: 'hd', priority: 7 });
  assert.deepEqual(seen[0], ['video.encode', ['x'], { hd: true }, {}, true]);
  assert.equal(route(routes, 'video.encode', {}, {}, { args: ['big'], kwargs: {} }).queue, 'big');
  assert.equal(route(routes, 'video.encode', {}, {}, { args: ['small'], kwargs: {} }).queue, 'video', 'null: the next router decides');
  assert.equal(route(byArgs, 'video.encode', {}, {}, { args: [], kwargs: {} }).queue, 'celery', 'a single function');
});

test("Celery's order: call options, then the task's queue/priority, then taskRoutes (fills what is left), then the default queue", () => {
  const routes: TaskRoutes = { 't.x': { queue: 'routed', routing_key: 'rk', priority: 3 } };
  assert.deepEqual(route(routes, 't.x', { queue: 'mine' }), { queue: 'mine', exchange: '', routingKey: 'mine', priority: 3 });
  assert.deepEqual(route(routes, 't.x', {}, { queue: 'taskq' }), { queue: 'taskq', exchange: '', routingKey: 'taskq', priority: 3 });
  assert.deepEqual(route(routes, 't.x', { priority: 9 }, { priority: 5 }), { queue: 'routed', exchange: '', routingKey: 'routed', priority: 9 });
  assert.deepEqual(route(routes, 't.x', {}, { priority: 5 }), { queue: 'routed', exchange: '', routingKey: 'routed', priority: 5 });
  assert.deepEqual(route(routes, 't.x', { exchange: 'ex', routingKey: 'k' }), { queue: 'routed', exchange: 'ex', routingKey: 'k', priority: 3 });
});

test('bad routes are configuration errors naming the entry and the fix', () => {
  assert.throws(() => resolveSettings({ taskRoutes: { 't.x': { queue: 'q', delivery: 1 } as never } }), /taskRoutes entry t\.x has "delivery": a route takes queue, exchange, routing_key/);
  assert.throws(() => resolveSettings({ taskRoutes: { 't.x': 5 as never } }), /must be a queue name or a route/);
  assert.throws(() => resolveSettings({ taskRoutes: { '/(/': 'q' } }), /not a valid regular expression/);
  const bad = () => ({ queue: 5 }) as never;
  assert.throws(() => route(bad, 't.x'), /the route taskRoutes returned for t\.x: queue must be a string/);
  assert.throws(() => route({ 't.x': { queue: 'q', priority: 12 } }, 't.x'), /priority must be an integer 0–9, got 12/);
});

test("Celery's queue defaults (Queues._add): no exchange → the default exchange, no binding key → the default routing key", () => {
  const topo = new QueueTopology(routingFromSettings(resolveSettings({ taskQueues: [{ name: 'plain' }, { name: 'b', exchange: 'bc', exchangeType: 'fanout' }, { name: 'usa', exchange: 'news', exchangeType: 'topic', routingKey: 'usa.#' }] })));
  assert.deepEqual(topo.declaration('plain')!.bindings, [{ exchange: 'celery', exchangeType: 'direct', routingKey: 'celery' }]);
  assert.deepEqual(topo.declaration('b')!.bindings, [{ exchange: 'bc', exchangeType: 'fanout', routingKey: 'celery' }]);
  assert.deepEqual(topo.declaration('usa')!.bindings, [{ exchange: 'news', exchangeType: 'topic', routingKey: 'usa.#' }]);
  // kombu's Queue(name) for a queue created because it was missing.
  assert.deepEqual(topo.declaration('other')!.bindings, [{ exchange: 'other', exchangeType: 'direct', routingKey: 'other' }]);
  // A send to the fanout queue goes through its exchange with its binding key, as Celery's send_task_message.
  const s = resolveSettings({ taskQueues: [{ name: 'b', exchange: 'bc', exchangeType: 'fanout' }] });
  assert.deepEqual(resolveRoute('t', { queue: 'b' }, s), { queue: 'b', exchange: 'bc', routingKey: 'celery', priority: undefined });
});

const pySkip = missing(SYSTEM_PYTHON, 'Debian python3 with python3-kombu');
test("topic patterns and matches are kombu's own (asked of Python's kombu.transport.virtual.exchange)", { skip: pySkip ?? false }, () => {
  const keys = ['usa.#', '*.weather', '#', 'a.*.c', 'with-dash.#', 'x.y', 'ünï.*', '*'];
  const routingKeys = ['usa.weather', 'usa', 'usa.a.b', 'europe.weather', 'a.b.c', 'a.bb.c', 'a.c', 'with-dash.z', 'x.y', 'xzy', 'ünï.q', 'weather', ''];
  const py = spawnSync(
    SYSTEM_PYTHON,
    [
      '-c',
      `import json,sys
from kombu.transport.virtual.exchange import TopicExchange
t = TopicExchange(None)
keys, rks = json.loads(sys.argv[1]), json.loads(sys.argv[2])
pats = [t.key_to_pattern(k) for k in keys]
print(json.dumps({"patterns": pats, "matches": [[bool(t._match(p, rk)) for rk in rks] for p in pats]}))`,
      JSON.stringify(keys),
      JSON.stringify(routingKeys),
    ],
    { encoding: 'utf8', env: { PATH: process.env.PATH ?? '' } },
  );
  assert.equal(py.status, 0, py.stderr);
  const expected = JSON.parse(py.stdout) as { patterns: string[]; matches: boolean[][] };
  assert.deepEqual(keys.map(topicPattern), expected.patterns);
  assert.deepEqual(
    expected.patterns.map((p) => routingKeys.map((rk) => topicMatches(p, rk))),
    expected.matches,
  );
  assert.deepEqual(lookupQueues('topic', [{ routingKey: 'usa.#', pattern: topicPattern('usa.#'), queue: 'usa' }, { routingKey: '*.weather', pattern: topicPattern('*.weather'), queue: 'w' }], 'usa.weather').sort(), ['usa', 'w']);
});

test('memory broker: topic, fanout and direct exchanges of taskQueues reach the bound queues; a worker consumes them', async () => {
  const app = createApp('mem-routing', {
    brokerUrl: 'memory://mem-routing',
    resultBackend: null,
    taskQueues: [
      { name: 'usa', exchange: 'news', exchangeType: 'topic', routingKey: 'usa.#' },
      { name: 'weather', exchange: 'news', exchangeType: 'topic', routingKey: '*.weather' },
      { name: 'bc-a', exchange: 'bc', exchangeType: 'fanout' },
      { name: 'bc-b', exchange: 'bc', exchangeType: 'fanout' },
      { name: 'd', exchange: 'dx', routingKey: 'dk' },
    ],
  });
  const seen: string[] = [];
  app.task('t.where', function (this: TaskContext, tag: string) {
    seen.push(`${tag}@${this.deliveryInfo?.routingKey}`);
  });
  await app.sendTask('t.where', ['topic'], {}, { exchange: 'news', routingKey: 'usa.weather' });
  await app.sendTask('t.where', ['fan'], {}, { exchange: 'bc', routingKey: 'x' });
  await app.sendTask('t.where', ['direct'], {}, { exchange: 'dx', routingKey: 'dk' });
  const broker = await app.getBroker();
  const lengths = Object.fromEntries(await Promise.all(['usa', 'weather', 'bc-a', 'bc-b', 'd'].map(async (q) => [q, await broker.queueLength(q)] as const)));
  assert.deepEqual(lengths, { usa: 1, weather: 1, 'bc-a': 1, 'bc-b': 1, d: 1 });
  const worker = new Worker(app, { concurrency: 2, logLevel: 'error', heartbeat: false });
  await worker.start();
  try {
    const deadline = Date.now() + 5_000;
    while (seen.length < 5 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
  } finally {
    await worker.stop();
    await app.close();
  }
  assert.deepEqual(seen.sort(), ['direct@dk', 'fan@x', 'fan@x', 'topic@usa.weather', 'topic@usa.weather']);
});

test("the README's routing snippet type-checks without annotations and routes as it says", () => {
  const s = resolveSettings({
    taskQueues: [{ name: 'usa', exchange: 'news', exchangeType: 'topic', routingKey: 'usa.#' }, { name: 'media' }],
    taskRoutes: [(name, args) => (name === 'video.encode' && args[0] === 'hd' ? { queue: 'media', priority: 0 } : null), [[/^(video|image)\./, 'media']]],
  });
  assert.deepEqual(resolveRoute('video.encode', {}, s, {}, { args: ['hd'] }), { queue: 'media', exchange: '', routingKey: 'media', priority: 0 });
  assert.equal(resolveRoute('image.resize', {}, s).queue, 'media');
  assert.equal(resolveRoute('other', {}, s).queue, 'celery');
});

test('memory broker: a send to a configured exchange that reaches no queue fails with the exchange and key, not silently', async () => {
  const app = createApp('mem-unrouted', { brokerUrl: 'memory://mem-unrouted', resultBackend: null, taskQueues: [{ name: 'usa', exchange: 'news', exchangeType: 'topic', routingKey: 'usa.#' }] });
  try {
    await assert.rejects(app.sendTask('t.x', [], {}, { exchange: 'news', routingKey: 'europe.sport' }), /No queue is bound to topic exchange "news" with routing key "europe\.sport"/);
  } finally {
    await app.close();
  }
});
