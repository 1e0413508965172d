/**
 * examples/fastify-app on a real Redis with a separate `celeriac worker` process
 * (and a Python Celery 5.2 worker for the Python-only task): request → task →
 * worker → result, polled over HTTP and streamed over SSE; request id and trace
 * context in the worker's task context; 503 JSON when Redis goes away.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { FastifyInstance } from 'fastify';
import { buildServer } from '../examples/fastify-app/server.mjs';
import { startProcess, startBuiltWorker, type TrackedProcess } from './helpers/node-process.ts';
import { pythonCeleryMissing, REPO_ROOT } from './helpers/python-celery.ts';
import { freePort, missing, REDIS_SERVER, startRedis, SYSTEM_PYTHON, type RedisServer } from './helpers/services.ts';
import { SseReader, type SseEvent } from './helpers/sse.ts';
import { waitFor } from './helpers/worker-process.ts';

const skip = missing(REDIS_SERVER, 'apt-get install redis-server');
const TRACEPARENT = '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01';
const EXAMPLE_TASKS = 'examples/fastify-app/tasks.mjs';

interface Status {
  taskId: string;
  state: string;
  ready: boolean;
  result?: unknown;
  progress?: unknown;
  dateDone: string | null;
}

/** The status events (unnamed) of an SSE stream, without their dateDone. */
function statuses(events: SseEvent[]): Omit<Status, 'dateDone'>[] {
  return events.filter((e) => e.event === 'message').map((e) => {
    const { dateDone: _dateDone, ...rest } = e.data as Status;
    return rest;
  });
}

/** A status without its dateDone, which must be set once ready. */
function settled(status: Status): Omit<Status, 'dateDone'> {
  const { dateDone, ...rest } = status;
  assert.equal(dateDone !== null, status.ready);
  return rest;
}

let redis: RedisServer;
let worker: TrackedProcess | undefined;
let fastify: FastifyInstance;
let address: string;

before(async () => {
  if (skip) return;
  redis = await startRedis();
  worker = await startBuiltWorker(EXAMPLE_TASKS, { broker: redis.url(0), backend: redis.url(1) }, ['-c', '4']);
  fastify = await buildServer({ env: { CELERY_BROKER_URL: redis.url(0), CELERY_RESULT_BACKEND: redis.url(1) }, worker: false });
  address = await fastify.listen({ port: await freePort(), host: '127.0.0.1' });
});

after(async () => {
  if (skip) return;
  await fastify?.close();
  await worker?.stop();
  await redis?.stop();
});

async function post(path: string, body: unknown, headers: Record<string, string> = {}): Promise<{ status: number; json: Record<string, unknown> }> {
  const res = await fetch(`${address}${path}`, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: JSON.stringify(body) });
  return { status: res.status, json: (await res.json()) as Record<string, unknown> };
}

async function pollUntilReady(id: string): Promise<Status> {
  let status: Status | undefined;
  await waitFor(
    async () => {
      const res = await fastify.inject({ method: 'GET', url: `/tasks/${id}` });
      status = res.json<Status>();
      return status.ready;
    },
    20_000,
    `task ${id} ready`,
  );
  return status!;
}

