/**
 * The `threads` and `processes` pools through a real worker (memory:// broker and
 * backend in this process; every pool member loads test/apps/pool-app.ts): tasks
 * run in other threads / processes, in parallel, never more than `concurrency` at
 * once; a hard time limit terminates and replaces the member; a member that dies
 * fails only its task with WorkerLostError (acks late + rejectOnWorkerLost:
 * requeued and run again); soft limits, retry, updateState, Python error names,
 * unclonable results; maxTasksPerChild, maxMemoryPerChild and a heap limit
 * recycle members; an app module that cannot load stops the start.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { pino } from 'pino';
import { chord, ConfigurationError, group, createApp, States, Worker, type ResultDocument, type WorkerOptions } from '../packages/core/src/index.ts';
import { app, canvas } from './apps/pool-app.ts';
import { replaceExamples } from './helpers/canvas-examples.ts';

const APP_MODULE = 'test/apps/pool-app.ts';
const silent = pino({ level: 'silent' });
const scratch = mkdtempSync(join(tmpdir(), 'celeriac-pools-'));
after(async () => {
  rmSync(scratch, { recursive: true, force: true });
  await app.close();
});

const ON_RECYCLE = { queue: 'recycle' };
// Registered here only: the pool members, which import test/apps/pool-app.ts, do not have it.
app.task('pool.registeredInTheTestOnly', () => 'ran in the worker');
type Where = { pid: number; threadId: number };
const member = (w: Where) => `${w.pid}/${w.threadId}`;

async function outcome(id: string): Promise<ResultDocument> {
  const backend = await app.getBackend();
  const deadline = Date.now() + 90_000;
  for (;;) {
    const doc = await backend.getResult(id);
    if (doc && [States.SUCCESS, States.FAILURE].includes(doc.status as never)) return doc;
    if (Date.now() > deadline) throw new Error(`no outcome for ${id} (last: ${JSON.stringify(doc)})`);
    await sleep(10);
  }
}

async function run<T>(name: string, args: unknown[] = [], options: Parameters<typeof app.sendTask>[3] = {}): Promise<T> {
  const r = await app.sendTask<T>(name, args, {}, options);
  return r.get({ timeout: 90_000 });
}

/** A second worker on its own queue (the describe's worker keeps running meanwhile). */
async function withWorker(options: WorkerOptions, body: (worker: Worker) => Promise<void>): Promise<void> {
  const worker = new Worker(app, { appModule: APP_MODULE, logger: silent, queues: ['recycle'], ...options });
  await worker.start();
  try {
    await body(worker);
  } finally {
    await worker.stop();
  }
}

