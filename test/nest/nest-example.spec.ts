/**
 * examples/nest-app for real: `npx nest start worker` and `npx nest start api`
 * (the Nest CLI builds each app with tsc and runs it), on a real Redis. The api
 * enqueues, the worker process consumes. Both are started detached and stopped
 * through their process group, as a terminal or a process manager does.
 */
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { pythonCeleryMissing } from '../helpers/python-celery.js';
import { freePort, IN_CI, missing, REDIS_SERVER, startRedis, SYSTEM_PYTHON, type RedisServer } from '../helpers/services.js';
import { REPO, startChild, type Child, type Exit } from './helpers.js';

const execFileAsync = promisify(execFile);
const EXAMPLE = join(REPO, 'examples/nest-app');
const skip = missing(REDIS_SERVER, 'apt-get install redis-server');
const noPython = skip ?? pythonCeleryMissing();

describe.skipIf(skip !== null)('examples/nest-app: nest start worker + nest start api on Redis', () => {
  let redis: RedisServer;
  let worker: Child;
  let api: Child;
  let base: string;
  let workerEnv: Record<string, string>;

  beforeAll(async () => {
    redis = await startRedis();
    const port = await freePort();
    base = `http://127.0.0.1:${port}`;
    const env = (workerEnv = { CELERY_BROKER_URL: redis.url(0), CELERY_RESULT_BACKEND: redis.url(1), PORT: String(port), FORCE_COLOR: '0', NO_COLOR: '1' });
    worker = startChild('npx', ['nest', 'start', 'worker'], { cwd: EXAMPLE, env, detached: true });
    api = startChild('npx', ['nest', 'start', 'api'], { cwd: EXAMPLE, env, detached: true });
    await Promise.all([worker.waitFor(/worker ready \(pid \d+\)/, 120_000), api.waitFor(/api listening on/, 120_000)]);
  });

  let workerExit: Exit | undefined;
  afterAll(async () => {
    await api?.stop();
    workerExit ??= await worker?.stop();
    await redis?.stop();
  });

  test('a task the api enqueued is consumed by the worker process, with the request id', async () => {
    const sent = await fetch(`${base}/mul`, { method: 'POST', headers: { 'content-type': 'application/json', 'x-request-id': 'example-req-1' }, body: JSON.stringify({ x: 6, y: 9 }) });
    expect(sent.status).toBe(201);
    const { id } = (await sent.json()) as { id: string };
    let body: { state: string; result?: { product: number; requestId: string; pid: number } } = { state: 'PENDING' };
    for (let i = 0; i < 200 && body.state !== 'SUCCESS'; i++) {
      body = (await (await fetch(`${base}/tasks/${id}`)).json()) as typeof body;
      if (body.state !== 'SUCCESS') await new Promise((r) => setTimeout(r, 50));
    }
    expect(body.state).toBe('SUCCESS');
    const workerPid = Number(/worker ready \(pid (\d+)\)/.exec(worker.output())![1]);
    expect(body.result).toEqual({ product: 54, requestId: 'example-req-1', pid: workerPid });
    await worker.waitFor(/mul\(6, 9\) for request example-req-1/, 10_000); // logged asynchronously: may follow the result
    // The SSE route of CeleriacStatusModule: a finished task streams its final state, then `end`.
    const stream = await (await fetch(`${base}/tasks/${id}/events`)).text();
    expect(stream).toMatch(/"state":"SUCCESS"/);
    expect(stream).toMatch(/event: end\n/);
  });

  test('a chord route: the squares and their sum run on the worker process, the body sees the request id', async () => {
    const sent = await fetch(`${base}/sum-of-squares`, { method: 'POST', headers: { 'content-type': 'application/json', 'x-request-id': 'example-chord-1' }, body: JSON.stringify({ numbers: [1, 2, 3, 4] }) });
    expect(sent.status).toBe(201);
    const { id } = (await sent.json()) as { id: string };
    const stream = await (await fetch(`${base}/tasks/${id}/events`)).text();
    expect(stream).toMatch(/"state":"SUCCESS".*"result":\{"total":30,"requestId":"example-chord-1"\}/);
    await worker.waitFor(/mul\(4, 4\) for request example-chord-1/, 10_000);
  });

  test('POST /resize: a Python-only task, sent by name, runs on a Celery 5.2 worker (examples/nest-app/python) with the request id', async (ctx) => {
    if (noPython) {
      if (IN_CI) throw new Error(noPython);
      console.warn(`SKIPPED the Python-only route: ${noPython}`);
      ctx.skip();
    }
    const py = startChild(SYSTEM_PYTHON, ['-m', 'celery', '-A', 'nest_tasks', 'worker', '-P', 'solo', '-Q', 'python', '-l', 'info', '-n', 'py@nest-example', '--without-gossip', '--without-mingle', '--without-heartbeat'], {
      cwd: join(EXAMPLE, 'python'),
      env: { ...workerEnv, PYTHONPATH: join(EXAMPLE, 'python'), PYTHONDONTWRITEBYTECODE: '1' },
    });
    try {
      await py.waitFor(/\bready\.$/m, 60_000);
      const traceparent = '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01';
      const sent = await fetch(`${base}/resize`, { method: 'POST', headers: { 'content-type': 'application/json', 'x-request-id': 'example-py-1', traceparent }, body: JSON.stringify({ image: 'cat.jpg' }) });
      const { id } = (await sent.json()) as { id: string };
      const stream = await (await fetch(`${base}/tasks/${id}/events`)).text();
      expect(stream).toContain(`"result":{"thumbnail":"cat_128.jpg","request_id":"example-py-1","traceparent":"${traceparent}"}`);
      await py.waitFor(/py\.tasks\.resize\[[0-9a-f-]+\] succeeded/, 10_000); // Celery logs it after storing the result
    } finally {
      await py.stop(10_000);
    }
  });

  test('SIGTERM to the process group while a task runs: the worker finishes it, then closes (no SIGKILL)', async () => {
    const sent = await fetch(`${base}/count`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ to: 10 }) });
    const { id } = (await sent.json()) as { id: string };
    const poll = async () => (await (await fetch(`${base}/tasks/${id}`)).json()) as { state: string; result?: unknown };
    let status = await poll();
    for (let i = 0; i < 200 && status.state !== 'PROGRESS'; i++) {
      await new Promise((r) => setTimeout(r, 25));
      status = await poll();
    }
    expect(status.state).toBe('PROGRESS');
    workerExit = await worker.stop(15_000);
    const out = worker.output();
    // The CLI forwards SIGTERM; Nest runs the shutdown hooks, then re-raises SIGTERM.
    expect(workerExit, out).toEqual({ code: null, signal: 'SIGTERM' });
    expect(out).toMatch(/Warm shutdown: stop consuming, let 1 running task\(s\) finish/);
    expect(out).toMatch(/Stopped consuming/);
    expect(out).toMatch(/Closed the broker and result backend connections/);
    expect(await poll()).toMatchObject({ taskId: id, state: 'SUCCESS', result: 10 });
  });

  test('the production form: `nest build worker && node dist/apps/worker/apps/worker/src/main.js` consumes what the api sends', async () => {
    workerExit ??= await worker.stop(15_000); // the dev worker is gone: only the built one consumes
    await execFileAsync('npx', ['nest', 'build', 'worker'], { cwd: EXAMPLE, env: { ...process.env, FORCE_COLOR: '0' }, timeout: 180_000 });
    const built = startChild(process.execPath, ['dist/apps/worker/apps/worker/src/main.js'], { cwd: EXAMPLE, env: workerEnv, detached: true });
    try {
      await built.waitFor(/worker ready \(pid \d+\)/, 60_000);
      const sent = await fetch(`${base}/mul`, { method: 'POST', headers: { 'content-type': 'application/json', 'x-request-id': 'example-prod-1' }, body: JSON.stringify({ x: 7, y: 8 }) });
      const { id } = (await sent.json()) as { id: string };
      const stream = await (await fetch(`${base}/tasks/${id}/events`)).text();
      const pid = Number(/worker ready \(pid (\d+)\)/.exec(built.output())![1]);
      expect(stream).toContain(`"result":{"product":56,"requestId":"example-prod-1","pid":${pid}}`);
    } finally {
      expect(await built.stop(15_000)).toEqual({ code: null, signal: 'SIGTERM' });
    }
  });
});


