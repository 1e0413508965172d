// The module both the web process and the worker import:
//   celeriac worker -A examples/quickstart/tasks.mjs
// Redis URLs come from the environment, as with the celeriac CLI
// (CELERIAC_BROKER_URL or CELERY_BROKER_URL; CELERIAC_RESULT_BACKEND or
// CELERY_RESULT_BACKEND), defaulting to db 0 and db 1 of a local redis-server.
import { createApp, currentTask } from '@celeriac/core';

const env = process.env;
const brokerUrl = env.CELERIAC_BROKER_URL ?? env.CELERY_BROKER_URL ?? 'redis://127.0.0.1:6379/0';
// Without a backend URL: the broker's server, db 1.
const resultBackend =
  env.CELERIAC_RESULT_BACKEND ?? env.CELERY_RESULT_BACKEND ?? `${brokerUrl.replace(/\/\d*$/, '')}/1`;

export const app = createApp('quickstart', { brokerUrl, resultBackend });

export const add = app.task('tasks.add', (x, y) => x + y);

export const flaky = app.task(
  'tasks.flaky',
  async (n) => {
    const task = currentTask();
    if (task.retries < 1) return task.retry({ exc: new Error('not yet'), countdown: 1 });
    return `ok after ${task.retries} retry, n=${n}`;
  },
  { maxRetries: 3 },
);
