// The module both the web process and the worker import:
//   celeriac worker -A examples/quickstart/tasks.mjs
import { createApp, currentTask } from '@celeriac/core';

const redis = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
export const app = createApp('quickstart', { brokerUrl: `${redis}/0`, resultBackend: `${redis}/1` });

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
