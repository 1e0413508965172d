/**
 * The core pieces every web adapter uses (docs/web-adapters.md): one app and one
 * task context per process across two copies of the package, `bindApp`, the
 * request-scoped producer (request id, W3C trace context, hook headers) seen by a
 * worker, Python-sent headers, a fast 503 `BrokerUnavailable` with Redis stopped,
 * the embedded worker, task status and pushed updates on memory and Redis, and
 * the SSE writer on a real HTTP server.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { cpSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, get, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { AsyncLocalStorage } from 'node:async_hooks';
import { dirname, join } from 'node:path';
import { after, describe, test } from 'node:test';
import { fileURLToPath, pathToFileURL } from 'node:url';
import {
  bindApp,
  BrokerUnavailable,
  Celeriac,
  ConfigurationError,
  createApp,
  createTaskProducer,
  currentApp,
  currentTask,
  getTaskStatus,
  httpErrorOf,
  isCeleriacApp,
  runWithRequestContext,
  startEmbeddedWorker,
  streamTaskEvents,
  SseStreams,
  watchTaskStatus,
  Worker,
  type RequestContext,
  type TaskStatus,
} from '../packages/core/src/index.ts';
import { missing, REDIS_SERVER, startRedis, SYSTEM_PYTHON } from './helpers/services.ts';

const REPO = join(dirname(fileURLToPath(import.meta.url)), '..');
const skipRedis = missing(REDIS_SERVER, 'apt-get install redis-server');
const skipPython = skipRedis ?? missing(SYSTEM_PYTHON, 'apt-get install python3-celery');

/** Resolve when `check` holds; fail naming `what` after `timeoutMs`. */
async function waitFor(what: string, check: () => boolean | Promise<boolean>, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for: ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** A promise and its resolve function, to hold a task until the test lets it go. */
function gate(): { promise: Promise<void>; open: () => void } {
  let open!: () => void;
  const promise = new Promise<void>((r) => (open = r));
  return { promise, open };
}

// The process app is the first app created in this process: this one.
const app = createApp('webcore', { brokerUrl: 'memory://webcore-main' });
const seen: { ctx: RequestContext | undefined; headers: Record<string, unknown> }[] = [];
const record = app.task('web.record', function (label: string) {
  seen.push({ ctx: this.requestContext, headers: { ...this.headers } });
  return label;
});

describe('one app, one task context per process across copies of the package', () => {
  const copyDir = join(REPO, 'node_modules', '.celeriac-second-copy');
  after(() => rmSync(copyDir, { recursive: true, force: true }));

  test('a second copy of @celeriac/core sees the same process app, brand, memory broker and currentTask', async () => {
    // A real second copy: the compiled package in another folder (so every module is a new instance).
    rmSync(copyDir, { recursive: true, force: true });
    mkdirSync(copyDir, { recursive: true });
    cpSync(join(REPO, 'packages/core/dist/esm'), join(copyDir, 'dist'), { recursive: true });
    writeFileSync(join(copyDir, 'package.json'), JSON.stringify({ name: 'celeriac-copy', type: 'module' }));
    const other = (await import(pathToFileURL(join(copyDir, 'dist/index.js')).href)) as typeof import('../packages/core/src/index.ts');
    assert.notEqual(other.createApp, createApp, 'the copy is a separate module instance');

    const otherApp = other.createApp('from-the-copy', { brokerUrl: 'memory://webcore-main' });
    assert.equal(other.currentApp(), app, 'the copy reports the first app of the process');
    assert.equal(currentApp(), app);
    assert.ok(isCeleriacApp(otherApp) && other.isCeleriacApp(app), 'each copy recognises the other copy’s apps');
    assert.ok(otherApp instanceof Celeriac, 'instanceof works across copies too');
    assert.equal(isCeleriacApp({ constructor: { name: 'Celeriac' } }), false);

    // A task of this copy, run by the other copy's worker through the shared memory broker;
    // inside it, both copies' currentTask() give the running task.
    const ids: (string | undefined)[] = [];
    const probe = app.task('web.copy-probe', () => {
      ids.push(currentTask()?.id, other.currentTask()?.id);
      return 'ok';
    });
    const worker = new other.Worker(app, { concurrency: 1, logLevel: 'silent' });
    await worker.start();
    try {
      const r = await probe.delay();
      assert.equal(await r.get({ timeout: 5000 }), 'ok');
      assert.deepEqual(ids, [r.id, r.id]);
    } finally {
      await worker.stop();
    }
  });
});

describe('bindApp', () => {
  test('reads a celeriac section, CELERY_* and CELERIAC_* keys; the same broker again is a no-op', () => {
    const a = new Celeriac('bind-a');
    bindApp(a, { celeriac: { brokerUrl: 'memory://bind-a', result_expires: 60 }, port: 3000, CELERY_TASK_DEFAULT_QUEUE: 'web' });
    assert.equal(a.settings.brokerUrl, 'memory://bind-a');
    assert.equal(a.settings.resultExpires, 60);
    assert.equal(a.settings.taskDefaultQueue, 'web');
    assert.equal(bindApp(a, { brokerUrl: 'memory://bind-a', taskDefaultQueue: 'other' }), a);
    assert.equal(a.settings.taskDefaultQueue, 'web', 'a second binding with the same broker changes nothing');

    const b = new Celeriac('bind-b');
    bindApp(b, { CELERY_BROKER_URL: 'redis://x:1/0', CELERIAC_BROKER_URL: 'memory://wins', CELERIAC_RESULT_BACKEND: 'memory://wins' });
    assert.equal(b.settings.brokerUrl, 'memory://wins');
    assert.equal(b.settings.resultBackend, 'memory://wins');
  });

  test('binding again with another broker URL throws, naming both masked URLs, the sources and the fix', () => {
    const a = new Celeriac('bind-c');
    bindApp(a, { CELERY_BROKER_URL: 'redis://:s3cret@cache-a:6379/0' }, 'the worker');
    assert.throws(
      () => bindApp(a, { celeriac: { brokerUrl: 'redis://:other@cache-b:6379/0' } }, '@celeriac/express'),
      (err: Error) => {
        assert.ok(err instanceof ConfigurationError);
        assert.match(err.message, /redis:\/\/:\*+@cache-a:6379\/0 \(by the worker\)/);
        assert.match(err.message, /@celeriac\/express asks for redis:\/\/:\*+@cache-b:6379\/0/);
        assert.match(err.message, /same broker URL/);
        assert.doesNotMatch(err.message, /s3cret|other@/);
        return true;
      },
    );
  });

  test('a bad value or an unknown name in the celeriac section is a clear error', () => {
    assert.throws(() => bindApp(new Celeriac('bind-d'), { celeriac: { brokr_url: 'memory://' } }), /Unknown Celery setting: brokr_url/);
    assert.throws(() => bindApp(new Celeriac('bind-e'), { celeriac: 'memory://' }), /"celeriac" config section must be an object/);
  });
});

describe('request context → task headers → worker (memory://, embedded worker)', () => {
  test('request id, traceparent/tracestate and hook headers reach the task; the running task passes them on', async () => {
    const embedded = await startEmbeddedWorker(app, { concurrency: 2 });
    assert.ok(embedded, 'memory:// runs an embedded worker by default');
    const second = (await startEmbeddedWorker(app))!;
    assert.equal(second.worker, embedded.worker, 'one embedded worker per app');
    assert.equal(await second.stop(), false, 'the first hold keeps it running');
    assert.equal(await startEmbeddedWorker(app, { worker: false }), null);
    try {
      const tasks = createTaskProducer(app, { headers: (ctx) => ({ tenant: String(ctx.headers?.['x-tenant'] ?? '') }) });
      const traceparent = '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01';
      const ctx: RequestContext = { requestId: 'req-42', traceparent, tracestate: 'vendor=x', headers: { 'x-tenant': 'acme' } };
      seen.length = 0;
      const r = await runWithRequestContext(ctx, () => tasks.delay(record, 'first'));
      assert.equal(await r.get({ timeout: 5000 }), 'first');
      assert.deepEqual(seen[0]!.ctx, { requestId: 'req-42', traceparent, tracestate: 'vendor=x' });
      assert.equal(seen[0]!.headers.tenant, 'acme');
      assert.equal(seen[0]!.headers.request_id, 'req-42');

      // send() by name and applyAsync with options; explicit headers win over the hook.
      const s = await runWithRequestContext(ctx, () => tasks.send('web.record', ['by-name'], {}, { headers: { tenant: 'explicit' } }));
      await s.get({ timeout: 5000 });
      assert.equal(seen[1]!.ctx?.requestId, 'req-42');
      assert.equal(seen[1]!.headers.tenant, 'explicit');

      // Outside a request: nothing added.
      const plain = await tasks.applyAsync(record, ['plain']);
      await plain.get({ timeout: 5000 });
      assert.equal(seen[2]!.ctx, undefined);

      // A task sending a task passes its request context on.
      const relay = app.task('web.relay', async () => (await tasks.delay(record, 'child')).id);
      const parent = await runWithRequestContext({ requestId: 'req-chain' }, () => tasks.delay(relay));
      const childId = await parent.get({ timeout: 5000 });
      await app.AsyncResult(childId).get({ timeout: 5000 });
      assert.equal(seen.find((x) => x.headers.id === childId)?.ctx?.requestId, 'req-chain');
    } finally {
      await embedded.stop();
    }
  });

  test('with an active OpenTelemetry span, the task gets that span as parent, not the incoming traceparent', async () => {
    const otel = await import('@opentelemetry/api');
    // A minimal AsyncLocalStorage context manager (the SDK's does the same).
    const als = new AsyncLocalStorage<import('@opentelemetry/api').Context>();
    const manager: import('@opentelemetry/api').ContextManager = {
      active: () => als.getStore() ?? otel.ROOT_CONTEXT,
      with: (c, fn, thisArg, ...args) => als.run(c, () => fn.call(thisArg, ...args)),
      bind: (_c, target) => target,
      enable() {
        return this;
      },
      disable() {
        return this;
      },
    };
    otel.context.setGlobalContextManager(manager);
    const embedded = (await startEmbeddedWorker(app))!;
    try {
      const span = { traceId: '4bf92f3577b34da6a3ce929d0e0e4736', spanId: '00f067aa0ba902b7', traceFlags: 1 };
      const tasks = createTaskProducer(app);
      seen.length = 0;
      const r = await otel.context.with(otel.trace.setSpanContext(otel.ROOT_CONTEXT, span), () =>
        runWithRequestContext({ requestId: 'req-otel', traceparent: '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01' }, () => tasks.delay(record, 'otel')),
      );
      await r.get({ timeout: 5000 });
      assert.equal(seen[0]!.ctx?.traceparent, '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01');
      assert.equal(seen[0]!.ctx?.requestId, 'req-otel');
    } finally {
      otel.context.disable();
      await embedded.stop();
    }
  });
});

describe('task status and pushed updates (memory://)', () => {
  test('getTaskStatus and watchTaskStatus: PENDING → PROGRESS → SUCCESS, then the stream ends', async () => {
    const embedded = (await startEmbeddedWorker(app))!;
    try {
      const hold = gate();
      const step = gate();
      const long = app.task('web.long', async function () {
        await this.updateState('PROGRESS', { current: 1, total: 2 });
        await step.promise;
        await this.updateState('PROGRESS', { current: 2, total: 2 });
        await hold.promise;
        return 'done';
      });
      const boom = app.task('web.boom', () => {
        throw new RangeError('bad input');
      });
      const r = await long.delay();
      const statuses: TaskStatus[] = [];
      const watching = (async () => {
        for await (const s of watchTaskStatus(app, r.id)) statuses.push(s);
      })();
      await waitFor('first PROGRESS', () => statuses.some((s) => s.state === 'PROGRESS'));
      step.open();
      await waitFor('second PROGRESS', () => statuses.some((s) => (s.progress as { current?: number } | undefined)?.current === 2));
      hold.open();
      await watching;
      assert.deepEqual(
        statuses.map((s) => [s.state, s.progress ?? s.result ?? null]),
        [
          ...(statuses[0]!.state === 'PENDING' ? [['PENDING', null]] : []),
          ['PROGRESS', { current: 1, total: 2 }],
          ['PROGRESS', { current: 2, total: 2 }],
          ['SUCCESS', 'done'],
        ],
      );
      assert.equal(statuses.at(-1)!.ready, true);

      const failed = await boom.delay();
      await failed.get({ propagate: false, timeout: 5000 });
      const hidden = await getTaskStatus(app, failed.id);
      assert.deepEqual(hidden.error, { type: 'RangeError', message: 'bad input' });
      const shown = await getTaskStatus(app, failed.id, { tracebacks: true });
      assert.match(shown.error?.traceback ?? '', /RangeError: bad input/);
      assert.deepEqual(await getTaskStatus(app, 'no-such-task'), { taskId: 'no-such-task', state: 'PENDING', ready: false, dateDone: null });
    } finally {
      await embedded.stop();
    }
  });
});

/** GET `url` and collect the raw SSE text until the response ends. */
function readSse(url: string): Promise<{ res: IncomingMessage; text: string }> {
  return new Promise((resolve, reject) => {
    get(url, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (text += c));
      res.on('end', () => resolve({ res, text }));
    }).on('error', reject);
  });
}

