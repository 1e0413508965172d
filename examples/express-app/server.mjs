// The Express example, one command each:
//   node examples/express-app/server.mjs                      memory://, an in-process worker, zero servers
//   CELERY_BROKER_URL=redis://127.0.0.1:6379/0 CELERY_RESULT_BACKEND=redis://127.0.0.1:6379/1 \
//     node examples/express-app/server.mjs --spawn-worker     Redis + a separate `celeriac worker` process
// In production run the two processes yourself, with the same URLs:
//   CELERY_BROKER_URL=... CELERY_RESULT_BACKEND=... node examples/express-app/server.mjs
//   CELERY_BROKER_URL=... CELERY_RESULT_BACKEND=... npx --no-install celeriac worker -A examples/express-app/tasks.mjs
import express from 'express';
import { celeriacErrorHandler, gracefulShutdown, queuePlugin, queueRouter } from '@celeriac/express';
import { spawn } from 'node:child_process';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { chord } from '@celeriac/core';
import { add, app, long, total, whoami, PYTHON_QUEUE, PYTHON_TASK } from './tasks.mjs';

/** The Express app; `env` holds the CELERY_* settings (default: process.env). */
export function buildApp(env = process.env) {
  const web = express();
  web.use(
    queuePlugin({
      app,
      CELERY_BROKER_URL: env.CELERY_BROKER_URL || 'memory://',
      CELERY_RESULT_BACKEND: env.CELERY_RESULT_BACKEND,
      worker: env.CELERIAC_WEB_WORKER === 'embedded' ? 'embedded' : undefined,
      headers: (ctx) => ({ tenant: typeof ctx.headers?.['x-tenant'] === 'string' ? ctx.headers['x-tenant'] : undefined }),
    }),
  );
  web.get('/', (req, res) => {
    res.type('html').send(`<h1>Celeriac + Express</h1>
<button onclick="start()">Start a long task</button><pre id="log"></pre>
<script>
async function start() {
  const { id, events } = await (await fetch('/long?steps=5', { method: 'POST' })).json();
  const log = document.getElementById('log'); log.textContent = 'task ' + id + '\\n';
  const source = new EventSource(events);
  source.onmessage = (e) => { const s = JSON.parse(e.data); log.textContent += s.state + ' ' + JSON.stringify(s.progress ?? s.result ?? '') + '\\n'; };
  source.addEventListener('end', () => source.close());
}
</script>`);
  });
  // Enqueue a long task with progress; answer at once with where to follow it.
  web.post('/long', async (req, res) => {
    const steps = Math.min(50, Math.max(1, Number(req.query.steps ?? 5)));
    const result = await req.tasks.applyAsync(long, [steps, Number(req.query.stepMs ?? 200)]);
    res.status(202).json({ id: result.id, status: `/tasks/${result.id}`, events: `/tasks/${result.id}/events` });
  });
  web.post('/add', async (req, res) => {
    const result = await req.tasks.delay(add, Number(req.query.x ?? 2), Number(req.query.y ?? 2));
    res.json({ id: result.id, result: await result.get({ timeout: 10_000 }) });
  });
  // A chord: n additions in parallel, then their sum; every message carries this request's context.
  web.post('/chord', async (req, res) => {
    const n = Math.min(20, Math.max(1, Number(req.query.n ?? 4)));
    const header = Array.from({ length: n }, (_, i) => add.s(i, i));
    const result = await req.tasks.applySignature(chord(header, total.s()));
    res.status(202).json({ id: result.id, status: `/tasks/${result.id}`, events: `/tasks/${result.id}/events` });
  });
  // The request id and trace context as the task saw them.
  web.get('/whoami', async (req, res) => {
    const result = await req.tasks.delay(whoami);
    res.json(await result.get({ timeout: 10_000 }));
  });
  // A task only Python defines, called by name, on the queue a Python worker consumes
  // (celery -A proj worker -Q python).
  web.post('/python/mul', async (req, res) => {
    const result = await req.tasks.send(PYTHON_TASK, [Number(req.query.x ?? 6), Number(req.query.y ?? 7)], {}, { queue: PYTHON_QUEUE });
    res.json({ id: result.id, result: await result.get({ timeout: 15_000 }) });
  });
  web.use(queueRouter()); // GET /tasks/:id (polling), GET /tasks/:id/events (SSE)
  web.use(celeriacErrorHandler()); // broker down → 503 JSON
  return web;
}

/** Listen on `port` (0 = any free port); resolves with the server and its URL. */
export function start(port = Number(process.env.PORT ?? 3000), env = process.env) {
  const server = buildApp(env).listen(port, '127.0.0.1');
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.once('listening', () => resolve({ server, url: `http://127.0.0.1:${server.address().port}` }));
  });
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  let worker;
  if (process.argv.includes('--spawn-worker')) {
    // The same tasks module in its own process, on the same broker and backend.
    const cli = fileURLToPath(new URL('../../packages/core/bin/celeriac.js', import.meta.url));
    const tasks = fileURLToPath(new URL('./tasks.mjs', import.meta.url));
    worker = spawn(process.execPath, [cli, 'worker', '-A', tasks, '-l', 'info'], { stdio: 'inherit', env: process.env });
  }
  const { server, url } = await start();
  console.log(`Express example on ${process.env.CELERY_BROKER_URL || 'memory://'}${worker ? ` with worker process ${worker.pid}` : ''}: open ${url}`);
  const stop = () =>
    void gracefulShutdown(server).then(() => {
      if (!worker || worker.exitCode !== null) process.exit(0);
      worker.once('exit', () => process.exit(0));
      worker.kill('SIGTERM');
    });
  process.once('SIGTERM', stop);
  process.once('SIGINT', stop);
}
