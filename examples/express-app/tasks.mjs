// The tasks module: imported by the web process (server.mjs) and by the worker
// (`npx --no-install celeriac worker -A examples/express-app/tasks.mjs`). It declares the
// app before any config exists; queuePlugin() binds it to the web config, the worker to
// -b / CELERY_BROKER_URL.
import { createApp } from '@celeriac/core';

export const app = createApp('express-example');

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/** Adds two numbers. */
export const add = app.task('example.add', (x, y) => x + y);

/** A long task that reports progress: PROGRESS { current, total } after each step. */
export const long = app.task('example.long', async function (steps = 5, stepMs = 200) {
  for (let current = 1; current <= steps; current++) {
    await sleep(stepMs);
    await this.updateState('PROGRESS', { current, total: steps });
  }
  return { steps, requestId: this.requestContext?.requestId ?? null };
});

/** A chord's body: the sum of its header's results, and the request that started the chord. */
export const total = app.task('example.total', function (numbers) {
  return { total: numbers.reduce((sum, n) => sum + n, 0), requestId: this.requestContext?.requestId ?? null };
});

/** What the task learned about the web request that sent it. */
export const whoami = app.task('example.whoami', function () {
  return { requestContext: this.requestContext ?? null, tenant: this.headers.tenant ?? null };
});

/** A task only a Python worker defines (test/python/interop_tasks.py); sent by name to its queue. */
export const PYTHON_TASK = 'tasks.mul';
export const PYTHON_QUEUE = 'python';