describe.skipIf(skip !== null)('examples/nest-app: npm run start:redis, one command for api + worker', () => {
  test('the api sends, the worker process consumes; a SIGTERM to the command stops both', { timeout: 300_000 }, async () => {
    const redis = await startRedis();
    const port = await freePort();
    // What `npm run start:redis` runs (npm's `sh -c` would not pass a SIGTERM on).
    const both = startChild(process.execPath, ['start-redis.mjs'], {
      cwd: EXAMPLE,
      env: { CELERY_BROKER_URL: redis.url(0), CELERY_RESULT_BACKEND: redis.url(1), PORT: String(port), FORCE_COLOR: '0', NO_COLOR: '1' },
      detached: true,
    });
    try {
      await both.waitFor(/\[worker\] worker ready \(pid \d+\)/, 180_000);
      await both.waitFor(/\[api\] api listening on/, 180_000);
      const base = `http://127.0.0.1:${port}`;
      const sent = await fetch(`${base}/mul`, { method: 'POST', headers: { 'content-type': 'application/json', 'x-request-id': 'one-command-1' }, body: JSON.stringify({ x: 3, y: 5 }) });
      const { id } = (await sent.json()) as { id: string };
      const stream = await (await fetch(`${base}/tasks/${id}/events`)).text();
      const workerPid = Number(/\[worker\] worker ready \(pid (\d+)\)/.exec(both.output())![1]);
      expect(stream).toContain(`"result":{"product":15,"requestId":"one-command-1","pid":${workerPid}}`);
      // SIGTERM to the command only (not its group): it passes it on to both apps.
      const closed = new Promise<void>((resolve) => both.child.once('close', () => resolve()));
      process.kill(both.child.pid!, 'SIGTERM');
      await closed;
      expect(both.output()).toMatch(/\[worker\] .*Stopped consuming/);
      expect(both.output()).toMatch(/\[worker\] exited/);
      expect(both.output()).toMatch(/\[api\] exited/);
    } finally {
      await both.stop(5_000);
      await redis.stop();
    }
  });
});

