/**
 * The canvas tasks (`add`, `mul`, `xsum`, ...) shared by the canvas tests: the
 * memory:// tests register them in-process, the Redis tests load this module in a
 * `celeriac worker -A test/apps/canvas-app.ts` process. URLs come from the caller.
 */
import { appendFileSync } from 'node:fs';
import { chain, createApp, group, type Celeriac, type TaskContext, type WireSignature } from '../../packages/core/src/index.ts';

/** Register the canvas test tasks on `app`; returns typed handles. */
export function canvasTasks(app: Celeriac) {
  const add = app.task('tasks.add', (x: number, y: number) => x + y);
  const mul = app.task('tasks.mul', (x: number, y: number) => x * y);
  const xsum = app.task('tasks.xsum', (numbers: number[]) => numbers.flat(Infinity as 1).reduce((a: number, b) => a + (b as number), 0));
  const fail = app.task('tasks.fail', (..._args: unknown[]): never => {
    throw new TypeError('expected failure');
  });
  /** Old-style errback: receives the failed task's id; records it. */
  const recordError = app.task('tasks.record_error', (taskId: string, tag = 'err') => {
    if (process.env.CANVAS_LOG) appendFileSync(process.env.CANVAS_LOG, `${tag} ${taskId}\n`);
    return taskId;
  });
  /** Records each run (chord bodies: exactly-once checks), returns the sum. */
  const countedSum = app.task('tasks.counted_sum', function (this: TaskContext, numbers: number[]) {
    if (process.env.CANVAS_LOG) appendFileSync(process.env.CANVAS_LOG, `body ${this.id} ${process.pid}\n`);
    return numbers.reduce((a, b) => a + b, 0);
  });
  /** Sleeps a little (spread chord members over workers), returns x. */
  const slowEcho = app.task('tasks.slow_echo', async (x: number, ms?: number) => {
    await new Promise((r) => setTimeout(r, ms ?? 5));
    return x;
  });
  const identity = app.task('tasks.identity', (x: unknown) => x);
  const ctxInfo = app.task('tasks.ctx', function (this: TaskContext, x: unknown) {
    return { x, group: this.groupId, index: this.groupIndex, parent: this.parentId, root: this.rootId };
  });
  /** Celeriac-only tasks, for chains and chords that alternate with Python-only ones. */
  const tsOnlyAdd = app.task('ts.only_add', (x: number, y: number) => x + y);
  const tsOnlyXsum = app.task('ts.only_xsum', (numbers: number[]) => numbers.reduce((a, b) => a + b, 0));
  /** Receives a canvas (Celery's dict, from Python), rebuilds it with one call, sends it and returns its value. */
  const tsOnlyApply = app.task('ts.only_apply', async (wire: WireSignature) => {
    const result = await app.signatureFromWire(wire).delay();
    return result.get({ timeout: 20_000 });
  });
  /** this.replace(...) with a task, a chain, a group; this.addToChord(...). */
  const replaceWithAdd = app.task('tasks.replace_with_add', function (this: TaskContext, x: number) {
    return this.replace(add.s(x, 100));
  });
  const replaceWithChain = app.task('tasks.replace_with_chain', function (this: TaskContext, x: number) {
    return this.replace(chain(add.s(x, 1), mul.s(10)));
  });
  const replaceWithGroup = app.task('tasks.replace_with_group', function (this: TaskContext, n: number) {
    return this.replace(group([...Array(n).keys()].map((i) => add.s(i, i))));
  });
  const addsToChord = app.task('tasks.adds_to_chord', async function (this: TaskContext, x: number) {
    await this.addToChord(add.s(10, 10));
    return x;
  });
  return { add, mul, xsum, fail, recordError, countedSum, slowEcho, identity, ctxInfo, tsOnlyAdd, tsOnlyXsum, tsOnlyApply, replaceWithAdd, replaceWithChain, replaceWithGroup, addsToChord };
}

/** Each language's own tasks on its own queue (as test/python/canvas_tasks.py routes them); shared tasks.* on `celery`. */
export const CANVAS_ROUTES = { 'py.only_*': { queue: 'py' }, 'ts.only_*': { queue: 'ts' } };
export const app = createApp('canvas-app', { taskRoutes: CANVAS_ROUTES });
export const tasks = canvasTasks(app);