for (const kind of ['threads', 'processes'] as const) {
  describe(`--pool ${kind}`, () => {
    // The pool logic both kinds share (ChildPool) is tested once, on processes (Celery's prefork); what differs
    // per kind (starting, terminating, crashing, cloning, measuring memory) is tested on both.
    const shared = (name: string, fn: () => Promise<void>) => (kind === 'processes' ? test(name, fn) : undefined);
    let worker: Worker;
    before(async () => {
      worker = new Worker(app, { pool: kind, appModule: APP_MODULE, concurrency: 2, logger: silent });
      await worker.start();
    });
    after(() => worker.stop());

    test('tasks run in another thread / process, with their values', async () => {
      assert.equal(await run('pool.add', [2, 3]), 5);
      const where = await run<Where>('pool.where');
      if (kind === 'threads') {
        assert.equal(where.pid, process.pid);
        assert.notEqual(where.threadId, 0, 'not the main thread');
      } else assert.notEqual(where.pid, process.pid, 'not this process');
      const init = await run<{ kind: string; pid: number }>('pool.processInit');
      assert.deepEqual(init, { kind, pid: kind === 'threads' ? process.pid : init.pid }, 'workerProcessInit ran in the member');
      if (kind === 'processes') assert.notEqual(init.pid, process.pid);
    });

    test("the task sees its message's properties, delivery_info and headers in the member", async () => {
      const r = await app.sendTask('pool.request', [], {}, { priority: 3 });
      const seen = (await r.get({ timeout: 90_000 })) as { properties: Record<string, unknown>; deliveryInfo: Record<string, unknown>; headers: Record<string, unknown>; hostname: string };
      assert.equal(seen.properties.correlation_id, r.id);
      assert.equal(seen.properties.reply_to, app.oid);
      assert.deepEqual(seen.properties.delivery_info, { exchange: '', routing_key: 'celery', priority: 3, redelivered: false });
      assert.equal(seen.deliveryInfo.routingKey, 'celery');
      assert.equal(seen.deliveryInfo.priority, 3);
      assert.deepEqual(seen.headers, { id: r.id, task: 'pool.request' });
      assert.equal(seen.hostname, worker.hostname);
    });

    test('CPU-bound bodies run in parallel, never more than concurrency at once', async () => {
      const windows = await Promise.all(Array.from({ length: 6 }, () => run<{ start: number; end: number }>('pool.window', [150])));
      const events = windows.flatMap((w) => [
        [w.start, 1],
        [w.end, -1],
      ]).sort((a, b) => a[0]! - b[0]! || a[1]! - b[1]!);
      let inFlight = 0;
      let most = 0;
      for (const [, delta] of events) most = Math.max(most, (inFlight += delta!));
      assert.equal(most, 2, `two bodies overlap (parallel) and never three, saw ${most}`);
    });

    test('hard time limit: the member is terminated (FAILURE TimeLimitExceeded) and replaced', async () => {
      const r = await app.sendTask('pool.forever', [], {}, { timeLimit: 0.3 });
      const doc = await outcome(r.id);
      assert.equal(doc.status, States.FAILURE);
      assert.deepEqual(doc.result, { exc_type: 'TimeLimitExceeded', exc_message: [0.3], exc_module: 'billiard.exceptions' });
      assert.equal(await run('pool.add', [1, 1]), 2, 'the pool goes on');
      assert.equal(await run('pool.add', [2, 2]), 4);
    });

    test('a member that dies fails only its task with WorkerLostError, and is replaced', async () => {
      const [crash, ok] = await Promise.all([app.sendTask('pool.crash'), app.sendTask('pool.add', [20, 22])]);
      const doc = await outcome(crash.id);
      assert.equal(doc.status, States.FAILURE);
      const exc = doc.result as { exc_type: string; exc_module: string; exc_message: string[] };
      assert.equal(exc.exc_type, 'WorkerLostError');
      assert.equal(exc.exc_module, 'billiard.exceptions');
      assert.match(exc.exc_message[0]!, /^Worker exited prematurely: exitcode 3 Job: \d+\.$/);
      assert.equal(await ok.get({ timeout: 90_000 }), 42);
      assert.equal(await run('pool.add', [1, 2]), 3, 'the pool goes on');
    });

    shared('acks late + rejectOnWorkerLost: the message of a lost member is requeued and runs again', async () => {
      const marker = join(scratch, `crash-once-${kind}`);
      assert.equal(await run('pool.crashOnce', [marker]), 'second run');
    });

    shared('acks late without rejectOnWorkerLost: FAILURE WorkerLostError, not run again', async () => {
      const r = await app.sendTask('pool.crashLate');
      const doc = await outcome(r.id);
      assert.equal((doc.result as { exc_type: string }).exc_type, 'WorkerLostError');
    });

    test('soft time limit: the signal aborts in the member; caught → cleaned up, uncaught → SoftTimeLimitExceeded', async () => {
      assert.equal(await run('pool.soft', [true], { softTimeLimit: 0.2 }), 'cleaned up');
      const r = await app.sendTask('pool.soft', [false], {}, { softTimeLimit: 0.2 });
      const doc = await outcome(r.id);
      assert.deepEqual(doc.result, { exc_type: 'SoftTimeLimitExceeded', exc_message: [], exc_module: 'billiard.exceptions' });
    });

    shared('retry() and updateState() go through the worker', async () => {
      assert.equal(await run('pool.retryOnce'), 'retried 1');
      const r = await app.sendTask('pool.progress', [400]);
      const backend = await app.getBackend();
      let seen: ResultDocument | null = null;
      const deadline = Date.now() + 90_000;
      while (Date.now() < deadline && seen?.status !== 'PROGRESS') {
        seen = await backend.getResult(r.id);
        await sleep(5);
      }
      assert.equal(seen?.status, 'PROGRESS');
      assert.deepEqual(seen?.result, { current: 1, total: 2 });
      assert.equal(await r.get({ timeout: 90_000 }), 'done');
    });

    // this.replace / this.addToChord in a member: the worker (parent) sends the replacement or the added task.
    // (The member's own app has a memory:// broker of its own: a message it sent itself would never arrive.)
    for (const example of replaceExamples(canvas)) {
      shared(`in a member: ${example.name}`, async () => {
        assert.deepEqual(await example.run(), example.expected);
      });
    }

    shared('in a member: this.addToChord(sig, true) returns the signature frozen into the chord; outside a chord it is refused', async () => {
      const id = `lazy-${kind}-${Date.now()}`;
      const member = app.signature('pool.addsToChordLazy').set({ task_id: id });
      await chord([member, canvas.add.s(1, 1)], canvas.xsum.s()).delay();
      const added = await app.AsyncResult<{ task: string; args: unknown[]; frozen: boolean; sameGroup: boolean }>(id).get({ timeout: 90_000 });
      assert.deepEqual(added, { task: 'tasks.add', args: [5, 5], frozen: true, sameGroup: true });
      const r = await app.sendTask('pool.addsToChordLazy');
      const doc = await outcome(r.id);
      assert.equal(doc.status, States.FAILURE);
      assert.deepEqual(doc.result, { exc_type: 'TypeError', exc_message: ['Current task is not member of any chord'], exc_module: 'builtins' });
    });

    shared('canvas built-ins: celery.map / starmap / chunks run in a member, celery.chord_unlock in the worker', async () => {
      const T = { timeout: 90_000 };
      assert.deepEqual(await (await canvas.xsum.map([[1, 2], [3, 4, 5]]).delay()).get(T), [3, 12]);
      assert.deepEqual(await (await canvas.add.starmap([[1, 1], [2, 2]]).delay()).get(T), [2, 4]);
      assert.deepEqual(await (await canvas.add.chunks([[1, 1], [2, 2], [3, 3]], 2).delay()).get(T), [[2, 4], [6]]);
      const g = await group(canvas.add.s(1, 2), canvas.add.s(3, 4)).delay();
      const bodyId = `unlock-body-${Date.now()}`;
      await app.sendTask('celery.chord_unlock', [g.id, canvas.xsum.s().set({ task_id: bodyId }).toJSON()], { interval: 0.05, result: g.results.map((r) => r.asTuple()) });
      assert.equal(await app.AsyncResult(bodyId).get(T), 10);
    });

    shared('a task registered in the worker but not by the app module: FAILURE NotRegistered saying so, the member goes on', async () => {
      const r = await app.sendTask('pool.registeredInTheTestOnly');
      const doc = await outcome(r.id);
      assert.equal(doc.status, States.FAILURE);
      const exc = doc.result as { exc_type: string; exc_message: string[] };
      assert.equal(exc.exc_type, 'NotRegistered');
      assert.match(exc.exc_message[0]!, /^pool\.registeredInTheTestOnly: registered in the worker, but not by the app module test\/apps\/pool-app\.ts/);
      const where = await run<Where>('pool.where');
      assert.equal(await run('pool.add', [2, 2]), 4);
      assert.equal(member(await run<Where>('pool.where')), member(where), 'no member was lost');
    });

    test('an error class with static excModule is stored under its Python name; an unclonable result is EncodeError', async () => {
      const r = await app.sendTask('pool.throwExpected');
      assert.deepEqual((await outcome(r.id)).result, { exc_type: 'ExpectedException', exc_message: ['as planned'], exc_module: 'proj.errors' });
      const u = await app.sendTask('pool.unclonable');
      const exc = (await outcome(u.id)).result as { exc_type: string; exc_module: string };
      assert.equal(exc.exc_type, 'EncodeError');
      assert.equal(exc.exc_module, 'kombu.exceptions');
    });

    test('maxTasksPerChild recycles a member; a task that allocates without bound kills only its member (heap limit)', async () => {
      await withWorker({ pool: kind, concurrency: 1, maxTasksPerChild: 2, childHeapLimitMb: 64 }, async () => {
        const first = await run<Where>('pool.where', [], ON_RECYCLE);
        const second = await run<Where>('pool.where', [], ON_RECYCLE);
        const third = await run<Where>('pool.where', [], ON_RECYCLE);
        assert.equal(member(first), member(second), 'two tasks on the same member');
        assert.notEqual(member(third), member(second), 'a new member after maxTasksPerChild');
        const hog = await app.sendTask('pool.hog', [], {}, ON_RECYCLE);
        const doc = await outcome(hog.id);
        assert.equal((doc.result as { exc_type: string }).exc_type, 'WorkerLostError');
        assert.equal(await run('pool.add', [5, 5], ON_RECYCLE), 10, 'the pool goes on');
      });
    });

    test('maxMemoryPerChild replaces a member whose memory passed the limit after its task', async () => {
      // Memory of a member as the pool measures it (the describe's worker answers), plus a margin the task below passes.
      const baseline = await run<number>('pool.memory', [kind]);
      await withWorker({ pool: kind, concurrency: 1, maxMemoryPerChild: baseline + 40 * 1024 }, async () => {
        const before = await run<Where>('pool.where', [], ON_RECYCLE);
        const again = await run<Where>('pool.where', [], ON_RECYCLE);
        assert.equal(member(before), member(again), 'below the limit: kept');
        const grown = await run<Where>('pool.keep', [80], ON_RECYCLE);
        assert.equal(member(grown), member(again));
        const after = await run<Where>('pool.where', [], ON_RECYCLE);
        assert.notEqual(member(after), member(grown), 'replaced after passing the limit');
      });
    });
  });
}