describe('examples/nest-app: npm run start, one command on memory://', () => {
  test('the api runs its own tasks in-process: request → task → result, no server', { timeout: 300_000 }, async () => {
    const port = await freePort();
    // What `npm run start` runs (`nest start api`), started detached and stopped by its group.
    const api = startChild('npx', ['nest', 'start', 'api'], { cwd: EXAMPLE, env: { CELERY_BROKER_URL: '', CELERY_RESULT_BACKEND: '', PORT: String(port), FORCE_COLOR: '0', NO_COLOR: '1' }, detached: true });
    try {
      await api.waitFor(/api listening on/, 180_000);
      const base = `http://127.0.0.1:${port}`;
      const sent = await fetch(`${base}/mul`, { method: 'POST', headers: { 'content-type': 'application/json', 'x-request-id': 'memory-1' }, body: JSON.stringify({ x: 4, y: 6 }) });
      const { id } = (await sent.json()) as { id: string };
      const stream = await (await fetch(`${base}/tasks/${id}/events`)).text();
      expect(stream).toMatch(/"result":\{"product":24,"requestId":"memory-1","pid":\d+\}/);
      expect(api.output()).toMatch(/Consuming celery/); // the embedded worker, in the api process
    } finally {
      await api.stop(15_000);
    }
  });
});
