/**
 * @celeriac/fastify on the embedded memory:// broker, driven with fastify.inject
 * (and a real listen for SSE): the plugin's decorators, config sources, request
 * context, status and SSE routes, authorize / tracebacks, shutdown, and the 503
 * a broker outage turns into.
 */
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import { after, describe, test } from 'node:test';
import Fastify, { type FastifyInstance } from 'fastify';
import fastifyEnv from '@fastify/env';
import { createApp, currentRequestContext, type Celeriac } from '@celeriac/core';
import celeriacPlugin, { celeriacPlugin as namedPlugin, celeriacStatusRoutes, type CeleriacPluginOptions, type StatusRoutesOptions } from '@celeriac/fastify';
import { add, app, fail, gated, openGate, seen } from './apps/fastify-app.ts';
import { freePort } from './helpers/services.ts';
import { parseSse, SseReader, type SseEvent } from './helpers/sse.ts';
import { waitFor } from './helpers/worker-process.ts';

const BROKER = 'memory://fastify-test';
const TRACEPARENT = '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01';
const TRACESTATE = 'congo=t61rcWkgMzE,rojo=00f067aa0ba902b7';

const open = new Set<FastifyInstance>();
after(async () => {
  for (const f of open) await f.close();
});

interface Status {
  taskId: string;
  state: string;
  ready: boolean;
  result?: unknown;
  progress?: unknown;
  error?: { type: string; message: string; traceback?: string };
  dateDone: string | null;
}

/** A status without its (time-dependent) dateDone, which must be set once ready. */
function settled(status: Status): Omit<Status, 'dateDone'> {
  const { dateDone, ...rest } = status;
  assert.equal(dateDone !== null, status.ready, `dateDone ${dateDone} for state ${status.state}`);
  return rest;
}

/** The status events of an SSE body (unnamed events), and its closing `end` event. */
function statusEvents(events: SseEvent[]): { statuses: Status[]; end: unknown } {
  return { statuses: events.filter((e) => e.event === 'message').map((e) => e.data as Status), end: events.find((e) => e.event === 'end')?.data };
}

/** A Fastify app with the plugin on `app`, the status routes at /tasks, and routes that send the test tasks. */
async function server(options: Partial<CeleriacPluginOptions> = {}, routes: StatusRoutesOptions = {}): Promise<FastifyInstance> {
  const fastify = Fastify({ requestIdHeader: 'x-request-id' });
  open.add(fastify);
  await fastify.register(celeriacPlugin, { app, brokerUrl: BROKER, ...options });
  await fastify.register(celeriacStatusRoutes, { prefix: '/tasks', ...routes });
  fastify.post<{ Body: { x: number; y: number } }>('/add', async (request, reply) => {
    const result = await request.tasks.delay(add, request.body.x, request.body.y);
    return reply.code(202).send({ id: result.id });
  });
  fastify.post('/seen', async (request) => ({ id: (await request.tasks.delay(seen)).id }));
  fastify.post<{ Body: { message: string } }>('/fail', async (request) => ({ id: (await request.tasks.applyAsync(fail, [request.body.message])).id }));
  fastify.post<{ Body: { tag: string } }>('/gated', async (request) => ({ id: (await request.tasks.send('fx.gated', [request.body.tag])).id }));
  return fastify;
}

/** Poll GET <prefix>/:id until the task is ready. */
async function pollUntilReady(fastify: FastifyInstance, id: string, prefix = '/tasks', headers: Record<string, string> = {}): Promise<Status> {
  let status: Status | undefined;
  await waitFor(
    async () => {
      const res = await fastify.inject({ method: 'GET', url: `${prefix}/${id}`, headers });
      assert.equal(res.statusCode, 200, res.body);
      status = res.json<Status>();
      return status.ready;
    },
    10_000,
    `task ${id} ready`,
  );
  return status!;
}