describe('examples/fastify-app on Redis, worker in its own process', { skip: skip ?? false }, () => {
  test('a long task: its progress streamed over SSE, its result polled, sent with the request id', async () => {
    // 4 pages of 500 ms: the stream opens while the task runs (its first event is the current
    // status), so at least one PROGRESS arrives even on a loaded machine.
    const sent = await post('/reports', { pages: 4, msPerPage: 500 }, { 'x-request-id': 'redis-req-1' });
    assert.equal(sent.status, 202);
    const id = String(sent.json.id);
    assert.equal(sent.json.events, `/tasks/${id}/events`);
    const stream = new SseReader(await fetch(`${address}/tasks/${id}/events`));
    const events = await stream.end(20_000);
    const data = statuses(events);
    assert.deepEqual(data.at(-1), { taskId: id, state: 'SUCCESS', ready: true, result: { pages: 4, requestId: 'redis-req-1' } });
    assert.deepEqual(events.at(-1), { event: 'end', data: { taskId: id, state: 'SUCCESS' } });
    const progress = data.filter((d) => d.state === 'PROGRESS').map((d) => d.progress);
    assert.ok(progress.length >= 1, `no PROGRESS event in ${stream.raw}`);
    for (const p of progress) assert.match(JSON.stringify(p), /^\{"current":[1234],"total":4\}$/);
    assert.deepEqual(settled(await pollUntilReady(id)), { taskId: id, state: 'SUCCESS', ready: true, result: { pages: 4, requestId: 'redis-req-1' } });
  });

  test('request id and trace context reach the task in the worker process', async () => {
    const sent = await post('/request-info', {}, { 'x-request-id': 'redis-req-2', traceparent: TRACEPARENT, tracestate: 'vendor=abc' });
    const status = await pollUntilReady(String(sent.json.id));
    assert.deepEqual(status.result, { requestId: 'redis-req-2', traceparent: TRACEPARENT, tracestate: 'vendor=abc' });
  });

  test('a chord route: the sections counted on the worker process, then summed, with the request id', async () => {
    const sent = await post('/reports/batch', { sections: ['ab', 'cde', 'fghi'] }, { 'x-request-id': 'redis-req-chord' });
    assert.equal(sent.status, 202);
    const status = await pollUntilReady(String(sent.json.id));
    assert.deepEqual(status.result, { sections: 3, pages: 9, requestId: 'redis-req-chord' });
  });

  test('a Python-only task called by name runs on a real Celery 5.2 worker', { skip: pythonCeleryMissing() ?? false }, async () => {
    const py = startProcess(SYSTEM_PYTHON, ['-m', 'celery', '-A', 'fastify_tasks', 'worker', '-P', 'solo', '-Q', 'python', '-l', 'info', '-n', 'py@fastify', '--without-gossip', '--without-mingle', '--without-heartbeat'], {
      CELERY_BROKER_URL: redis.url(0),
      CELERY_RESULT_BACKEND: redis.url(1),
      PYTHONPATH: join(REPO_ROOT, 'examples/fastify-app/python'),
      PYTHONDONTWRITEBYTECODE: '1',
    }, { cwd: join(REPO_ROOT, 'examples/fastify-app/python') });
    try {
      await py.waitFor(/\bready\.$/m);
      const sent = await post('/python/word-count', { text: 'celery for typescript' }, { 'x-request-id': 'redis-req-py', traceparent: TRACEPARENT });
      assert.equal(sent.status, 202);
      const status = await pollUntilReady(String(sent.json.id));
      assert.deepEqual(settled(status), { taskId: sent.json.id, state: 'SUCCESS', ready: true, result: { words: 3, request_id: 'redis-req-py', traceparent: TRACEPARENT } });
      await py.waitFor(/py\.text\.word_count\[[0-9a-f-]+\] succeeded/, 10_000); // Celery logs it after storing the result
    } finally {
      await py.stop();
    }
  });

  test('one command: server.mjs --spawn-worker serves the example with its own worker process', async () => {
    const port = await freePort();
    const server = startProcess(process.execPath, ['examples/fastify-app/server.mjs', '--spawn-worker'], { PORT: String(port), CELERY_BROKER_URL: redis.url(0), CELERY_RESULT_BACKEND: redis.url(1) }, { detached: true });
    try {
      const [, url] = await server.waitFor(/open (http:\/\/\S+\/events) \(SSE\)/);
      const events = statuses(await new SseReader(await fetch(url!)).end(20_000));
      assert.equal(events.at(-1)?.state, 'SUCCESS', server.output());
      assert.deepEqual(events.at(-1)?.result, { pages: 3, requestId: 'req-1' });
    } finally {
      await server.stop();
    }
  });

  test('Redis down: a request that enqueues answers 503 JSON with a code, fast', async () => {
    await worker?.stop();
    worker = undefined;
    await redis.stop();
    const started = Date.now();
    const res = await post('/reports', { pages: 1 });
    const tookMs = Date.now() - started;
    assert.equal(res.status, 503, JSON.stringify(res.json));
    assert.equal(res.json.error, 'Service Unavailable');
    assert.deepEqual(res.json, { statusCode: 503, code: 'CELERIAC_BROKER_UNAVAILABLE', error: 'Service Unavailable', message: 'The task queue is unavailable; try again later.' });
    assert.ok(tookMs < 30_000, `answered after ${tookMs} ms`);
    // The status route: the result backend (same Redis) is away too.
    const status = await fastify.inject({ method: 'GET', url: '/tasks/00000000-0000-4000-8000-000000000000' });
    assert.equal(status.statusCode, 503, status.body);
    assert.deepEqual(status.json(), { statusCode: 503, code: 'CELERIAC_RESULT_BACKEND_UNAVAILABLE', error: 'Service Unavailable', message: 'Task results are unavailable; try again later.' });
  });
});
