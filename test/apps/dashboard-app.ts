/**
 * Tasks for the dashboard browser test (test/dashboard-browser.test.ts): one that
 * adds, one that always fails, one that retries once then succeeds. Each run is
 * pushed to `dash:ran` in INTEROP_RECORD_URL, so the test can tell a revoked task
 * never ran.
 */
import { Redis } from 'ioredis';
import { createApp, type TaskContext } from '../../packages/core/src/index.ts';

export const app = createApp('dashboard-ts', {
  brokerUrl: process.env.INTEROP_BROKER_URL ?? 'memory://dashboard',
  resultBackend: process.env.INTEROP_BACKEND_URL,
});

let record: Redis | undefined;
async function ran(id: string): Promise<void> {
  if (!process.env.INTEROP_RECORD_URL) return;
  record ??= new Redis(process.env.INTEROP_RECORD_URL);
  await record.rpush('dash:ran', id);
}

/** The failure `dash.fail` raises (its name shows in the traceback). */
class DashboardBoom extends Error {
  override name = 'DashboardBoom';
}

/** `dash.add(x, y)`: x + y after 10 ms. */
export const add = app.task('dash.add', async function (this: TaskContext, x: number, y: number) {
  await ran(this.id);
  await new Promise((r) => setTimeout(r, 10));
  return x + y;
});

/** `dash.fail(i)`: always throws DashboardBoom. */
export const fail = app.task('dash.fail', async function (this: TaskContext, i: number) {
  await ran(this.id);
  throw new DashboardBoom(`boom ${i}`);
});

/** `dash.flaky(i)`: retries once (0.2 s later), then returns i. */
export const flaky = app.task('dash.flaky', async function (this: TaskContext, i: number) {
  await ran(this.id);
  if (this.retries === 0) await this.retry({ countdown: 0.2, exc: new Error(`flaky ${i}`) });
  return i;
});