describe('plugin shape', () => {
  test('fastify-plugin metadata, named and default export, decorators', async () => {
    assert.equal(celeriacPlugin, namedPlugin);
    const meta = (celeriacPlugin as unknown as Record<symbol, { fastify: string; name: string }>)[Symbol.for('plugin-meta')];
    assert.deepEqual({ fastify: meta.fastify, name: meta.name }, { fastify: '5.x', name: '@celeriac/fastify' });
    const fastify = await server();
    await fastify.ready();
    assert.equal(fastify.celeriac, app);
    assert.ok(fastify.hasRequestDecorator('tasks'));
    assert.equal(fastify.celeriac.settings.brokerUrl, BROKER);
    // Not encapsulated: a sibling plugin registered after it sees fastify.celeriac.
    const sibling = Fastify();
    open.add(sibling);
    await sibling.register(celeriacPlugin, { app, brokerUrl: BROKER, worker: false });
    let seenInChild: Celeriac | undefined;
    await sibling.register(async (child) => void (seenInChild = child.celeriac));
    assert.equal(seenInChild, app);
    await sibling.close();
    open.delete(sibling);
  });

  test('the CommonJS build registers as the module object (require) and shares the app with the ESM build', async () => {
    const cjs = createRequire(import.meta.url)('@celeriac/fastify') as { celeriacPlugin: unknown; default: unknown; celeriacStatusRoutes: unknown };
    assert.notEqual(cjs.celeriacPlugin, celeriacPlugin, 'a second copy: the CommonJS build');
    assert.equal(cjs.default, cjs.celeriacPlugin);
    const fastify = Fastify();
    open.add(fastify);
    await fastify.register(cjs as never, { app, brokerUrl: BROKER });
    await fastify.register(cjs.celeriacStatusRoutes as never, { prefix: '/tasks' });
    fastify.post('/add', async (request) => ({ id: (await request.tasks.delay(add, 40, 2)).id }));
    const { id } = (await fastify.inject({ method: 'POST', url: '/add' })).json<{ id: string }>();
    assert.deepEqual(settled(await pollUntilReady(fastify, id)), { taskId: id, state: 'SUCCESS', ready: true, result: 42 });
    await fastify.close();
    open.delete(fastify);
  });

  test('a misspelt option fails registration naming it', async () => {
    const fastify = Fastify();
    await assert.rejects(
      async () => {
        await fastify.register(celeriacPlugin, { app, brokerURL: 'memory://x' } as CeleriacPluginOptions);
        await fastify.ready();
      },
      (err: Error) => /unknown option "brokerURL"/.test(err.message) && /brokerUrl/.test(err.message),
    );
  });

  test('the status routes without the plugin fail registration with the fix', async () => {
    const fastify = Fastify();
    await assert.rejects(async () => {
      await fastify.register(celeriacStatusRoutes, { prefix: '/tasks' });
      await fastify.ready();
    }, /needs celeriacPlugin: register it first/);
  });
});

