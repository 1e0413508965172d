/**
 * Task semantics through a real worker on the embedded memory:// transport:
 * states, results, retries, links, expiry, hooks, kwargs. The same behaviours
 * over Redis and against Python Celery are in redis-*.test.ts and interop-*.test.ts.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { createApp, currentTask, RemoteTaskError, States, Task, TimeoutError, Worker, type TaskContext } from '../packages/core/src/index.ts';

const app = createApp('memtest', { brokerUrl: 'memory://worker-memory', taskDefaultRetryDelay: 0 });
const calls: string[] = [];
const hookLog: string[] = [];

const add = app.task('m.add', (x: number, y: number) => x + y);
const boom = app.task('m.boom', () => {
  throw new TypeError('bad input: 42');
});
let flakyRuns = 0;
/** Per run of m.flaky: the task id and the state stored for it when the run began. */
const flakySeen: { id: string; state: string }[] = [];
const flaky = app.task(
  'm.flaky',
  async function (this: TaskContext, x: number) {
    flakyRuns++;
    flakySeen.push({ id: this.id, state: await app.AsyncResult(this.id).state });
    if (this.retries < 2) await this.retry({ countdown: 0.05, exc: new Error(`attempt ${this.retries}`) });
    return { x, retries: this.retries };
  },
  { maxRetries: 5 },
);
const alwaysRetry = app.task(
  'm.alwaysRetry',
  async function (this: TaskContext) {
    await this.retry({ countdown: 0.01, exc: new RangeError('still broken') });
  },
  { maxRetries: 2 },
);
class TransientError extends Error {
  override name = 'TransientError';
}
let autoRuns = 0;
const auto = app.task(
  'm.auto',
  () => {
    autoRuns++;
    if (autoRuns < 3) throw new TransientError('try again');
    return autoRuns;
  },
  { autoretryFor: [TransientError], defaultRetryDelay: 0.01, maxRetries: 5 },
);
const backoffRuns: number[] = [];
const backoff = app.task(
  'm.backoff',
  () => {
    backoffRuns.push(Date.now());
    if (backoffRuns.length < 3) throw new TransientError('again');
    return backoffRuns.length;
  },
  { autoretryFor: [TransientError], retryBackoff: 0.2, retryJitter: false, maxRetries: 5 },
);
const collect = app.task('m.collect', (...values: unknown[]) => {
  calls.push(JSON.stringify(values));
  return values;
});
const ctx = app.task('m.ctx', function (this: TaskContext) {
  const c = currentTask()!;
  assert.equal(c, this);
  return { id: this.id, rootId: this.rootId, parentId: this.parentId, headers: { tenant: this.headers.tenant }, kwargs: this.kwargs, hostname: this.hostname, queue: this.deliveryInfo.routingKey };
}, { acceptKwargs: true });
const spawnChild = app.task('m.spawnChild', async function (this: TaskContext) {
  const child = await ctx.delay();
  return { self: this.id, root: this.rootId, child: child.id };
});
const trailing = app.task('m.trailing', (x: number, opts: { scale?: number }) => x * (opts.scale ?? 1), { trailingKwargs: true });
const named = app.task('m.named', (x: number, y: number) => x - y, { argNames: ['x', 'y'] });
const progress = app.task('m.progress', async function (this: TaskContext) {
  await this.updateState('PROGRESS', { done: 1, total: 2 });
  await new Promise((r) => setTimeout(r, 150));
  return 'finished';
});
const hooked = app.task('m.hooked', async function (this: TaskContext, mode: 'ok' | 'fail' | 'retry') {
  if (mode === 'fail') throw new Error('hooked failure');
  if (mode === 'retry' && this.retries === 0) await this.retry({ countdown: 0.01, exc: new Error('once more') });
  return 'ok';
}, {
  onRetry: (err) => void hookLog.push(`retry:${(err as Error).message}`),
  onSuccess: (retval, id) => void hookLog.push(`success:${String(retval)}:${id.length}`),
  onFailure: (err) => void hookLog.push(`failure:${(err as Error).message}`),
  afterReturn: (state) => void hookLog.push(`after:${state}`),
});
const slowStarted = app.task('m.tracked', async () => {
  await new Promise((r) => setTimeout(r, 200));
  return 1;
}, { trackStarted: true });
const quiet = app.task('m.quiet', () => 'nobody reads this', { ignoreResult: true });

class Reports {
  prefix = 'report:';
  @Task('m.report')
  render(title: string): string {
    return this.prefix + title;
  }
}
const reports = app.registerTasks(new Reports());

let worker: Worker;
before(async () => {
  worker = new Worker(app, { concurrency: 4, logLevel: 'silent' });
  await worker.start();
});
after(async () => {
  await worker.stop();
  await app.close();
});

