/**
 * The app a `celeriac worker` subprocess loads in the CLI and fault tests
 * (`-A test/apps/worker-app.ts`). URLs come from the command line.
 */
import { appendFileSync } from 'node:fs';
import { createApp, type TaskContext } from '../../packages/core/src/index.ts';

export const app = createApp('worker-app', {
  workerHeartbeatInterval: Number(process.env.CELERIAC_TEST_HEARTBEAT ?? 2),
  workerEtaHoldSeconds: Number(process.env.CELERIAC_TEST_ETA_HOLD ?? 60),
  ...(process.env.CELERIAC_TEST_MAX_RETRIES ? { brokerConnectionMaxRetries: Number(process.env.CELERIAC_TEST_MAX_RETRIES) } : {}),
});

export const add = app.task('tasks.add', (x: number, y: number) => x + y);

/** Records its start (CELERIAC_TEST_STARTLOG), sleeps, records that it finished (CELERIAC_TEST_RUNLOG) and returns. */
export const slow = app.task(
  'tasks.slow',
  async (ms: number, tag: string) => {
    if (process.env.CELERIAC_TEST_STARTLOG) appendFileSync(process.env.CELERIAC_TEST_STARTLOG, `${tag} ${process.pid}\n`);
    await new Promise((r) => setTimeout(r, ms));
    if (process.env.CELERIAC_TEST_RUNLOG) appendFileSync(process.env.CELERIAC_TEST_RUNLOG, `${tag} ${process.pid}\n`);
    return tag;
  },
  { acksLate: true },
);

/** Blocks the event loop (CPU-bound, synchronous) for `ms`, then records the run. */
export const block = app.task(
  'tasks.block',
  (ms: number, tag: string) => {
    const until = Date.now() + ms;
    while (Date.now() < until) {
      // busy: no heartbeat can run on this thread
    }
    if (process.env.CELERIAC_TEST_RUNLOG) appendFileSync(process.env.CELERIAC_TEST_RUNLOG, `${tag} ${process.pid}\n`);
    return tag;
  },
  { acksLate: true },
);

/** Retries once (publishing through the app's own producer connection), then returns `tag`. Not exported: -A lists exports. */
app.task('tasks.retry_once', async function (this: TaskContext, tag: string) {
  if (this.retries < 1) await this.retry({ countdown: 0.1 });
  return tag;
});
