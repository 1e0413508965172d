/**
 * @celeriac/express with supertest: on memory:// (embedded worker) and on a real
 * Redis with a separate `celeriac worker` process running the example's tasks
 * module (and a Python Celery 5.2 worker for the Python-only task). Request →
 * task → worker → result polled over HTTP and streamed over SSE; request id, trace
 * context and hook headers in the task's context; authorize, bad ids and hidden
 * tracebacks; 503 JSON with the broker stopped; the graceful-shutdown order.
 */
import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import type { AddressInfo } from 'node:net';
import { after, describe, test } from 'node:test';
import compression from 'compression';
import express from 'express';
import { get } from 'node:http';
import { createGunzip } from 'node:zlib';
import request from 'supertest';
// The adapter imports @celeriac/core (the built package): so does this test, so both use one copy's types.
import { appUsers, Celeriac, chord, type RequestContext, type TaskStatus } from '@celeriac/core';
import { celeriacErrorHandler, gracefulShutdown, queuePlugin, queueRouter, type QueuePluginConfig } from '../packages/express/src/index.ts';
import { interopEnv, pythonCeleryMissing, startPythonWorker, type PeerProcess } from './helpers/python-celery.ts';
import { startProcess } from './helpers/node-process.ts';
import { freePort, IN_CI, missing, REDIS_SERVER, startRedis, type RedisServer } from './helpers/services.ts';
import { spawnWorkerProcess, type WorkerProcess } from './helpers/worker-process.ts';

const skipRedis = missing(REDIS_SERVER, 'apt-get install redis-server');
const skipPython = skipRedis ?? pythonCeleryMissing();
const TRACEPARENT = '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01';

/** superagent parser that keeps an event stream as text. */
const asText = ((res: NodeJS.ReadableStream & { setEncoding(e: string): void }, done: (err: Error | null, body: string) => void) => {
  let text = '';
  res.setEncoding('utf8');
  res.on('data', (c: string) => (text += c));
  res.on('end', () => done(null, text));
}) as never;

/** The unnamed `data:` events of an SSE text (one TaskStatus each). */
const statusEvents = (text: string): TaskStatus[] => [...text.matchAll(/^id: \d+\ndata: (.*)$/gm)].map((m) => JSON.parse(m[1]!) as TaskStatus);