test('delay → get returns the value and the state is SUCCESS', async () => {
  const r = await add.delay(2, 2);
  assert.equal(await r.get({ timeout: 2000 }), 4);
  assert.equal(await r.state, States.SUCCESS);
  assert.equal(await r.successful(), true);
  const done = await r.dateDone;
  assert.ok(done instanceof Date && Math.abs(done.getTime() - Date.now()) < 5000, `date_done read as UTC: ${done?.toISOString()}`);
});

test('a failing task rejects get() with the remote type name, message and traceback', async () => {
  const r = await boom.delay();
  await assert.rejects(r.get({ timeout: 2000 }), (err: unknown) => {
    assert.ok(err instanceof RemoteTaskError);
    assert.equal(err.name, 'TypeError');
    assert.equal(err.message, 'bad input: 42');
    assert.equal(err.excModule, 'builtins');
    assert.match(err.remoteTraceback ?? '', /TypeError: bad input: 42/);
    return true;
  });
  assert.equal(await r.state, States.FAILURE);
  const asValue = await r.get({ propagate: false });
  assert.ok(asValue instanceof RemoteTaskError, 'propagate: false returns the remote error');
  assert.equal(asValue.name, 'TypeError');
  assert.equal(asValue.message, 'bad input: 42');
  assert.equal(asValue.excModule, 'builtins');
  assert.match(asValue.remoteTraceback ?? '', /TypeError: bad input: 42\n\s+at .*worker-memory\.test\.ts/, 'the traceback is the task function\'s stack');
});

test('unknown ids are PENDING and get() times out with TimeoutError', async () => {
  const r = app.AsyncResult('00000000-0000-0000-0000-000000000000');
  assert.equal(await r.state, States.PENDING);
  await assert.rejects(r.get({ timeout: 50 }), TimeoutError);
});

test('retry() re-sends with the same id until it succeeds; RETRY state in between', async () => {
  flakyRuns = 0;
  flakySeen.length = 0;
  const r = await flaky.delay(7);
  assert.deepEqual(await r.get({ timeout: 3000 }), { x: 7, retries: 2 });
  assert.equal(flakyRuns, 3);
  assert.deepEqual(flakySeen.map((s) => s.id), [r.id, r.id, r.id], 'every retry re-sends the same id');
  assert.deepEqual(flakySeen.map((s) => s.state), [States.PENDING, States.RETRY, States.RETRY], 'RETRY is stored before each retry runs');
  const doc = await (await app.getBackend()).getResult(r.id);
  assert.equal(doc?.status, States.SUCCESS);
});

test('retry past maxRetries fails with the given exc', async () => {
  const r = await alwaysRetry.delay();
  await assert.rejects(r.get({ timeout: 3000 }), (err: Error) => err.name === 'RangeError' && err.message === 'still broken');
});

test('autoretryFor retries matching errors', async () => {
  autoRuns = 0;
  const r = await auto.delay();
  assert.equal(await r.get({ timeout: 3000 }), 3);
});

test('retryBackoff doubles the delay between autoretries (factor × 2^retries)', async () => {
  backoffRuns.length = 0;
  assert.equal(await (await backoff.delay()).get({ timeout: 5000 }), 3);
  const [first, second, third] = backoffRuns as [number, number, number];
  assert.ok(second - first >= 190, `first retry after ${second - first} ms, expected ≥ 200`);
  assert.ok(third - second >= 390, `second retry after ${third - second} ms, expected ≥ 400`);
});

test('link sends the callback with the result prepended; linkError receives the failed id', async () => {
  calls.length = 0;
  const ok = await add.applyAsync([1, 2], {}, { link: collect.s('extra') });
  assert.equal(await ok.get({ timeout: 2000 }), 3);
  const children = await ok.children;
  assert.equal(children.length, 1);
  assert.deepEqual(await children[0]!.get({ timeout: 2000 }), [3, 'extra']);

  const failed = await boom.applyAsync([], {}, { linkError: collect.s() });
  await assert.rejects(failed.get({ timeout: 2000 }));
  await waitFor(() => calls.includes(JSON.stringify([failed.id])));
});

test('countdown delays execution; expires in the past gives REVOKED', async () => {
  const t0 = Date.now();
  const later = await add.applyAsync([5, 5], {}, { countdown: 0.3 });
  assert.equal(await later.state, States.PENDING);
  assert.equal(await later.get({ timeout: 3000 }), 10);
  assert.ok(Date.now() - t0 >= 280, `ran after ${Date.now() - t0} ms`);

  const expired = await add.applyAsync([1, 1], {}, { expires: new Date(Date.now() - 1000) });
  await assert.rejects(expired.get({ timeout: 2000 }), (err: Error) => err.name === 'TaskRevokedError' && err.message === 'expired');
  assert.equal(await expired.state, States.REVOKED);
});