describe('SSE writer on a real HTTP server', () => {
  let server: Server;
  after(() => server?.close());

  test('headers for proxies, heartbeats, one event per change, `event: end`, then the response ends', async () => {
    const embedded = (await startEmbeddedWorker(app))!;
    const streams = new SseStreams();
    server = createServer((req, res) => {
      const id = req.url!.split('/')[2]!;
      void streamTaskEvents(app, id, res, { heartbeatMs: 20, streams });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    try {
      const hold = gate();
      const slow = app.task('web.sse-slow', async function () {
        await this.updateState('PROGRESS', { pct: 50 });
        await hold.promise;
        return 7;
      });
      const r = await slow.delay();
      await waitFor('PROGRESS stored', async () => (await r.state) === 'PROGRESS');
      const reading = readSse(`${base}/tasks/${r.id}/events`);
      await waitFor('stream open', () => streams.size === 1);
      await new Promise((resolve) => setTimeout(resolve, 60)); // lets heartbeats through (lower bound only)
      hold.open();
      const { res, text } = await reading;
      assert.equal(res.statusCode, 200);
      assert.equal(res.headers['content-type'], 'text/event-stream; charset=utf-8');
      assert.equal(res.headers['x-accel-buffering'], 'no');
      assert.equal(res.headers['cache-control'], 'no-cache');
      assert.match(text, /^: ping$/m);
      const data = [...text.matchAll(/^id: (\d+)\ndata: (.*)$/gm)].map((m) => JSON.parse(m[2]!) as TaskStatus);
      assert.deepEqual(
        data.map((d) => d.state),
        ['PROGRESS', 'SUCCESS'],
      );
      assert.deepEqual(data[0]!.progress, { pct: 50 });
      assert.equal(data[1]!.result, 7);
      assert.match(text, /event: end\ndata: \{"taskId":"[^"]+","state":"SUCCESS"\}\n\n$/);
      assert.equal(streams.size, 0);

      // closeAll() (graceful shutdown) ends a stream still waiting.
      const never = await app.task('web.sse-never', () => new Promise(() => undefined)).delay();
      const waiting = readSse(`${base}/tasks/${never.id}/events`);
      await waitFor('second stream open', () => streams.size === 1);
      streams.closeAll();
      const ended = await waiting;
      assert.doesNotMatch(ended.text, /event: end/);
    } finally {
      await embedded.worker.stop({ cold: true });
    }
  });
});

describe('Redis: pushed updates, a separate worker, broker down', { skip: skipRedis ?? false }, () => {
  test('watchTaskStatus on Redis is fed by pub/sub (one GET in all), ends at SUCCESS', async () => {
    const redis = await startRedis();
    const web = new Celeriac('web-redis');
    bindApp(web, { CELERY_BROKER_URL: redis.url(0), CELERY_RESULT_BACKEND: redis.url(1) });
    const hold = gate();
    const task = web.task('web.redis-progress', async function () {
      for (let i = 1; i <= 3; i++) await this.updateState('PROGRESS', { i });
      await hold.promise;
      return 'ok';
    });
    const worker = new Worker(web, { concurrency: 1, logLevel: 'silent' });
    await worker.start();
    try {
      const backend = await web.getBackend();
      let gets = 0;
      const realGet = backend.getResult.bind(backend);
      backend.getResult = (id: string) => (gets++, realGet(id));
      const r = await task.delay();
      const statuses: TaskStatus[] = [];
      const watching = (async () => {
        for await (const s of watchTaskStatus(web, r.id)) statuses.push(s);
      })();
      await waitFor('third PROGRESS', () => statuses.some((s) => (s.progress as { i?: number } | undefined)?.i === 3));
      hold.open();
      await watching;
      assert.equal(statuses.at(-1)!.state, 'SUCCESS');
      assert.equal(statuses.at(-1)!.result, 'ok');
      assert.deepEqual(
        statuses.filter((s) => s.state === 'PROGRESS').map((s) => (s.progress as { i: number }).i).slice(-1),
        [3],
      );
      assert.equal(gets, 1, 'one read when the subscription is live; every change after that is pushed');
    } finally {
      await worker.stop();
      await web.close();
      await redis.stop();
    }
  });

  test('with Redis stopped, a send fails fast with BrokerUnavailable: statusCode 503, a code and a JSON body', { timeout: 30_000 }, async () => {
    const redis = await startRedis();
    const web = new Celeriac('web-down');
    bindApp(web, { CELERY_BROKER_URL: redis.url(0), CELERY_RESULT_BACKEND: redis.url(1), CELERY_TASK_PUBLISH_RETRY_POLICY: '{"max_retries": 2, "interval_start": 0.1, "interval_step": 0.1, "interval_max": 0.1}' });
    const tasks = createTaskProducer(web);
    try {
      await tasks.send('web.any', [1]);
      await redis.stop();
      const started = Date.now();
      const err = await tasks.send('web.any', [2]).then(
        () => assert.fail('the send should fail'),
        (e: unknown) => e,
      );
      assert.ok(err instanceof BrokerUnavailable, String(err));
      assert.equal(err.statusCode, 503);
      assert.equal(err.code, 'CELERIAC_BROKER_UNAVAILABLE');
      assert.equal(err.attempts, 3);
      assert.ok(Date.now() - started >= 200, 'the retry policy was followed (two 0.1 s waits)');
      assert.deepEqual(JSON.parse(JSON.stringify(err)), { statusCode: 503, code: 'CELERIAC_BROKER_UNAVAILABLE', error: 'Service Unavailable', message: 'The task queue is unavailable; try again later.' });
      assert.deepEqual(httpErrorOf(err), { status: 503, body: err.toJSON() });
      assert.match(err.message, new RegExp(`Cannot publish to redis://127\\.0\\.0\\.1:${redis.port}/0`));
      assert.equal(httpErrorOf(new Error('other')), null);
    } finally {
      await web.close();
    }
  });

  test('request_id / traceparent headers sent by a Python Celery 5.2 producer reach the Celeriac task context', { skip: skipPython ?? false, timeout: 60_000 }, async () => {
    const redis = await startRedis();
    const worker_app = new Celeriac('py-headers', { brokerUrl: redis.url(0), resultBackend: redis.url(1) });
    const got: (RequestContext | undefined)[] = [];
    worker_app.task('web.py_record', function (x: number) {
      got.push(this.requestContext);
      return x * 2;
    });
    const worker = new Worker(worker_app, { concurrency: 1, logLevel: 'silent' });
    await worker.start();
    try {
      const traceparent = '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01';
      const script = [
        'import sys, json',
        'from celery import Celery',
        'app = Celery("py", broker=sys.argv[1], backend=sys.argv[2])',
        `r = app.send_task("web.py_record", args=[21], headers={"request_id": "py-req-1", "traceparent": "${traceparent}", "tracestate": "k=v"})`,
        'print(json.dumps({"result": r.get(timeout=15)}))',
      ].join('\n');
      const child = spawn(SYSTEM_PYTHON, ['-c', script, redis.url(0), redis.url(1)], { stdio: ['ignore', 'pipe', 'pipe'] });
      let out = '';
      let errText = '';
      child.stdout.on('data', (c: Buffer) => (out += c));
      child.stderr.on('data', (c: Buffer) => (errText += c));
      const code = await new Promise<number | null>((resolve) => child.once('exit', resolve));
      assert.equal(code, 0, errText);
      assert.deepEqual(JSON.parse(out.trim().split('\n').pop()!), { result: 42 });
      assert.deepEqual(got, [{ requestId: 'py-req-1', traceparent, tracestate: 'k=v' }]);
    } finally {
      await worker.stop();
      await worker_app.close();
      await redis.stop();
    }
  });
});
