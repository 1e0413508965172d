/**
 * Canvas behaviours Celery 5.2.6's own integration tests (t/integration/test_canvas.py,
 * run by scripts/celery-suite.mjs) found missing or wrong in Celeriac, each checked
 * here on memory:// with a worker in this process, with exact values.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { chain, createApp, group, Worker, type AsyncResult } from '../packages/core/src/index.ts';

const app = createApp('canvas-suite', { brokerUrl: 'memory://canvas-celery-suite' });
const add = app.task('suite.add', (x: number, y: number) => x + y);
/** Sends a chain and returns its result handle, as t.integration.tasks.build_chain_inside_task does. */
const sendsChain = app.task('suite.sends_chain', async () => {
  const inner: AsyncResult = await chain(add.s(1, 1), add.s(2), group(add.s(3), add.s(4))).delay();
  return inner;
});
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
  const value = (await r.get(T)) as unknown[];
  // [[group id, [[add(2) id, [[add(1, 1) id, null], null]], null]], [[[member id, null], null], [[member id, null], null]]]
  assert.equal(value.length, 2);
  const [[groupId, parent], members] = value as [[string, unknown[]], unknown[][]];
  assert.equal(typeof groupId, 'string');
  assert.ok(Array.isArray(parent), 'the group\'s parent (the add(2) step) is a list, as Python sees it');
  assert.equal(members.length, 2);
  const memberIds = members.map((m) => (m as [[string, null], null])[0][0]);
  assert.deepEqual(await Promise.all(memberIds.map((id) => app.AsyncResult(id).get(T))), [7, 8]);
});