test('the context carries ids, headers, kwargs and delivery info; sub-tasks get parent/root ids', async () => {
  const r = await ctx.applyAsync([], { a: 1 }, { headers: { tenant: 'acme' }, queue: 'celery' });
  const seen = (await r.get({ timeout: 2000 })) as Record<string, unknown>;
  assert.equal(seen.id, r.id);
  assert.equal(seen.rootId, r.id);
  assert.equal(seen.parentId, null);
  assert.deepEqual(seen.headers, { tenant: 'acme' });
  assert.deepEqual(seen.kwargs, { a: 1 });
  assert.equal(seen.hostname, worker.hostname);
  assert.equal(seen.queue, 'celery');

  const parent = await spawnChild.delay();
  const ids = (await parent.get({ timeout: 2000 })) as { self: string; root: string; child: string };
  assert.equal(ids.self, parent.id);
  const child = (await app.AsyncResult(ids.child).get({ timeout: 2000 })) as Record<string, unknown>;
  assert.equal(child.id, ids.child);
  assert.equal(child.parentId, parent.id, 'a sub-task sent from a task has it as parent');
  assert.equal(child.rootId, parent.id, 'and keeps the root of the tree');
  assert.notEqual(child.rootId, child.id);
});

test('kwargs: trailingKwargs passes them as the last parameter, argNames maps them to positions', async () => {
  assert.equal(await (await trailing.delay(3, { scale: 4 })).get({ timeout: 2000 }), 12);
  assert.equal(await (await trailing.applyAsync([3, {}], { scale: 5 })).get({ timeout: 2000 }), 15);
  assert.equal(await (await app.sendTask('m.named', [], { x: 10, y: 3 })).get({ timeout: 2000 }), 7);
  assert.equal(await (await app.sendTask('m.named', [10], { y: 4 })).get({ timeout: 2000 }), 6);
  assert.equal(named(1, 1), 0);
});

test('updateState stores custom states; trackStarted stores STARTED', async () => {
  const r = await progress.delay();
  await waitFor(async () => (await r.state) === 'PROGRESS');
  assert.deepEqual(await r.result, { done: 1, total: 2 });
  assert.equal(await r.ready(), false);
  assert.equal(await r.get({ timeout: 2000 }), 'finished');

  const t = await slowStarted.delay();
  await waitFor(async () => (await t.state) === States.STARTED);
  assert.deepEqual(await t.result, { pid: process.pid, hostname: worker.hostname }, 'STARTED carries the worker\'s pid and hostname');
  assert.equal(await t.get({ timeout: 2000 }), 1);
});

test('ignoreResult stores nothing', async () => {
  const before = worker.stats.succeeded;
  const r = await quiet.delay();
  await waitFor(() => worker.stats.succeeded > before);
  assert.equal(await r.state, States.PENDING);
});

test('hooks run after success and failure', async () => {
  hookLog.length = 0;
  await (await hooked.delay('ok')).get({ timeout: 2000 });
  await assert.rejects((await hooked.delay('fail')).get({ timeout: 2000 }));
  await waitFor(() => hookLog.length >= 4);
  assert.deepEqual(hookLog, ['success:ok:36', 'after:SUCCESS', 'failure:hooked failure', 'after:FAILURE']);
  hookLog.length = 0;
  await (await hooked.delay('retry')).get({ timeout: 2000 });
  await waitFor(() => hookLog.length >= 3);
  assert.deepEqual(hookLog, ['retry:once more', 'success:ok:36', 'after:SUCCESS']);
});

test('@Task() methods run in the worker with their instance', async () => {
  assert.equal(await (await reports.render.delay('q3')).get({ timeout: 2000 }), 'report:q3');
});

test('forget() deletes the result', async () => {
  const r = await add.delay(1, 1);
  await r.get({ timeout: 2000 });
  await r.forget();
  assert.equal(await r.state, States.PENDING);
});

async function waitFor(check: () => boolean | Promise<boolean>, timeoutMs = 3000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 10));
  }
}

test('routing: queue option and taskRoutes pick the queue; a worker consumes only its queues', async () => {
  const routed = createApp('routing', {
    brokerUrl: 'memory://routing',
    taskRoutes: { 'r.report.*': { queue: 'reports' }, 'r.urgent': { queue: 'urgent', priority: 0 } },
  });
  const report = routed.task('r.report.daily', () => 'report');
  const urgent = routed.task('r.urgent', () => 'urgent');
  const plain = routed.task('r.plain', () => 'plain');
  const w = new Worker(routed, { queues: ['urgent', 'reports'], concurrency: 2, logLevel: 'silent' });
  await w.start();
  try {
    assert.equal(await (await report.delay()).get({ timeout: 2000 }), 'report');
    assert.equal(await (await urgent.delay()).get({ timeout: 2000 }), 'urgent');
    assert.equal(await (await plain.applyAsync([], {}, { queue: 'reports' })).get({ timeout: 2000 }), 'plain');
    const unconsumed = await plain.delay(); // default queue "celery": nobody consumes it here
    await new Promise((r) => setTimeout(r, 100));
    assert.equal(await unconsumed.state, States.PENDING);
    assert.equal(await (await routed.getBroker()).queueLength('celery'), 1);
  } finally {
    await w.stop();
    await routed.close();
  }
});