async function pollUntilReady(web: express.Express, id: string, timeoutMs = 10_000): Promise<TaskStatus> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const res = await request(web).get(`/tasks/${id}`).expect(200);
    const status = res.body as TaskStatus;
    if (status.ready) return status;
    if (Date.now() > deadline) throw new Error(`task ${id} not ready after ${timeoutMs} ms: ${JSON.stringify(status)}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** A web app on its own Celeriac app (memory:// unless `settings` say otherwise). */
function webApp(app: Celeriac, plugin: QueuePluginConfig = {}, router: Parameters<typeof queueRouter>[0] = {}) {
  const web = express();
  web.use(queuePlugin({ app, ...plugin }));
  web.post('/whoami', async (req, res) => {
    const r = await req.tasks.delay(app.getTask('t.whoami') as never);
    res.json(await r.get({ timeout: 5000 }));
  });
  web.post('/long', async (req, res) => {
    const r = await req.tasks.applyAsync(app.getTask('t.long') as never, [Number(req.query.steps ?? 3)] as never);
    res.status(202).json({ id: r.id });
  });
  web.post('/send', async (req, res) => res.json({ id: (await req.tasks.send('t.fail')).id }));
  web.use(queueRouter(router));
  web.use(celeriacErrorHandler());
  return web;
}

function declareTasks(app: Celeriac): void {
  app.task('t.whoami', function () {
    return { ctx: this.requestContext ?? null, tenant: this.headers.tenant ?? null };
  });
  app.task('t.long', async function (steps: number) {
    for (let current = 1; current <= steps; current++) {
      await new Promise((r) => setTimeout(r, 30));
      await this.updateState('PROGRESS', { current, total: steps });
    }
    return 'finished';
  });
  app.task('t.fail', () => {
    throw new TypeError('secret detail in the traceback');
  });
}

describe('memory:// with the embedded worker', () => {
  const app = new Celeriac('express-memory', { brokerUrl: 'memory://express-memory' });
  declareTasks(app);
  const web = webApp(app, { headers: (ctx: RequestContext) => ({ tenant: String(ctx.headers?.['x-tenant'] ?? '') }) });
  after(async () => {
    const server = web.listen(0);
    await gracefulShutdown(server);
  });

  test('request id, traceparent and hook headers reach the task; a request without an id gets one back', async () => {
    const res = await request(web).post('/whoami').set('X-Request-Id', 'req-express-1').set('traceparent', TRACEPARENT).set('tracestate', 'k=v').set('X-Tenant', 'acme').expect(200);
    assert.deepEqual(res.body, { ctx: { requestId: 'req-express-1', traceparent: TRACEPARENT, tracestate: 'k=v' }, tenant: 'acme' });
    const anonymous = await request(web).post('/whoami').expect(200);
    const made = anonymous.headers['x-request-id'] as string;
    assert.match(made, /^[0-9a-f-]{36}$/);
    assert.equal((anonymous.body as { ctx: RequestContext }).ctx.requestId, made);
    const badTrace = await request(web).post('/whoami').set('X-Request-Id', 'r2').set('traceparent', 'not-a-traceparent').expect(200);
    assert.deepEqual((badTrace.body as { ctx: RequestContext }).ctx, { requestId: 'r2' });
  });

  test('a long task: polled over GET /tasks/:id, streamed over SSE until SUCCESS', async () => {
    const { id } = (await request(web).post('/long?steps=3').expect(202)).body as { id: string };
    const sse = await request(web).get(`/tasks/${id}/events`).buffer(true).parse(asText).expect(200);
    assert.equal(sse.headers['content-type'], 'text/event-stream; charset=utf-8');
    assert.equal(sse.headers['x-accel-buffering'], 'no');
    const events = statusEvents(sse.body as string);
    const progress = events.filter((e) => e.state === 'PROGRESS').map((e) => (e.progress as { current: number }).current);
    assert.ok(progress.length >= 1 && progress.every((c, i) => i === 0 || c > progress[i - 1]!), `progress in order: ${progress}`);
    assert.deepEqual(events.at(-1), { taskId: id, state: 'SUCCESS', ready: true, result: 'finished', dateDone: events.at(-1)!.dateDone });
    assert.match(sse.body as string, /event: end\ndata: .*"SUCCESS"/);
    const polled = await pollUntilReady(web, id);
    assert.equal(polled.result, 'finished');
    const unknown = await request(web).get('/tasks/never-sent').expect(200);
    assert.equal((unknown.body as TaskStatus).state, 'PENDING');
  });

  test('bad ids answer 400; tracebacks stay hidden unless enabled', async () => {
    await request(web).get('/tasks/bad%20id!').expect(400);
    const { id } = (await request(web).post('/send').expect(200)).body as { id: string };
    const failed = await pollUntilReady(web, id);
    assert.equal(failed.state, 'FAILURE');
    assert.deepEqual(failed.error, { type: 'TypeError', message: 'secret detail in the traceback' });
    const open = webApp(app, {}, { tracebacks: true });
    const shown = (await request(open).get(`/tasks/${id}`).expect(200)).body as TaskStatus;
    assert.match(shown.error?.traceback ?? '', /TypeError: secret detail/);
  });

  test('authorize(req, taskId) guards both routes', async () => {
    const seen: string[] = [];
    const guarded = webApp(app, {}, { authorize: (req, taskId) => (seen.push(taskId), req.headers.authorization === 'Bearer ok') });
    const denied = await request(guarded).get('/tasks/abc').expect(403);
    assert.equal((denied.body as { code: string }).code, 'CELERIAC_FORBIDDEN');
    await request(guarded).get('/tasks/abc/events').expect(403);
    await request(guarded).get('/tasks/abc').set('Authorization', 'Bearer ok').expect(200);
    assert.deepEqual(seen, ['abc', 'abc', 'abc']);
  });

  test('SSE through the compression middleware: each event is flushed, not held until the end', async () => {
    let open!: () => void;
    const gate = new Promise<void>((r) => (open = r));
    app.task('t.gated', async function () {
      await this.updateState('PROGRESS', { step: 1 });
      await gate;
      return 'done';
    });
    const zipped = express();
    zipped.use(compression());
    zipped.use(queuePlugin({ app }));
    zipped.use(queueRouter());
    const server = zipped.listen(0, '127.0.0.1');
    await new Promise((r) => server.once('listening', r));
    try {
      const r = await app.getTask('t.gated').delay();
      let text = '';
      let encoding: string | undefined;
      const ended = new Promise<void>((resolve, reject) => {
        get({ host: '127.0.0.1', port: (server.address() as AddressInfo).port, path: `/tasks/${r.id}/events`, headers: { 'accept-encoding': 'gzip' } }, (res) => {
          encoding = res.headers['content-encoding'];
          const body = res.pipe(createGunzip());
          body.setEncoding('utf8');
          body.on('data', (c: string) => (text += c));
          body.on('end', resolve);
          body.on('error', reject);
        }).on('error', reject);
      });
      const deadline = Date.now() + 10_000;
      while (!/"PROGRESS"/.test(text)) {
        if (Date.now() > deadline) throw new Error(`no PROGRESS event before the task ended (compressed stream not flushed): ${JSON.stringify(text)}`);
        await new Promise((res) => setTimeout(res, 10));
      }
      assert.equal(encoding, 'gzip', 'the stream really went through compression');
      assert.doesNotMatch(text, /SUCCESS/, 'the task is still held');
      open();
      await ended;
      assert.match(text, /"state":"SUCCESS"/);
    } finally {
      open();
      server.close();
    }
  });

  test('req.tasks.applySignature sends a chord: every header task and the body carry the request context', async () => {
    app.task('t.double', function (x: number) {
      return { value: x * 2, requestId: this.requestContext?.requestId ?? null };
    });
    app.task('t.sum', function (parts: { value: number; requestId: string | null }[]) {
      return { total: parts.reduce((sum, p) => sum + p.value, 0), headerRequestIds: parts.map((p) => p.requestId), requestId: this.requestContext?.requestId ?? null };
    });
    const withChord = express();
    withChord.use(queuePlugin({ app }));
    withChord.post('/chord', async (req, res) => {
      const header = [1, 2, 3].map((x) => app.signature('t.double', [x]));
      const r = await req.tasks.applySignature(chord(header, app.signature('t.sum')));
      res.json(await r.get({ timeout: 10_000 }));
    });
    withChord.use(celeriacErrorHandler());
    const body = (await request(withChord).post('/chord').set('X-Request-Id', 'req-chord-1').set('traceparent', TRACEPARENT).expect(200)).body;
    assert.deepEqual(body, { total: 12, headerRequestIds: ['req-chord-1', 'req-chord-1', 'req-chord-1'], requestId: 'req-chord-1' });
  });

  test('config as a function of the Express settings; a second binding to another broker fails naming both', async () => {
    const other = new Celeriac('express-settings');
    declareTasks(other);
    const web2 = express();
    web2.set('celeriac', { brokerUrl: 'memory://from-settings' });
    web2.use(queuePlugin((settings) => ({ app: other, celeriac: settings.celeriac as Record<string, unknown>, worker: false })));
    web2.get('/broker', (req, res) => res.json({ broker: other.settings.brokerUrl, hasTasks: typeof req.tasks.delay }));
    assert.deepEqual((await request(web2).get('/broker').expect(200)).body, { broker: 'memory://from-settings', hasTasks: 'function' });
    assert.throws(() => queuePlugin({ app: other, brokerUrl: 'memory://elsewhere' }), /already bound to broker memory:\/\/from-settings .*asks for memory:\/\/elsewhere/);
  });
});

describe('gracefulShutdown', () => {
  test('an open SSE stream gets heartbeats, then is ended; the server stops; the worker and the connections are released last', async () => {
    const app = new Celeriac('express-shutdown', { brokerUrl: 'memory://express-shutdown' });
    let open!: () => void;
    const gate = new Promise<void>((r) => (open = r));
    const held = app.task('t.held', async function () {
      await this.updateState('PROGRESS', { step: 1 });
      await gate;
      return 'released';
    });
    const web = express();
    web.use(queuePlugin({ app }));
    web.use(queueRouter({ heartbeatMs: 30 }));
    const server = web.listen(0, '127.0.0.1');
    await new Promise((r) => server.once('listening', r));
    const r = await held.delay();
    let text = '';
    const ended = new Promise<void>((resolve, reject) => {
      get({ host: '127.0.0.1', port: (server.address() as AddressInfo).port, path: `/tasks/${r.id}/events` }, (res) => {
        res.setEncoding('utf8');
        res.on('data', (c: string) => (text += c));
        res.on('end', resolve);
        res.on('error', reject);
      }).on('error', reject);
    });
    const deadline = Date.now() + 10_000;
    while (!/^: ping$/m.test(text) || !/"PROGRESS"/.test(text)) {
      if (Date.now() > deadline) throw new Error(`no heartbeat and PROGRESS on the open stream: ${JSON.stringify(text)}`);
      await new Promise((res) => setTimeout(res, 10));
    }
    assert.equal(appUsers(app), 1);
    const shutdown = gracefulShutdown(server, { timeoutMs: 5000 });
    await ended; // the stream was ended by the shutdown, the task still running
    assert.doesNotMatch(text, /SUCCESS/);
    assert.equal(server.listening, false, 'the server stopped accepting');
    assert.equal(appUsers(app), 1, 'connections stay open while the worker finishes the running task');
    open();
    await shutdown;
    assert.equal(appUsers(app), 0, 'the last user released the connections');
    assert.equal(await app.AsyncResult(r.id).state, 'SUCCESS', 'the warm stop let the running task finish');
  });
});

describe('Redis, a separate worker process (the example) and a Python worker', { skip: skipRedis ?? false }, () => {
  let redis: RedisServer;
  let worker: WorkerProcess | undefined;
  let python: PeerProcess | undefined;
  const children = new Set<ChildProcess>();
  let closeWeb: (() => Promise<void>) | undefined;
  after(async () => {
    await closeWeb?.();
    worker?.signal('SIGTERM');
    await worker?.exited;
    await python?.stop();
    for (const child of children) child.kill('SIGKILL');
    await redis?.stop();
  });

  test('the example app: enqueue a long task, poll it, stream it, request context in the worker process, a Python-only task by name', { timeout: 90_000 }, async (t) => {
    redis = await startRedis();
    const urls = { broker: redis.url(0), backend: redis.url(1) };
    worker = await spawnWorkerProcess(urls, children, { app: 'examples/express-app/tasks.mjs' });
    const { buildApp } = (await import('../examples/express-app/server.mjs' as string)) as { buildApp: (env: Record<string, string | undefined>) => express.Express };
    const web = buildApp({ CELERY_BROKER_URL: urls.broker, CELERY_RESULT_BACKEND: urls.backend });
    const server = web.listen(0, '127.0.0.1');
    closeWeb = () => gracefulShutdown(server, { timeoutMs: 1000 });

    const accepted = (await request(web).post('/long?steps=4&stepMs=500').set('X-Request-Id', 'req-redis-1').expect(202)).body as { id: string; events: string; status: string };
    const sse = await request(web).get(accepted.events).buffer(true).parse(asText).expect(200);
    const events = statusEvents(sse.body as string);
    assert.equal(events.at(-1)!.state, 'SUCCESS');
    assert.deepEqual(events.at(-1)!.result, { steps: 4, requestId: 'req-redis-1' });
    assert.ok(events.some((e) => e.state === 'PROGRESS'), `PROGRESS events over Redis pub/sub: ${sse.body}`);
    const polled = (await request(web).get(accepted.status).expect(200)).body as TaskStatus;
    assert.equal(polled.state, 'SUCCESS');

    // A chord route: four additions on the worker process, then their sum; the body saw the request.
    const chordAccepted = (await request(web).post('/chord?n=4').set('X-Request-Id', 'req-redis-chord').expect(202)).body as { id: string; events: string };
    const chordEvents = statusEvents((await request(web).get(chordAccepted.events).buffer(true).parse(asText).expect(200)).body as string);
    assert.deepEqual(chordEvents.at(-1)!.result, { total: 0 + 2 + 4 + 6, requestId: 'req-redis-chord' });
    // The log line may reach the pipe after the result reached the web process (the logger writes asynchronously).
    await worker.waitFor(/Task example\.total\[[0-9a-f-]+\] received/, 10_000);

    const who = (await request(web).get('/whoami').set('X-Request-Id', 'req-redis-2').set('traceparent', TRACEPARENT).set('X-Tenant', 'acme').expect(200)).body;
    assert.deepEqual(who, { requestContext: { requestId: 'req-redis-2', traceparent: TRACEPARENT }, tenant: 'acme' });
    await worker.waitFor(/Task example\.whoami\[[0-9a-f-]+\] received/, 10_000); // the separate worker process ran it

    if (skipPython) {
      if (IN_CI) assert.fail(skipPython);
      t.diagnostic(`SKIPPED the Python-only task: ${skipPython}`);
      return;
    }
    python = await startPythonWorker({ env: { ...interopEnv(redis) }, queues: ['python'] });
    const mul = (await request(web).post('/python/mul?x=6&y=7').expect(200)).body as { result: number };
    assert.equal(mul.result, 42);
  });
});

describe('the example, one command each', () => {
  test('node examples/express-app/server.mjs: memory://, the worker in the web process', async () => {
    const port = await freePort();
    const server = startProcess(process.execPath, ['examples/express-app/server.mjs'], { PORT: String(port), CELERY_BROKER_URL: '' });
    try {
      const [, url] = await server.waitFor(/on memory:\/\/: open (http:\/\/\S+)/);
      const res = await fetch(`${url}/add?x=20&y=22`, { method: 'POST' });
      assert.deepEqual(((await res.json()) as { result: number }).result, 42);
    } finally {
      await server.stop();
    }
  });

  test('server.mjs --spawn-worker on Redis: a separate worker process runs the tasks (a chord here)', { skip: skipRedis ?? false, timeout: 60_000 }, async () => {
    const redis = await startRedis();
    const port = await freePort();
    const server = startProcess(process.execPath, ['examples/express-app/server.mjs', '--spawn-worker'], { PORT: String(port), CELERY_BROKER_URL: redis.url(0), CELERY_RESULT_BACKEND: redis.url(1) }, { detached: true });
    try {
      const [, pid, url] = await server.waitFor(/with worker process (\d+): open (http:\/\/\S+)/);
      await server.waitFor(/ ready\./, 30_000);
      const accepted = (await (await fetch(`${url}/chord?n=3`, { method: 'POST', headers: { 'x-request-id': 'one-command' } })).json()) as { events: string };
      const events = statusEvents(await (await fetch(url + accepted.events)).text());
      assert.deepEqual(events.at(-1)?.result, { total: 0 + 2 + 4, requestId: 'one-command' });
      await server.waitFor(/Task example\.total\[[0-9a-f-]+\] received/, 10_000); // logged asynchronously: may follow the result
      assert.ok(Number(pid) !== server.child.pid, 'the worker is its own process');
    } finally {
      await server.stop();
      await redis.stop();
    }
  });
});

describe('broker down', { skip: skipRedis ?? false }, () => {
  test('with Redis stopped, a request that enqueues (and the status route) gets 503 JSON within the retry policy, never a hang', { timeout: 30_000 }, async () => {
    const redis = await startRedis();
    const app = new Celeriac('express-down');
    declareTasks(app);
    const web = webApp(app, { CELERY_BROKER_URL: redis.url(0), CELERY_RESULT_BACKEND: redis.url(1), CELERY_TASK_PUBLISH_RETRY_POLICY: '{"max_retries": 1, "interval_start": 0.1}', CELERY_BROKER_CONNECTION_TIMEOUT: '1' });
    const server = web.listen(0, '127.0.0.1');
    await new Promise((r) => server.once('listening', r));
    try {
      await request(web).post('/long').expect(202);
      await redis.stop();
      const started = Date.now();
      const res = await request(`http://127.0.0.1:${(server.address() as AddressInfo).port}`).post('/long').expect(503);
      assert.deepEqual(res.body, { statusCode: 503, code: 'CELERIAC_BROKER_UNAVAILABLE', error: 'Service Unavailable', message: 'The task queue is unavailable; try again later.' });
      assert.equal(res.headers['retry-after'], '5');
      assert.match(res.headers['content-type'] as string, /application\/json/);
      assert.ok(Date.now() - started >= 100, 'the retry policy waited before giving up');
      // The status route with the result backend away: 503 too, within brokerConnectionTimeout (1 s here).
      const status = await request(`http://127.0.0.1:${(server.address() as AddressInfo).port}`).get('/tasks/some-task').expect(503);
      assert.equal((status.body as { code: string }).code, 'CELERIAC_RESULT_BACKEND_UNAVAILABLE');
    } finally {
      await gracefulShutdown(server, { timeoutMs: 1000 });
    }
  });
});
