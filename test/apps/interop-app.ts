/**
 * The Celeriac side of the interop tests: tasks a Python producer calls by name
 * (`ts.*`), and `mixed.who`, which the Python module test/python/interop_tasks.py
 * implements too (returning 'py' there, 'ts' here).
 *
 * Run it as a worker with the CLI:
 *   node --import tsx packages/core/src/cli/main.ts worker -A test/apps/interop-app.ts \
 *     --broker redis://127.0.0.1:<port>/0 --backend redis://127.0.0.1:<port>/1
 * or import `app` and start a `Worker` in-process.
 *
 * `INTEROP_RECORD_URL` (e.g. redis://127.0.0.1:<port>/2): when set, `mixed.who`
 * RPUSHes `ts:<i>` to the list `interop:executions` (the Python task pushes
 * `py:<i>`), so a test can check that every task ran exactly once.
 */
import { Redis } from 'ioredis';
import { createApp, type TaskContext } from '../../packages/core/src/index.ts';

export const app = createApp('interop-ts', {
  brokerUrl: process.env.INTEROP_BROKER_URL ?? 'redis://127.0.0.1:6379/0',
  resultBackend: process.env.INTEROP_BACKEND_URL ?? 'redis://127.0.0.1:6379/1',
  taskTrackStarted: process.env.INTEROP_TRACK_STARTED === '1',
});

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** `ts.add(x, y)`; Python keyword arguments `x=`, `y=` fill the positions. */
export const add = app.task('ts.add', (x: number, y: number) => x + y, { argNames: ['x', 'y'] });

/** `ts.add` without argNames: Python keyword arguments fail it with a TypeError. */
export const addPositional = app.task('ts.add_positional', (x: number, y: number) => x + y);

/** Reads its kwargs from the context (opted in with acceptKwargs). */
export const kwargsAccepted = app.task(
  'ts.kwargs_accepted',
  function (this: TaskContext, x: number) {
    return { x, kwargs: this.kwargs };
  },
  { acceptKwargs: true },
);

/** Echo positional args and the kwargs (trailing object parameter). */
export const kwargs = app.task(
  'ts.kwargs',
  function (this: TaskContext, ...all: unknown[]) {
    const kw = all.pop() as Record<string, unknown>;
    return { args: all, kwargs: kw, contextKwargs: this.kwargs };
  },
  { trailingKwargs: true },
);

/** Always fails with a built-in TypeError. */
export const fail = app.task('ts.fail', (what: string): never => {
  throw new TypeError(`ts.fail rejected ${JSON.stringify(what)}`);
});

/** A custom error class: no Python class of that name exists. */
export class QuotaExceeded extends Error {
  override name = 'QuotaExceeded';
}

export const failCustom = app.task('ts.fail_custom', (n: number): never => {
  throw new QuotaExceeded(`quota of ${n} exceeded`);
});

/** Returns its arguments (link callbacks get the parent's result first; errbacks the failed task id). */
export const collect = app.task('ts.collect', (...args: unknown[]) => args);

/** Retries once with a 1 s countdown, then succeeds. */
export const flaky = app.task('ts.flaky', async function (this: TaskContext, value: string) {
  if (this.retries < 1) await this.retry({ countdown: 1 });
  return { value, retries: this.retries, ranAt: Date.now() / 1000 };
});

/** Sleeps `seconds`, returns them (watching STARTED go by). */
export const sleepFor = app.task('ts.sleep', async (seconds: number) => {
  await sleep(seconds * 1000);
  return seconds;
});

/** Unix time (seconds) at which the task ran. */
export const now = app.task('ts.now', () => Date.now() / 1000);

let recorder: Redis | undefined;

/** Same name as the Python task: which worker ran it is in the result. */
export const who = app.task('mixed.who', async (i: number): Promise<['ts', number]> => {
  const url = process.env.INTEROP_RECORD_URL;
  if (url) {
    recorder ??= new Redis(url, { lazyConnect: false, maxRetriesPerRequest: 3 });
    await recorder.rpush('interop:executions', `ts:${i}`);
  }
  await sleep(5);
  return ['ts', i];
});

/** Close the recorder connection (in-process workers call this in `after`). */
export async function closeRecorder(): Promise<void> {
  const r = recorder;
  recorder = undefined;
  await r?.quit();
}
