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
import { parseSse, SseReader } from './helpers/sse.ts';
import { waitFor } from './helpers/worker-process.ts';

interface Status {
  id: string;
  state: string;
  ready: boolean;
  result?: unknown;
  progress?: unknown;
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
    const events = await new SseReader(await fetch(url!)).end(20_000);
    const data = events.map((e) => e.data as Status);
    assert.deepEqual(data.at(-1)?.result, { pages: 3, requestId: 'req-1' });
    assert.ok(data.some((d) => d.state === 'PROGRESS'), JSON.stringify(data));
  } finally {
    await server.stop();
  }
});

test('through fastify.inject: POST /reports, poll /tasks/:id through PROGRESS to SUCCESS, then the SSE body', async () => {
  delete process.env.CELERY_BROKER_URL;
  fastify = await buildServer({ env: { CELERY_BROKER_URL: 'memory://' } });
  const sent = await fastify.inject({ method: 'POST', url: '/reports', payload: { pages: 4, msPerPage: 100 }, headers: { 'x-request-id': 'inject-1' } });
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
  assert.deepEqual(last, { id, state: 'SUCCESS', ready: true, result: { pages: 4, requestId: 'inject-1' } });
  const events = parseSse((await fastify.inject({ method: 'GET', url: `/tasks/${id}/events` })).body);
  assert.deepEqual(events, [{ event: 'state', data: last }]);
});
