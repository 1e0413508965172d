// The Fastify app. One command each:
//   node examples/fastify-app/server.mjs                     memory://, worker in-process
//   CELERY_BROKER_URL=redis://127.0.0.1:6379/0 \
//     node examples/fastify-app/server.mjs --spawn-worker    Redis + a `celeriac worker` process
// In production run the two processes yourself, with the same URLs:
//   CELERY_BROKER_URL=redis://.../0 CELERY_RESULT_BACKEND=redis://.../1 node examples/fastify-app/server.mjs
//   CELERY_BROKER_URL=redis://.../0 CELERY_RESULT_BACKEND=redis://.../1 npx celeriac worker -A examples/fastify-app/tasks.mjs
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import Fastify from 'fastify';
import fastifyEnv from '@fastify/env';
import celeriacPlugin, { celeriacStatusRoutes } from '@celeriac/fastify';
import { chord } from '@celeriac/core';
import { buildReport, countPages, requestInfo, summarize } from './tasks.mjs';

// The web process and the worker must agree on the result backend: without one,
// use db 1 of the broker's Redis (as examples/quickstart does).
const brokerUrl = process.env.CELERY_BROKER_URL;
if (brokerUrl?.startsWith('redis') && !process.env.CELERY_RESULT_BACKEND) process.env.CELERY_RESULT_BACKEND = brokerUrl.replace(/\/\d*$/, '') + '/1';

const envSchema = {
  type: 'object',
  properties: {
    PORT: { type: 'integer', default: 3000 },
    CELERY_BROKER_URL: { type: 'string', default: 'memory://' },
    CELERY_RESULT_BACKEND: { type: 'string' },
  },
};

/** Build the app; `overrides` (tests) win over the environment. */
export async function buildServer(overrides = {}) {
  const fastify = Fastify({ logger: overrides.logger ?? false, requestIdHeader: 'x-request-id' });
  await fastify.register(fastifyEnv, { schema: envSchema, data: { ...process.env, ...overrides.env } });
  // Settings come from fastify.config (CELERY_*); the worker runs in-process on memory:// only.
  await fastify.register(celeriacPlugin, { worker: overrides.worker });
  await fastify.register(celeriacStatusRoutes, { prefix: '/tasks' }); // GET /tasks/:id, /tasks/:id/events

  // A long task with progress: poll /tasks/:id or stream /tasks/:id/events.
  fastify.post('/reports', async (request, reply) => {
    const { pages = 5, msPerPage = 200 } = request.body ?? {};
    const result = await request.tasks.delay(buildReport, pages, msPerPage);
    return reply.code(202).send({ id: result.id, poll: `/tasks/${result.id}`, events: `/tasks/${result.id}/events` });
  });
  // A chord: one task per section in parallel, then one summary of their results.
  fastify.post('/reports/batch', async (request, reply) => {
    const sections = Array.isArray(request.body?.sections) ? request.body.sections.slice(0, 20) : ['intro', 'body', 'end'];
    const result = await request.tasks.applySignature(chord(sections.map((section) => countPages.s(section)), summarize.s()));
    return reply.code(202).send({ id: result.id, poll: `/tasks/${result.id}`, events: `/tasks/${result.id}/events` });
  });
  // What a task sees of this request (request id, traceparent / tracestate).
  fastify.post('/request-info', async (request, reply) => {
    const result = await request.tasks.delay(requestInfo);
    return reply.code(202).send({ id: result.id });
  });
  // A task only a Python worker defines, sent by name to the queue that worker
  // consumes (examples/fastify-app/python; `celery -A fastify_tasks worker -Q python`).
  fastify.post('/python/word-count', async (request, reply) => {
    const result = await request.tasks.send('py.text.word_count', [String(request.body?.text ?? '')], {}, { queue: 'python' });
    return reply.code(202).send({ id: result.id, poll: `/tasks/${result.id}` });
  });
  return fastify;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const fastify = await buildServer({ logger: true });
  let worker;
  if (process.argv.includes('--spawn-worker')) {
    const cli = fileURLToPath(new URL('../../packages/core/bin/celeriac.js', import.meta.url));
    const tasks = fileURLToPath(new URL('./tasks.mjs', import.meta.url));
    worker = spawn(process.execPath, [cli, 'worker', '-A', tasks, '-l', 'info'], { stdio: 'inherit', env: process.env });
  }
  const stop = async () => {
    await fastify.close();
    worker?.kill('SIGTERM');
  };
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  const address = await fastify.listen({ port: fastify.config.PORT, host: '127.0.0.1' });
  const { id } = await (await fetch(`${address}/reports`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"pages":3}' })).json();
  console.log(`\nEnqueued reports.build: open ${address}/tasks/${id}/events (SSE) or ${address}/tasks/${id}\n`);
}
