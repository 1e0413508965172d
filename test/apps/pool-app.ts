/**
 * Tasks for the thread and process pool tests (`appModule: 'test/apps/pool-app.ts'`):
 * the test imports this app, and every pool thread / child loads this same module.
 */
import { existsSync, writeFileSync } from 'node:fs';
import { getHeapStatistics } from 'node:v8';
import { setTimeout as sleep } from 'node:timers/promises';
import { threadId } from 'node:worker_threads';
import { createApp, SoftTimeLimitExceeded, type Signature, type TaskContext } from '../../packages/core/src/index.ts';
import { canvasTasks } from './canvas-app.ts';

export const app = createApp('pool-app', { brokerUrl: 'memory://pool-app' });

/** The canvas tasks, with this.replace(...) / this.addToChord(...) ones (forwarded to the worker from a member). */
export const canvas = canvasTasks(app);

/** this.addToChord(sig, true): what came back (the signature, frozen into this task's chord, not sent). */
app.task('pool.addsToChordLazy', async function (this: TaskContext) {
  const sig = (await this.addToChord(canvas.add.s(5, 5), true)) as Signature;
  return { task: sig.task, args: sig.args, frozen: typeof sig.id === 'string', sameGroup: sig.options.group_id === this.groupId };
});

/** What workerProcessInit told this thread / child (sent once it loaded this module). */
let processInit: unknown = null;
app.signals.connect('workerProcessInit', (payload) => void (processInit = payload));
app.task('pool.processInit', () => processInit);

/** What the task sees of its message in a member (Celery's self.request.properties / delivery_info). */
app.task('pool.request', function (this: TaskContext) {
  return { properties: this.properties, deliveryInfo: this.deliveryInfo, headers: { id: this.headers.id, task: this.headers.task }, hostname: this.hostname };
});

/** Where it ran. */
app.task('pool.where', () => ({ pid: process.pid, threadId }));

app.task('pool.add', (x: number, y: number) => x + y);

/** Synchronous CPU work for `ms` milliseconds (blocks its thread / process). */
app.task('pool.spin', (ms: number) => {
  const end = Date.now() + ms;
  let n = 0;
  while (Date.now() < end) n++;
  return { pid: process.pid, threadId, n: n > 0 };
});

/** A synchronous loop that never ends: only terminating its thread / child stops it. */
app.task('pool.forever', () => {
  for (;;) {
    // spin
  }
});

/** Waits with the task's signal: the soft limit stops it. */
app.task('pool.soft', async function (cleanUp: boolean) {
  try {
    await sleep(10_000, undefined, { signal: this.signal });
    return 'slept';
  } catch (err) {
    if (cleanUp && this.signal.reason instanceof SoftTimeLimitExceeded) return 'cleaned up';
    throw err;
  }
});

/** Ends its own thread / process mid-task. */
app.task('pool.crash', () => {
  process.exit(3);
});

/** Ends its thread / process the first time (marker file absent), succeeds the next. Acks late, requeued when its worker is lost. */
app.task(
  'pool.crashOnce',
  (marker: string) => {
    if (!existsSync(marker)) {
      writeFileSync(marker, 'crashed once');
      process.exit(3);
    }
    return 'second run';
  },
  { acksLate: true, rejectOnWorkerLost: true },
);

/** The same, acks late but without rejectOnWorkerLost: the loss is final (FAILURE). */
app.task('pool.crashLate', () => process.exit(3), { acksLate: true });

/** Memory as the pool measures it after a task, KiB: a thread's V8 heap, a child's RSS. */
app.task('pool.memory', (kind: 'threads' | 'processes') => Math.round((kind === 'threads' ? getHeapStatistics().used_heap_size : process.memoryUsage().rss) / 1024));

/** Retries once (through the parent's broker connection), then succeeds. */
app.task('pool.retryOnce', async function () {
  if (this.retries === 0) await this.retry({ countdown: 0 });
  return `retried ${this.retries}`;
});

/** Reports progress, then waits to be told to finish. */
app.task('pool.progress', async function (ms: number) {
  await this.updateState('PROGRESS', { current: 1, total: 2 });
  await sleep(ms);
  return 'done';
});

/** An error class with a Python name. */
export class ExpectedException extends Error {
  static excModule = 'proj.errors';
}
app.task('pool.throwExpected', () => {
  throw new ExpectedException('as planned');
});

/** A value that cannot leave the thread / child. */
app.task('pool.unclonable', () => () => 42);

/** Allocates until its thread / child runs out of heap. */
app.task('pool.hog', () => {
  const hoard: number[][] = [];
  for (;;) hoard.push(new Array(1_000_000).fill(1));
});

/** Keeps `mb` MiB alive in its thread / child (for maxMemoryPerChild). */
const kept: Buffer[] = [];
app.task('pool.keep', (mb: number) => {
  kept.push(Buffer.alloc(mb * 1024 * 1024, 1));
  const arrays: number[][] = [];
  for (let i = 0; i < mb; i++) arrays.push(new Array(131_072).fill(i)); // ~1 MiB of heap each
  (globalThis as { keptArrays?: number[][][] }).keptArrays = [...((globalThis as { keptArrays?: number[][][] }).keptArrays ?? []), arrays];
  return { pid: process.pid, threadId };
});

/** Counts in-flight bodies through a shared file-free channel: returns its own start/end times. */
app.task('pool.window', async (ms: number) => {
  const start = Date.now();
  const end = start + ms;
  while (Date.now() < end) {
    // CPU-bound on purpose
  }
  return { start, end: Date.now(), pid: process.pid, threadId };
});

/** CPU for `ms`, then ends its own thread / process (a task held ahead by the member is still waiting then). */
app.task('pool.crashAfter', (ms: number) => {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    // CPU-bound on purpose
  }
  process.exit(3);
});

/** CPU for `ms`, then keeps `mb` MiB alive (maxMemoryPerChild with a task held ahead). */
app.task('pool.keepAfter', (mb: number, ms: number) => {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    // CPU-bound on purpose
  }
  kept.push(Buffer.alloc(mb * 1024 * 1024, 1));
  const arrays: number[][] = [];
  for (let i = 0; i < mb; i++) arrays.push(new Array(131_072).fill(i));
  (globalThis as { keptArrays?: number[][][] }).keptArrays = [...((globalThis as { keptArrays?: number[][][] }).keptArrays ?? []), arrays];
  return { pid: process.pid, threadId };
});

/** Acks late: its message is acknowledged once it ran. */
app.task('pool.lateAck', () => 'acked late', { acksLate: true });
