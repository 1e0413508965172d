/**
 * examples/fastify-app on the embedded memory:// default: one command
 * (`node examples/fastify-app/server.mjs`) serves it with an in-process worker,
 * and the same app through fastify.inject.
 */
import assert from 'node:assert/strict';
import { after, test } from 'node:test';
import type { FastifyInstance } from 'fastify';
import { buildServer } from '../examples/fastify-app/server.mjs';
import { startProcess } from './helpers/node-process.ts';
import { freePort } from './helpers/services.ts';
import { parseSse, SseReader, type SseEvent } from './helpers/sse.ts';
import { waitFor } from './helpers/worker-process.ts';

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

let fastify: FastifyInstance | undefined;
after(async () => {
  await fastify?.close();
});

test('one command on memory://: the server enqueues a report and its SSE URL streams it to SUCCESS', async () => {
  const port = await freePort();
  const env: Record<string, string> = { PORT: String(port) };
  const server = startProcess(process.execPath, ['examples/fastify-app/server.mjs'], env);
  try {
    const [, url] = await server.waitFor(/open (http:\/\/\S+\/events) \(SSE\)/);
    const data = statuses(await new SseReader(await fetch(url!)).end(20_000));
    // Only the end is certain: the task may have finished before the test connected
    // (progress over SSE is checked where the test controls the timing).
    assert.deepEqual(data.at(-1), { taskId: data.at(-1)?.taskId, state: 'SUCCESS', ready: true, result: { pages: 3, requestId: 'req-1' } });
  } finally {
    await server.stop();
  }
});

test('through fastify.inject: POST /reports, poll /tasks/:id through PROGRESS to SUCCESS, then the SSE body', async () => {
  delete process.env.CELERY_BROKER_URL;
  fastify = await buildServer({ env: { CELERY_BROKER_URL: 'memory://' } });
  const sent = await fastify.inject({ method: 'POST', url: '/reports', payload: { pages: 4, msPerPage: 250 }, headers: { 'x-request-id': 'inject-1' } });
  assert.equal(sent.statusCode, 202);
  const { id, poll } = sent.json<{ id: string; poll: string }>();
  const seen = new Set<string>();
  let last: Status | undefined;
  await waitFor(async () => {
    last = (await fastify!.inject({ method: 'GET', url: poll })).json<Status>();
    seen.add(last.state);
    return last.ready;
  });
  assert.ok(seen.has('PROGRESS'), [...seen].join());
  assert.deepEqual(settled(last!), { taskId: id, state: 'SUCCESS', ready: true, result: { pages: 4, requestId: 'inject-1' } });
  const events = parseSse((await fastify.inject({ method: 'GET', url: `/tasks/${id}/events` })).body);
  assert.deepEqual(events, [{ event: 'message', data: last }, { event: 'end', data: { taskId: id, state: 'SUCCESS' } }]);
});

test('through fastify.inject: POST /reports/batch sends a chord, its summary polled with the request id', async () => {
  fastify ??= await buildServer({ env: { CELERY_BROKER_URL: 'memory://' } });
  const sent = await fastify.inject({ method: 'POST', url: '/reports/batch', payload: { sections: ['a', 'bb', 'ccc', 'dddd'] }, headers: { 'x-request-id': 'inject-chord' } });
  assert.equal(sent.statusCode, 202);
  const { poll } = sent.json<{ poll: string }>();
  let last: Status | undefined;
  await waitFor(async () => {
    last = (await fastify!.inject({ method: 'GET', url: poll })).json<Status>();
    return last.ready;
  });
  assert.deepEqual(settled(last!).result, { sections: 4, pages: 10, requestId: 'inject-chord' });
});
