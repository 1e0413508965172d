/**
 * Compile-time checks of the canvas types (enforced by `npm run typecheck:tests`):
 * a chain's result is its last step's, a group's a list of its members', a
 * chord's its body's, map/starmap lists; plus the same values at run time on a
 * memory:// worker.
 */
import assert from 'node:assert/strict';
import { after, test } from 'node:test';
import { chain, chord, createApp, group, Worker, type AsyncResult, type GroupResult } from '../packages/core/src/index.ts';

type Equal<A, B> = (<T>() => T extends A ? 1 : 2) extends <T>() => T extends B ? 1 : 2 ? true : false;
function expectType<T extends true>(): T | void {}

const app = createApp('canvas-types', { brokerUrl: 'memory://canvas-types' });
const add = app.task('ct.add', (x: number, y: number) => x + y);
const show = app.task('ct.show', (x: number) => `#${x}`);
const total = app.task('ct.total', (xs: number[]) => xs.reduce((a, b) => a + b, 0));

const c = chain(add.s(1, 1), add.s(2), show.s());
const g = group(add.s(1, 1), add.s(2, 2));
const ch = chord([add.s(1, 1), add.s(2, 2)], total.s());
const piped = add.s(1, 1).pipe(show.s());
const m = total.map([[1], [2, 3]]);

expectType<Equal<Awaited<ReturnType<typeof c.delay>>, AsyncResult<string>>>();
expectType<Equal<Awaited<ReturnType<typeof g.delay>>, GroupResult<number>>>();
expectType<Equal<Awaited<ReturnType<typeof ch.delay>>, AsyncResult<number>>>();
expectType<Equal<Awaited<ReturnType<typeof piped.delay>>, AsyncResult<string>>>();
expectType<Equal<Awaited<ReturnType<typeof m.delay>>, AsyncResult<number[]>>>();

let worker: Worker | undefined;
after(async () => {
  await worker?.stop();
  await app.close();
});

test('the typed values at run time', async () => {
  worker = new Worker(app, { concurrency: 4, logLevel: 'silent' as never });
  await worker.start();
  const T = { timeout: 10_000 };
  const s: string = await (await c.delay()).get(T);
  const list: number[] = await (await g.delay()).get(T);
  const n: number = await (await ch.delay()).get(T);
  const p: string = await (await piped.delay()).get(T);
  const sums: number[] = await (await m.delay()).get(T);
  assert.deepEqual([s, list, n, p, sums], ['#4', [2, 4], 6, '#2', [1, 5]]);
});
