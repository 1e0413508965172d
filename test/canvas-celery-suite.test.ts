/**
 * Canvas behaviours Celery 5.2.6's own integration tests (t/integration/test_canvas.py,
 * run by scripts/celery-suite.mjs) found missing or wrong in Celeriac, each checked
 * here on memory:// with a worker in this process, with exact values.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { chain, chord, createApp, group, RemoteTaskError, Worker, type AsyncResult, type TaskContext } from '../packages/core/src/index.ts';
import { waitFor } from './helpers/worker-process.ts';

const app = createApp('canvas-suite', { brokerUrl: 'memory://canvas-celery-suite' });
const add = app.task('suite.add', (x: number, y: number) => x + y);
/** Sends a chain and returns its result handle, as t.integration.tasks.build_chain_inside_task does. */
const sendsChain = app.task('suite.sends_chain', async () => {
  const inner: AsyncResult = await chain(add.s(1, 1), add.s(2), group(add.s(3), add.s(4))).delay();
  return inner;
});
const identity = app.task('suite.identity', (x: unknown) => x);
const concat = app.task('suite.concat', (x: string, y: string) => x + y);
const boom = app.task('suite.boom', (..._args: unknown[]): never => {
  throw new TypeError('boom');
});
/** What the link / link_error tasks recorded, in order. */
const echoes: string[] = [];
const echo = app.task('suite.echo', (message: string) => void echoes.push(message));
/** As t.integration.tasks.replace_with_chain: replaced by a two-step chain carrying a callback. */
const replaceWithLinkedChain = app.task('suite.replace_with_linked_chain', function (this: TaskContext, x: string) {
  return this.replace(chain(identity.s(x), identity.s()).link(echo.si('chain callback')));
});
/** As t.integration.tasks.replace_with_chain_which_raises: replaced by a failing chain carrying an errback. */
const replaceWithFailingChain = app.task('suite.replace_with_failing_chain', function (this: TaskContext, x: string) {
  return this.replace(chain(identity.s(x), boom.s()).linkError(echo.si('chain errback')));
});
const replaceWithEmptyChain = app.task('suite.replace_with_empty_chain', function (this: TaskContext) {
  return this.replace(chain());
});
/** Old-style errback (gets the failed task's id), returns it: errback_old_style. */
const oldStyleErrback = app.task('suite.old_style_errback', (failedId: string) => failedId);
const never = app.task('suite.never', (..._args: unknown[]) => 'should not run');
let worker: Worker;
const T = { timeout: 10_000 };

before(async () => {
  worker = new Worker(app, { concurrency: 4, logLevel: 'silent' as never });
  await worker.start();
});
after(async () => {
  await worker.stop();
  await app.close();
});

test('a task returning a result handle stores its as_tuple() (Celery\'s prepare_value), not a serialization error (test_groupresult_serialization)', async () => {
  const r = await sendsChain.delay();
  const value = (await r.get(T)) as unknown as unknown[];
  // [[group id, [[add(2) id, [[add(1, 1) id, null], null]], null]], [[[member id, null], null], [[member id, null], null]]]
  assert.equal(value.length, 2);
  const [[groupId, parent], members] = value as [[string, unknown[]], unknown[][]];
  assert.equal(typeof groupId, 'string');
  assert.ok(Array.isArray(parent), 'the group\'s parent (the add(2) step) is a list, as Python sees it');
  assert.equal(members.length, 2);
  const memberIds = members.map((m) => (m as [[string, null], null])[0][0]);
  assert.deepEqual(await Promise.all(memberIds.map((id) => app.AsyncResult(id).get(T))), [7, 8]);
});

test('a task in the middle of a chain replaced by a chain with a callback: the chain goes on and the callback runs (test_chain_replaced_with_a_chain_and_a_callback)', async () => {
  echoes.length = 0;
  const r = await chain(identity.s('Hello '), replaceWithLinkedChain.s(), concat.s('world')).delay();
  assert.equal(await r.get(T), 'Hello world');
  await waitFor(() => echoes.length > 0, 5_000, 'the replacement chain\'s callback');
  assert.deepEqual(echoes, ['chain callback']);
});

test('a task in the middle of a chain replaced by a failing chain with an errback: the errback runs once, the chain fails (test_chain_replaced_with_a_chain_and_an_error_callback)', async () => {
  echoes.length = 0;
  const r = await chain(identity.s('Hello '), replaceWithFailingChain.s(), concat.s(' never')).delay();
  const err = await r.get(T).then(() => assert.fail('expected the chain to fail'), (e: unknown) => e);
  assert.ok(err instanceof RemoteTaskError, String(err));
  assert.equal(err.name, 'TypeError');
  await waitFor(() => echoes.length > 0, 5_000, 'the replacement chain\'s errback');
  assert.deepEqual(echoes, ['chain errback']);
});

test('a | b keeps a chain\'s link_error: every step of the spliced chain carries it (Celery\'s unchain_tasks)', () => {
  const left = chain(identity.s(1), identity.s()).linkError(echo.si('eb'));
  const joined = left.pipe(identity.s()) as ReturnType<typeof chain>;
  const errbacksOf = (i: number) => (joined.tasks[i]!.options.link_error as { task: string }[] | undefined)?.map((e) => e.task);
  assert.deepEqual([errbacksOf(0), errbacksOf(1), errbacksOf(2)], [['suite.echo'], ['suite.echo'], undefined]);
});

test('replacing with an empty chain fails the task as Celery\'s celery.exceptions.ImproperlyConfigured (test_replace_chain_with_empty_chain)', async () => {
  const r = await chain(identity.s(1), replaceWithEmptyChain.s()).delay();
  const err = await r.get(T).then(() => assert.fail('expected a failure'), (e: unknown) => e);
  assert.ok(err instanceof RemoteTaskError, String(err));
  assert.equal(err.name, 'ImproperlyConfigured');
  assert.equal(err.excModule, 'celery.exceptions');
  assert.equal(err.message, 'Cannot replace with an empty chain');
});

test('a failed chord body lists the errbacks it sent as its children, and the errback got the body\'s id (test_chord_on_error)', async () => {
  const res = await chord([add.s(1, 2), add.s(3, 4), boom.s()], never.s().onError(oldStyleErrback.s())).delay();
  const err = await res.get(T).then(() => assert.fail('expected the chord to fail'), (e: unknown) => e);
  assert.ok(err instanceof RemoteTaskError, String(err));
  assert.equal(err.name, 'ChordError');
  const backend = await app.getBackend();
  const doc = await backend.getResult(res.id);
  // [[errback group id, null], [[[errback id, null], null]]]: the errbacks go out as a group.
  const [groupTuple] = doc!.children as [[[string, null], [[[string, null], null]]]];
  assert.ok(groupTuple, `the failed body has children: ${JSON.stringify(doc)}`);
  const errbackId = groupTuple[1][0]![0][0];
  assert.equal(await app.AsyncResult(errbackId).get(T), res.id);
  // The body's stored error names the member that failed (Celery's "Dependency <id> raised ...").
  assert.match(err.message, /^Dependency [0-9a-f-]{36} raised TypeError\('boom'\)$/);
});
