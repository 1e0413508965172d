/**
 * The canvas on the embedded memory:// transport and backend, with a worker in
 * this process: every acceptance example of the canvas issue with its exact
 * value, the nesting cases, failure semantics (ChordError, errbacks, a failed
 * chain step failing the rest), GroupResult save/restore, and refusals.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { chain, chord, createApp, group, GroupResult, RemoteTaskError, Signature, Worker } from '../packages/core/src/index.ts';
import { canvasTasks } from './apps/canvas-app.ts';
import { replaceExamples } from './helpers/canvas-examples.ts';

const app = createApp('canvas-mem', { brokerUrl: 'memory://canvas-memory' });
const tasks = canvasTasks(app);
const { add, mul, xsum, fail, recordError, ctxInfo } = tasks;
void recordError;
const errbackCalls: { id: string; exc: string; hasTraceback: boolean }[] = [];
app.task('tasks.new_style_errback', (request: { id: string }, exc: Error, traceback: string | null) => {
  errbackCalls.push({ id: request.id, exc: `${exc.name}: ${exc.message}`, hasTraceback: typeof traceback === 'string' });
});
const newStyleErrback = app.signature('tasks.new_style_errback');
const oldStyleIds: string[] = [];
const oldStyleErrback = app.task('tasks.old_style_errback', (failedId: string) => void oldStyleIds.push(failedId));
let worker: Worker;
const T = { timeout: 10_000 };
const range = (n: number) => [...Array(n).keys()];

before(async () => {
  worker = new Worker(app, { concurrency: 8, logLevel: 'silent' as never });
  await worker.start();
});
after(async () => {
  await worker.stop();
  await app.close();
});

test('link: add.applyAsync([2, 2], { link: add.s(16) }) → the child returns 20', async () => {
  const r = await add.applyAsync([2, 2], {}, { link: add.s(16) });
  assert.equal(await r.get(T), 4);
  const [child] = await r.children;
  assert.ok(child, 'the parent lists the callback as its child');
  assert.equal(await app.AsyncResult(child.id).get(T), 20);
});

test('partial arguments go first: add.s(2).delay(8) runs add(8, 2)', async () => {
  const sub = app.task('tasks.sub', (x: number, y: number) => x - y);
  void sub;
  const r = await app.signature('tasks.sub', [2]).delay(8);
  assert.equal(await r.get(T), 6);
});

test('group(add.s(i, i) for 0..9) → [0, 2, ..., 18], members carry the group id', async () => {
  const res = await group(range(10).map((i) => add.s(i, i))).delay();
  assert.ok(res instanceof GroupResult);
  assert.deepEqual(await res.get(T), [0, 2, 4, 6, 8, 10, 12, 14, 16, 18]);
  assert.equal(await res.ready(), true);
  assert.equal(await res.successful(), true);
  assert.equal(await res.failed(), false);
  assert.equal(await res.completedCount(), 10);
  const info = await group([ctxInfo.s('a'), ctxInfo.s('b')]).applyAsync([], {}, { taskId: 'g-fixed-id' });
  const values = (await info.get(T)) as { group: string; index: number | null }[];
  assert.deepEqual(values.map((v) => [v.group, v.index]), [['g-fixed-id', null], ['g-fixed-id', null]]);
});

test('chain(add.s(2, 2), add.s(4), add.s(8)) → 16, parent walks back 8, 4', async () => {
  const res = await chain(add.s(2, 2), add.s(4), add.s(8)).delay();
  assert.equal(await res.get(T), 16);
  assert.equal(await res.parent!.ready(), true);
  assert.equal(await app.AsyncResult(res.parent!.id).get(T), 8);
  assert.equal(await app.AsyncResult(res.parent!.parent!.id).get(T), 4);
  assert.equal(res.parent!.parent!.parent, null);
});

test('add.s(4, 4).pipe(mul.s(8)) → 64; partial chain chain(add.s(4), mul.s(8)) called with 4 → 64', async () => {
  assert.equal(await (await add.s(4, 4).pipe(mul.s(8)).delay()).get(T), 64);
  assert.equal(await (await chain(add.s(4), mul.s(8)).delay(4)).get(T), 64);
});

test('((4 + 16) * 2 + 4) * 8 → 352', async () => {
  const res = await chain(add.s(4, 16), mul.s(2), add.s(4), mul.s(8)).delay();
  assert.equal(await res.get(T), 352);
});

test('chord(add.s(i, i) for 0..9, xsum.s()) → 90', async () => {
  const res = await chord(range(10).map((i) => add.s(i, i)), xsum.s()).delay();
  assert.equal(await res.get(T), 90);
  assert.ok(res.parent instanceof GroupResult, "the body's parent is the header's GroupResult");
  assert.deepEqual(await (res.parent as GroupResult).get(T), [0, 2, 4, 6, 8, 10, 12, 14, 16, 18]);
});

test('xsum.map([range(10), range(100)]) → [45, 4950]; add.starmap(zip) → [0, 2, ..., 18]', async () => {
  assert.deepEqual(await (await xsum.map([range(10), range(100)]).delay()).get(T), [45, 4950]);
  assert.deepEqual(await (await add.starmap(range(10).map((i) => [i, i] as [number, number])).delay()).get(T), [0, 2, 4, 6, 8, 10, 12, 14, 16, 18]);
});

test('add.chunks(zip(range(100), range(100)), 10) → ten lists of ten', async () => {
  const pairs = range(100).map((i) => [i, i] as [number, number]);
  const res = await add.chunks(pairs, 10).delay();
  const expected = range(10).map((c) => range(10).map((i) => 2 * (c * 10 + i)));
  assert.deepEqual(await res.get(T), expected);
  assert.equal(add.chunks(pairs, 10).group().tasks.length, 10);
});

test('add.si(2, 2) | add.si(4, 4) | add.si(8, 8) → 16 with parent 8 and parent.parent 4', async () => {
  const res = await add.si(2, 2).pipe(add.si(4, 4)).pipe(add.si(8, 8)).delay();
  assert.equal(await res.get(T), 16);
  assert.equal(await app.AsyncResult(res.parent!.id).get(T), 8);
  assert.equal(await app.AsyncResult(res.parent!.parent!.id).get(T), 4);
});

test('partial group: group(add.s(i) for 0..9)(10) → [10, ..., 19]', async () => {
  const res = await group(range(10).map((i) => add.s(i))).delay(10);
  assert.deepEqual(await res.get(T), range(10).map((i) => i + 10));
});

test('nesting: a group followed by a task in a chain becomes a chord', async () => {
  const a = await chain(add.s(1, 1), group(add.s(1), add.s(2)), xsum.s()).delay();
  assert.equal(await a.get(T), 3 + 4);
});

test('nesting: chains in a group', async () => {
  const b = await group(chain(add.s(1, 1), mul.s(10)), chain(add.s(2, 2), mul.s(10))).delay();
  assert.deepEqual(await b.get(T), [20, 40]);
});

test('nesting: a chord in a chain, then more steps', async () => {
  const c = await chain(add.s(1, 1), chord([add.s(1), add.s(2)], xsum.s()), mul.s(10)).delay();
  assert.equal(await c.get(T), (2 + 1 + 2 + 2) * 10);
});

test('nesting: a chord body that is a chain', async () => {
  const d = await chord([add.s(1, 1), add.s(2, 2)], xsum.s().pipe(mul.s(3))).delay();
  assert.equal(await d.get(T), 18);
});

test('nesting: a group of chords', async () => {
  const e = await group(chord([add.s(1, 1), add.s(2, 2)], xsum.s()), chord([add.s(3, 3), add.s(4, 4)], xsum.s())).delay();
  assert.deepEqual(await e.get(T), [6, 14]);
});

test('nesting: a chain ending in a group (the worker expands it)', async () => {
  const f = await chain(add.s(2, 2), group(add.s(1), mul.s(3))).delay();
  assert.ok(f instanceof GroupResult);
  assert.deepEqual(await f.get(T), [5, 12]);
});

test('nesting: a chain inside a chord header', async () => {
  const g = await chord([chain(add.s(1, 1), mul.s(5)), add.s(3, 3)], xsum.s()).delay();
  assert.equal(await g.get(T), 16);
});

test('a failing chord member fails the body with ChordError and runs the body errbacks (old and new style)', async () => {
  errbackCalls.length = 0;
  const body = xsum.s().linkError(newStyleErrback).linkError(oldStyleErrback.s());
  const res = await chord([add.s(1, 1), fail.s(), add.s(2, 2)], body).delay();
  const err = await res.get(T).then(
    () => assert.fail('the chord body must fail'),
    (e: unknown) => e,
  );
  assert.ok(err instanceof RemoteTaskError);
  assert.equal(err.name, 'ChordError');
  assert.match(err.message, /^Dependency [0-9a-f-]{36} raised TypeError\('expected failure'\)$/);
  assert.deepEqual(errbackCalls.map((c) => c.id), [res.id]);
  assert.equal(errbackCalls[0]!.exc, `ChordError: ${err.message}`);
  await waitUntil(() => oldStyleIds.includes(res.id));
});

test('a failing chain step fails every later step, calls its errbacks, and errbacks get the failed id', async () => {
  errbackCalls.length = 0;
  const res = await chain(add.s(1, 1), fail.s(), add.s(1), add.s(2)).linkError(newStyleErrback).delay();
  await assert.rejects(res.get(T), (e: Error) => e.name === 'TypeError' && e.message === 'expected failure');
  await assert.rejects(app.AsyncResult(res.parent!.id).get(T), /expected failure/);
  assert.equal(errbackCalls.length, 1, 'the errback ran for the failed step only');
  assert.equal(errbackCalls[0]!.id, res.parent!.parent!.id);
  assert.equal(errbackCalls[0]!.hasTraceback, true);
  // old style: a task message with the failed task's id
  const r2 = await fail.applyAsync([], {}, { linkError: oldStyleErrback.s() });
  await assert.rejects(r2.get(T));
  await waitUntil(() => oldStyleIds.includes(r2.id));
});

test('GroupResult save / restore as celery-taskset-meta-<id>', async () => {
  const res = await group(add.s(1, 1), add.s(2, 2)).delay();
  await res.save();
  const restored = await app.restoreGroupResult<number>(res.id);
  assert.ok(restored);
  assert.deepEqual(restored.results.map((r) => r.id), res.results.map((r) => r.id));
  assert.deepEqual(await restored.get(T), [2, 4]);
  await restored.delete();
  assert.equal(await app.restoreGroupResult(res.id), null);
});

test('a signature from the wire (subtask_type) is rebuilt with one call and sent', async () => {
  const wire = JSON.parse(JSON.stringify(chord([add.s(1, 2), add.s(3, 4)], xsum.s()))) as ReturnType<Signature['toJSON']>;
  assert.equal(wire.subtask_type, 'chord');
  const res = await app.signatureFromWire<number>(wire).delay();
  assert.equal(await res.get(T), 10);
  const sig = app.signature('tasks.add', [2], {}, { countdown: 0 }).clone([1]).set({ priority: 3 });
  assert.deepEqual(sig.toJSON(), { task: 'tasks.add', args: [1, 2], kwargs: {}, options: { countdown: 0, priority: 3 }, subtask_type: null, immutable: false });
});

test('a chord on an app with no result backend is refused at call time, nothing sent', async () => {
  const noBackend = createApp('canvas-nobackend', { brokerUrl: 'redis://127.0.0.1:1/0' });
  const a = noBackend.task('tasks.add', (x: number, y: number) => x + y);
  await assert.rejects(chord([a.s(1, 1)], a.s(1)).delay(), /No result backend configured/);
  await noBackend.close();
});

for (const example of replaceExamples(tasks)) {
  test(example.name, async () => {
    assert.deepEqual(await example.run(), example.expected);
  });
}

async function waitUntil(check: () => boolean): Promise<void> {
  for (let i = 0; i < 400 && !check(); i++) await new Promise((r) => setTimeout(r, 25));
  assert.ok(check(), 'condition not met within 10 s');
}
