/**
 * The app for the worker log-format tests (`-A test/apps/log-app.ts`): a task that
 * returns, one that raises, one that retries. URLs come from the command line.
 */
import { createApp, type LogFormat, type TaskContext } from '../../packages/core/src/index.ts';

export const app = createApp('log-app', {
  workerLogFormat: (process.env.CELERIAC_TEST_LOG_FORMAT as LogFormat | undefined) ?? 'auto',
});

export const add = app.task('tasks.add', (x: number, y: number) => x + y);

export const fail = app.task('tasks.fail', (why: string) => {
  throw new TypeError(why);
});

export const retryOnce = app.task('tasks.retry_once', async function (this: TaskContext) {
  if (this.retries === 0) await this.retry({ countdown: 0.1, exc: new Error('flaky') });
  return 'second time';
});