describe('request → task → embedded worker → result', () => {
  test('polled over GET /tasks/:id and streamed over GET /tasks/:id/events (inject)', async () => {
    const fastify = await server();
    const sent = await fastify.inject({ method: 'POST', url: '/add', payload: { x: 2, y: 3 } });
    assert.equal(sent.statusCode, 202, sent.body);
    const { id } = sent.json<{ id: string }>();
    assert.deepEqual(settled(await pollUntilReady(fastify, id)), { taskId: id, state: 'SUCCESS', ready: true, result: 5 });
    const events = await fastify.inject({ method: 'GET', url: `/tasks/${id}/events` });
    assert.equal(events.statusCode, 200);
    assert.match(String(events.headers['content-type']), /^text\/event-stream/);
    const { statuses, end } = statusEvents(parseSse(events.body));
    assert.deepEqual(settled(statuses.at(-1)!), { taskId: id, state: 'SUCCESS', ready: true, result: 5 });
    assert.deepEqual(end, { taskId: id, state: 'SUCCESS' });
  });

  test('SSE over a real connection: PROGRESS, then SUCCESS, then the stream ends', async () => {
    const fastify = await server();
    const address = await fastify.listen({ port: await freePort(), host: '127.0.0.1' });
    const { id } = (await (await fetch(`${address}/gated`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"tag":"sse-1"}' })).json()) as { id: string };
    const response = await fetch(`${address}/tasks/${id}/events`);
    assert.equal(response.status, 200);
    assert.match(response.headers.get('content-type') ?? '', /^text\/event-stream/);
    assert.equal(response.headers.get('x-accel-buffering'), 'no');
    const stream = new SseReader(response);
    await stream.waitFor((e) => (e.data as Status).state === 'PROGRESS');
    await waitFor(() => openGate('sse-1'), 5000, 'fx.gated reached its gate');
    const { statuses, end } = statusEvents(await stream.end());
    assert.deepEqual(settled(statuses.find((s) => s.state === 'PROGRESS')!), { taskId: id, state: 'PROGRESS', ready: false, progress: { tag: 'sse-1', step: 1 } });
    assert.deepEqual(settled(statuses.at(-1)!), { taskId: id, state: 'SUCCESS', ready: true, result: 'sse-1' });
    assert.deepEqual(end, { taskId: id, state: 'SUCCESS' });
  });

  test('an unknown id is PENDING, as in Celery', async () => {
    const fastify = await server();
    const res = await fastify.inject({ method: 'GET', url: '/tasks/no-such-task' });
    assert.deepEqual(res.json(), { taskId: 'no-such-task', state: 'PENDING', ready: false, dateDone: null });
    const bad = await fastify.inject({ method: 'GET', url: `/tasks/${encodeURIComponent('bad id!')}` });
    assert.equal(bad.statusCode, 400);
    assert.equal(bad.json<{ code: string }>().code, 'CELERIAC_BAD_TASK_ID');
  });
});

describe('request context', () => {
  test('request.id, traceparent / tracestate and hook headers reach the task', async () => {
    const fastify = await server({ headers: (request) => ({ tenant: String(request.headers['x-tenant']) }) });
    const sent = await fastify.inject({
      method: 'POST',
      url: '/seen',
      headers: { 'x-request-id': 'req-abc-123', traceparent: TRACEPARENT, tracestate: TRACESTATE, 'x-tenant': 'acme' },
    });
    const status = await pollUntilReady(fastify, sent.json<{ id: string }>().id);
    assert.deepEqual(status.result, { requestId: 'req-abc-123', traceparent: TRACEPARENT, tracestate: TRACESTATE, tenant: 'acme' });
  });

  test("without a request id header, Fastify's own request.id is used; no trace headers are invented", async () => {
    const fastify = await server();
    let requestId = '';
    fastify.addHook('onRequest', async (request) => {
      if (request.url === '/seen') requestId = String(request.id);
    });
    const sent = await fastify.inject({ method: 'POST', url: '/seen' });
    const status = await pollUntilReady(fastify, sent.json<{ id: string }>().id);
    assert.ok(requestId.length > 0);
    assert.deepEqual(status.result, { requestId, traceparent: null, tracestate: null, tenant: null });
  });

  test('AsyncLocalStorage holds the request context in the handler, after the body was parsed', async () => {
    const fastify = await server();
    fastify.post('/context', async () => {
      const context = currentRequestContext();
      return { requestId: context?.requestId ?? null, traceparent: context?.traceparent ?? null };
    });
    const injected = await fastify.inject({ method: 'POST', url: '/context', headers: { 'x-request-id': 'req-als', traceparent: TRACEPARENT }, payload: { some: 'body' } });
    assert.deepEqual(injected.json(), { requestId: 'req-als', traceparent: TRACEPARENT });
    // Over a socket the body arrives in later reads, whose callbacks run outside the onRequest hook's context.
    const address = await fastify.listen({ port: await freePort(), host: '127.0.0.1' });
    const body = JSON.stringify({ some: 'x'.repeat(200_000) });
    const res = await fetch(`${address}/context`, { method: 'POST', headers: { 'content-type': 'application/json', 'x-request-id': 'req-als-2', traceparent: TRACEPARENT }, body });
    assert.deepEqual(await res.json(), { requestId: 'req-als-2', traceparent: TRACEPARENT });
  });
});

describe('status routes: authorize and tracebacks', () => {
  test('authorize answers 403 JSON on both routes; errors shown without their traceback', async () => {
    const fastify = await server({}, { authorize: (request) => request.headers['x-user'] === 'alice' });
    await fastify.register(celeriacStatusRoutes, { prefix: '/debug/tasks', tracebacks: true });
    const { id } = (await fastify.inject({ method: 'POST', url: '/fail', payload: { message: 'no such page' } })).json<{ id: string }>();
    for (const url of [`/tasks/${id}`, `/tasks/${id}/events`]) {
      const denied = await fastify.inject({ method: 'GET', url, headers: { 'x-user': 'mallory' } });
      assert.equal(denied.statusCode, 403, url);
      assert.match(String(denied.headers['content-type']), /^application\/json/);
      assert.deepEqual(denied.json(), { statusCode: 403, code: 'CELERIAC_TASK_FORBIDDEN', error: 'Forbidden', message: `Not allowed to read task ${id}.` });
    }
    const status = await pollUntilReady(fastify, id, '/tasks', { 'x-user': 'alice' });
    assert.equal(status.state, 'FAILURE');
    assert.deepEqual(status.error, { type: 'RangeError', message: 'no such page' });
    const debug = await pollUntilReady(fastify, id, '/debug/tasks');
    assert.equal(debug.error?.type, 'RangeError');
    assert.match(debug.error?.traceback ?? '', /RangeError: no such page/);
  });
});

describe('config', () => {
  test('from fastify.config (@fastify/env), plugin options winning', async () => {
    const envApp = createApp('fastify-env-config');
    envApp.task('fx.env.add', (x: number, y: number) => x + y);
    const fastify = Fastify();
    open.add(fastify);
    await fastify.register(fastifyEnv, {
      schema: { type: 'object', properties: { PORT: { type: 'integer' }, CELERY_BROKER_URL: { type: 'string' }, CELERY_RESULT_EXPIRES: { type: 'integer' }, CELERY_TASK_DEFAULT_QUEUE: { type: 'string' } } },
      data: { PORT: '8080', CELERY_BROKER_URL: 'memory://env-config', CELERY_RESULT_EXPIRES: '120', CELERY_TASK_DEFAULT_QUEUE: 'from-env' },
    });
    await fastify.register(celeriacPlugin, { app: envApp, taskDefaultQueue: 'from-options' });
    fastify.post('/add', async (request) => ({ id: (await request.tasks.send('fx.env.add', [20, 22])).id }));
    await fastify.ready();
    assert.equal(envApp.settings.brokerUrl, 'memory://env-config');
    assert.equal(envApp.settings.resultExpires, 120);
    assert.equal(envApp.settings.taskDefaultQueue, 'from-options');
    // memory:// → the embedded worker consumes that queue.
    const { id } = (await fastify.inject({ method: 'POST', url: '/add' })).json<{ id: string }>();
    assert.equal(await envApp.AsyncResult(id).get({ timeout: 10_000 }), 42);
  });

  test('binding the app again to another broker fails with a clear error', async () => {
    const first = await server();
    await first.ready();
    const second = Fastify();
    await assert.rejects(async () => {
      await second.register(celeriacPlugin, { app, brokerUrl: 'memory://another-broker' });
      await second.ready();
    }, /memory:\/\/another-broker|already bound/);
  });
});

describe('embedded worker', () => {
  test('worker: false on memory:// runs none: the message waits in the queue until a worker comes', async () => {
    const quiet = createApp('fastify-no-worker');
    const double = quiet.task('fx.quiet.double', (x: number) => x * 2);
    const fastify = Fastify();
    open.add(fastify);
    await fastify.register(celeriacPlugin, { app: quiet, brokerUrl: 'memory://fastify-no-worker', worker: false });
    fastify.post('/double', async (request) => ({ id: (await request.tasks.delay(double, 21)).id }));
    await fastify.ready();
    assert.equal((quiet as unknown as Record<symbol, unknown>)[Symbol.for('celeriac.embedded-worker')], undefined, 'no embedded worker was started');
    const { id } = (await fastify.inject({ method: 'POST', url: '/double' })).json<{ id: string }>();
    // The default (no worker option) on the same memory broker does run one, and it picks the message up.
    const withWorker = Fastify();
    open.add(withWorker);
    await withWorker.register(celeriacPlugin, { app: quiet, brokerUrl: 'memory://fastify-no-worker' });
    await withWorker.ready();
    assert.equal(await quiet.AsyncResult(id).get({ timeout: 10_000 }), 42);
  });

  test("a worker option that is not true, false or 'embedded' fails registration", async () => {
    const fastify = Fastify();
    await assert.rejects(async () => {
      await fastify.register(celeriacPlugin, { app, brokerUrl: BROKER, worker: 'yes' as never });
      await fastify.ready();
    }, /worker must be true, false or 'embedded', got "yes"/);
  });
});

describe('shutdown', () => {
  test('close() ends open SSE streams (preClose) before closing connections (onClose)', async () => {
    const fastify = await server();
    const address = await fastify.listen({ port: await freePort(), host: '127.0.0.1' });
    const { id } = (await (await fetch(`${address}/gated`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"tag":"shutdown-1"}' })).json()) as { id: string };
    const stream = new SseReader(await fetch(`${address}/tasks/${id}/events`));
    await stream.waitFor((e) => (e.data as Status).state === 'PROGRESS');
    const closing = fastify.close();
    // The stream ends while the task is still running: the server did not wait for it.
    await stream.end(5000);
    const { statuses, end } = statusEvents(stream.events);
    assert.equal(statuses.at(-1)?.state, 'PROGRESS');
    assert.equal(end, undefined);
    await waitFor(() => openGate('shutdown-1'), 5000, 'fx.gated reached its gate');
    await closing;
    open.delete(fastify);
  });
});

describe('broker outage', () => {
  test('a request that enqueues answers 503 JSON with a code, fast, through Fastify’s own error handler', async () => {
    const downApp = createApp('fastify-outage');
    const port = await freePort(); // nothing listens there
    const fastify = Fastify();
    open.add(fastify);
    await fastify.register(celeriacPlugin, { app: downApp, brokerUrl: `redis://127.0.0.1:${port}/0`, resultBackend: `redis://127.0.0.1:${port}/1`, brokerConnectionTimeout: 1 });
    fastify.post('/send', async (request) => ({ id: (await request.tasks.send('anything.at.all', [1])).id }));
    const started = Date.now();
    const res = await fastify.inject({ method: 'POST', url: '/send' });
    const tookMs = Date.now() - started;
    assert.equal(res.statusCode, 503, res.body);
    assert.match(String(res.headers['content-type']), /^application\/json/);
    const body = res.json<{ statusCode: number; code: string; error: string; message: string }>();
    assert.equal(body.statusCode, 503);
    assert.equal(body.error, 'Service Unavailable');
    assert.equal(body.code, 'CELERIAC_BROKER_UNAVAILABLE');
    assert.equal(body.message, 'The task queue is unavailable; try again later.');
    assert.doesNotMatch(res.body, new RegExp(String(port)), 'the broker address stays in the logs');
    assert.ok(tookMs < 30_000, `answered after ${tookMs} ms`);
  });
});

/** Compile-time only (never called): the module augmentation types `fastify.celeriac` and `request.tasks`. */
export function typeChecks(fastify: FastifyInstance): void {
  const app: Celeriac = fastify.celeriac;
  void app;
  fastify.get('/types', async (request) => {
    const sum = await request.tasks.delay(add, 1, 2);
    const n: number = await sum.get();
    // @ts-expect-error the result of tasks.add is a number
    const s: string = await sum.get();
    void s;
    // @ts-expect-error add takes numbers
    await request.tasks.delay(add, 'one', 2);
    // @ts-expect-error request.tasks is read-only
    request.tasks = undefined;
    return n;
  });
}
