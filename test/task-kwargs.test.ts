/**
 * Keyword arguments a task does not declare fail the task with a Python-readable
 * TypeError (as calling a Python function with an unexpected keyword does), instead
 * of being dropped silently. Through a real worker on the memory:// transport; the
 * same against a Python producer is in interop-py-to-ts.test.ts.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { createApp, RemoteTaskError, States, Worker, type TaskContext } from '../packages/core/src/index.ts';
import { callArguments } from '../packages/core/src/worker/call-arguments.ts';

const app = createApp('kwargstest', { brokerUrl: 'memory://task-kwargs' });
app.task('k.add', (x: number, y: number) => x + y);
app.task('k.named', (x: number, y: number) => x - y, { argNames: ['x', 'y'] });
app.task('k.trailing', (x: number, opts: Record<string, unknown>) => ({ x, opts }), { trailingKwargs: true });
app.task('k.accepts', function (this: TaskContext, x: number) {
  return { x, kwargs: this.kwargs };
}, { acceptKwargs: true });

let worker: Worker;
before(async () => {
  worker = new Worker(app, { concurrency: 2, logLevel: 'silent' });
  await worker.start();
});
after(async () => {
  await worker.stop();
  await app.close();
});

async function failure(name: string, args: unknown[], kwargs: Record<string, unknown>): Promise<RemoteTaskError> {
  const r = await app.sendTask(name, args, kwargs);
  const err = await r.get({ timeout: 2000 }).then(
    (v) => assert.fail(`expected FAILURE, got SUCCESS ${JSON.stringify(v)}`),
    (e: unknown) => e,
  );
  assert.ok(err instanceof RemoteTaskError, String(err));
  assert.equal(await r.state, States.FAILURE);
  return err;
}

test('undeclared kwargs fail the task with TypeError naming the task, the keys and the fix (not SUCCESS NaN)', async () => {
  const err = await failure('k.add', [], { x: 1, y: 2 });
  assert.equal(err.name, 'TypeError');
  assert.equal(err.excModule, 'builtins');
  assert.match(err.message, /^k\.add\(\) got unexpected keyword arguments 'x', 'y'/);
  assert.match(err.message, /argNames: \['x', 'y'\]/);
  assert.match(err.message, /trailingKwargs: true/);
  assert.match(err.message, /acceptKwargs: true/);
});

test('a key argNames does not list fails; one already given positionally is "multiple values", as in Python', async () => {
  const unexpected = await failure('k.named', [], { x: 1, y: 2, z: 3 });
  assert.match(unexpected.message, /^k\.named\(\) got an unexpected keyword argument 'z'/);
  const twice = await failure('k.named', [5], { x: 1 });
  assert.match(twice.message, /^k\.named\(\) got multiple values for argument 'x'/);
});

test('declared kwargs still work: argNames, trailingKwargs, acceptKwargs (this.kwargs)', async () => {
  assert.equal(await (await app.sendTask('k.named', [], { x: 10, y: 3 })).get({ timeout: 2000 }), 7);
  assert.deepEqual(await (await app.sendTask('k.trailing', [1], { a: 2 })).get({ timeout: 2000 }), { x: 1, opts: { a: 2 } });
  assert.deepEqual(await (await app.sendTask('k.accepts', [1], { a: 2 })).get({ timeout: 2000 }), { x: 1, kwargs: { a: 2 } });
  assert.equal(await (await app.sendTask('k.add', [2, 3], {})).get({ timeout: 2000 }), 5, 'no kwargs: nothing to declare');
});

test('callArguments (unit): positions, trailing object, errors', () => {
  assert.deepEqual(callArguments('t', {}, [1, 2], {}), [1, 2]);
  assert.deepEqual(callArguments('t', { argNames: ['x', 'y'] }, [1], { y: 2 }), [1, 2]);
  assert.deepEqual(callArguments('t', { argNames: ['x', 'y'], trailingKwargs: true }, [], { y: 2, z: 3 }), [undefined, 2, { z: 3 }]);
  assert.deepEqual(callArguments('t', { acceptKwargs: true }, [1], { z: 3 }), [1]);
  assert.deepEqual(callArguments('t', { argNames: ['toString'] }, [], {}), [], 'only own keys of kwargs count');
  assert.throws(() => callArguments('t', {}, [], { z: 1 }), (err: Error) => err instanceof TypeError && /^t\(\) got an unexpected keyword argument 'z'/.test(err.message));
  assert.throws(() => callArguments('t', { argNames: ['x'] }, [1], { x: 2 }), /got multiple values for argument 'x'/);
});