test('--autoscale 3,1: one member at start, three while work waits, back to one when idle (AUTOSCALE_KEEPALIVE)', async () => {
  process.env.AUTOSCALE_KEEPALIVE = '0.3';
  try {
    await withWorker({ pool: 'threads', autoscale: [3, 1] }, async (worker) => {
      assert.equal(worker.poolSize, 1, 'the minimum at start');
      const work = Promise.all(Array.from({ length: 6 }, () => run<{ start: number; end: number }>('pool.window', [300], ON_RECYCLE)));
      let most = worker.poolSize;
      const growDeadline = Date.now() + 90_000;
      while (most < 3 && Date.now() < growDeadline) {
        await sleep(10);
        most = Math.max(most, worker.poolSize);
      }
      assert.equal(most, 3, 'grew to the maximum while work waited');
      await work;
      const deadline = Date.now() + 90_000;
      while (worker.poolSize > 1 && Date.now() < deadline) await sleep(20);
      assert.equal(worker.poolSize, 1, 'idle members above the minimum stopped');
      assert.equal(await run('pool.add', [1, 1], ON_RECYCLE), 2);
    });
  } finally {
    delete process.env.AUTOSCALE_KEEPALIVE;
  }
});

test('threads/processes without appModule, or with a module that fails to load, fail at start with a clear error', async () => {
  const bare = createApp('pool-bare', { brokerUrl: 'memory://pool-bare' });
  await assert.rejects(new Worker(bare, { pool: 'threads', logger: silent }).start(), (err: Error) => err instanceof ConfigurationError && /needs appModule/.test(err.message));
  await assert.rejects(
    new Worker(bare, { pool: 'processes', appModule: 'test/apps/broken-app.ts', concurrency: 1, logger: silent }).start(),
    (err: Error) => err instanceof ConfigurationError && /could not load the app/.test(err.message) && /broken-app\.ts threw while loading/.test(err.message),
  );
  assert.throws(() => new Worker(bare, { pool: 'prefork' as never }), /Unknown pool "prefork"/);
  await bare.close();
});
