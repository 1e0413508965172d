/**
 * Remote control that acts on the pool (in-process workers on memory://, members
 * loading test/apps/pool-app.ts): revoke with terminate stops the member running
 * the task (a thread is terminated and replaced, a child process gets the signal)
 * and the task is stored REVOKED (TaskRevokedError 'terminated'); the async pool
 * answers that it cannot stop running JavaScript; pool_grow / pool_shrink /
 * autoscale change the running pool with Celery's replies; enable_events /
 * disable_events switch task events on a running worker.
 */
import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';
import { pino } from 'pino';
import { createApp, States, Worker, type CeleryEvent, type TaskContext, type WorkerOptions } from '../packages/core/src/index.ts';
import { app } from './apps/pool-app.ts';
import { waitFor } from './helpers/worker-process.ts';

const APP_MODULE = 'test/apps/pool-app.ts';
const silent = pino({ level: 'silent' });
after(() => app.close());

/** One reply of a command sent to `node` only. */
async function command(node: string, method: string, args: Record<string, unknown> = {}): Promise<unknown> {
  const replies = await app.control.broadcast(method, { arguments: args, reply: true, destination: [node], timeout: 2_000 });
  assert.equal(replies.length, 1, `one reply to ${method} from ${node}: ${JSON.stringify(replies)}`);
  return replies[0]![node];
}

async function withWorker(node: string, options: WorkerOptions, body: (worker: Worker) => Promise<void>): Promise<void> {
  const worker = new Worker(app, { appModule: APP_MODULE, logger: silent, hostname: node, queues: [node], ...options });
  await worker.start();
  try {
    await body(worker);
  } finally {
    await worker.stop({ cold: true });
  }
}

/** Wait until `id` runs on `worker` (inspect active, as an operator would see it). */
async function whenRunning(node: string, id: string): Promise<void> {
  await waitFor(async () => {
    const active = (await app.control.inspect({ destination: [node], timeout: 500 }).active()) as Record<string, { id: string }[]> | null;
    return !!active?.[node]?.some((t) => t.id === id);
  }, 60_000, `${id} running on ${node}`);
}

for (const kind of ['threads', 'processes'] as const) {
  describe(`revoke with terminate on the ${kind} pool`, () => {
    test('the member running the task is stopped and replaced; the task is stored REVOKED (terminated); the next task runs', async () => {
      const node = `term-${kind}@pools`;
      await withWorker(node, { pool: kind, concurrency: 1 }, async (worker) => {
        const before = await (await app.sendTask<{ pid: number; threadId: number }>('pool.where', [], {}, { queue: node })).get({ timeout: 60_000 });
        const forever = await app.sendTask('pool.forever', [], {}, { queue: node });
        await whenRunning(node, forever.id);
        const replies = await app.control.revoke(forever.id, { terminate: true, reply: true, destination: [node], timeout: 2_000 });
        assert.deepEqual(replies, [{ [node]: { ok: `terminate: ${forever.id}` } }]);
        await assert.rejects(forever.get({ timeout: 30_000 }), (err: Error) => err.name === 'TaskRevokedError' && /terminated/.test(err.message));
        assert.equal(await forever.state, States.REVOKED);
        const doc = await (await app.getBackend()).getResult(forever.id);
        assert.deepEqual(doc?.result, { exc_type: 'TaskRevokedError', exc_message: ['terminated'], exc_module: 'celery.exceptions' });
        // A new member took its place: the pool runs the next task.
        const afterwards = await (await app.sendTask<{ pid: number; threadId: number }>('pool.where', [], {}, { queue: node })).get({ timeout: 60_000 });
        if (kind === 'threads') assert.notEqual(afterwards.threadId, before.threadId);
        else assert.notEqual(afterwards.pid, before.pid);
        assert.equal(worker.poolSize, 1);
        // Terminating an id nobody runs: Celery's reply.
        assert.deepEqual(await command(node, 'revoke', { task_id: 'not-running', terminate: true }), { ok: 'terminate: tasks unknown' });
        assert.deepEqual(await command(node, 'revoke', { task_id: 'x', terminate: true, signal: 'SIGNOPE' }), {
          error: 'Unknown signal "SIGNOPE": use a name such as SIGTERM, TERM, SIGKILL or a number',
        });
      });
    });
  });
}

describe('revoke with terminate, signal by name or number (processes)', () => {
  test('`celery control terminate KILL <id>` form: the child gets SIGKILL; REVOKED', async () => {
    const node = 'kill@pools';
    await withWorker(node, { pool: 'processes', concurrency: 1 }, async () => {
      const forever = await app.sendTask('pool.forever', [], {}, { queue: node });
      await whenRunning(node, forever.id);
      assert.deepEqual(await command(node, 'terminate', { task_id: forever.id, signal: 'KILL' }), { ok: `terminate: ${forever.id}` });
      await assert.rejects(forever.get({ timeout: 30_000 }), (err: Error) => err.name === 'TaskRevokedError');
      assert.equal(await forever.state, States.REVOKED);
    });
  });
});

describe('pool_grow / pool_shrink / autoscale', () => {
  test('threads: pool_grow 2 starts two members, raises concurrency and prefetch; pool_shrink 2 takes them back (Celery\'s replies)', async () => {
    const node = 'grow@pools';
    await withWorker(node, { pool: 'threads', concurrency: 1, prefetchMultiplier: 4 }, async (worker) => {
      assert.equal(worker.poolSize, 1);
      assert.deepEqual(await command(node, 'pool_grow', { n: 2 }), { ok: 'pool will grow' });
      await waitFor(() => worker.poolSize === 3, 60_000, 'three members');
      assert.equal(worker.concurrency, 3);
      assert.equal(worker.prefetchLimit, 12);
      const stats = (await command(node, 'stats')) as { pool: Record<string, unknown>; prefetch_count: number };
      assert.equal(stats.pool['max-concurrency'], 3);
      assert.equal(stats.pool.implementation, 'celeriac:threads');
      assert.equal(stats.prefetch_count, 12);
      // Three tasks at once now run side by side, each in its own thread (once the new threads have loaded the app).
      await waitFor(async () => {
        const spins = await Promise.all([0, 1, 2].map(() => app.sendTask<{ threadId: number }>('pool.spin', [300], {}, { queue: node })));
        const where = await Promise.all(spins.map((r) => r.get({ timeout: 60_000 })));
        return new Set(where.map((w) => w.threadId)).size === 3;
      }, 60_000, 'three spins on three threads at once');
      assert.deepEqual(await command(node, 'pool_shrink', { n: 2 }), { ok: 'pool will shrink' });
      await waitFor(() => worker.poolSize === 1, 60_000, 'one member again');
      assert.equal(worker.concurrency, 1);
      assert.equal(worker.prefetchLimit, 4);
      // Never below one.
      assert.deepEqual(await command(node, 'pool_shrink', { n: 5 }), { ok: 'pool will shrink' });
      assert.equal(worker.concurrency, 1);
      assert.equal(await (await app.sendTask('pool.add', [2, 3], {}, { queue: node })).get({ timeout: 60_000 }), 5);
      assert.deepEqual(await command(node, 'autoscale', { max: 4, min: 2 }), { error: "ValueError('Autoscale not enabled')" });
    });
  });

  test('processes with --autoscale 3,1: pool_grow is refused; autoscale 4 2 sets the range and starts up to the new minimum', async () => {
    const node = 'scale@pools';
    await withWorker(node, { pool: 'processes', autoscale: [3, 1] }, async (worker) => {
      assert.equal(worker.poolSize, 1);
      // inspect stats lists the child processes, as Celery's prefork pool does.
      const processes = ((await command(node, 'stats')) as { pool: { processes: number[] } }).pool.processes;
      assert.equal(processes.length, 1);
      assert.notEqual(processes[0], process.pid);
      assert.deepEqual(await command(node, 'pool_grow', { n: 1 }), { error: 'pool_grow is not supported with autoscale. Adjust autoscale range instead.' });
      assert.deepEqual(await command(node, 'pool_shrink', {}), { error: 'pool_shrink is not supported with autoscale. Adjust autoscale range instead.' });
      assert.deepEqual(await command(node, 'autoscale', { max: 4, min: 2 }), { ok: 'autoscale now max=4 min=2' });
      await waitFor(() => worker.poolSize === 2, 60_000, 'two members (the new minimum)');
      assert.equal(worker.concurrency, 4);
      assert.deepEqual(await command(node, 'autoscale', { max: 1 }), { ok: 'autoscale now max=1 min=1' });
      await waitFor(() => worker.poolSize === 1, 60_000, 'one member (the new maximum)');
      assert.equal(await (await app.sendTask('pool.add', [1, 1], {}, { queue: node })).get({ timeout: 60_000 }), 2);
    });
  });
});

describe('the async pool', () => {
  test('terminate: the reply and the log say it cannot stop running JavaScript; the task runs to the end; pool_grow adds slots', async () => {
    const lines: string[] = [];
    const logger = pino({ level: 'warn' }, { write: (line: string) => void lines.push(line) });
    const asyncApp = createApp('control-async', { brokerUrl: 'memory://control-async', workerHeartbeatThread: false });
    asyncApp.task('async.sleep', async (ms: number) => {
      await new Promise((r) => setTimeout(r, ms));
      return ms;
    });
    const node = 'async@pools';
    const worker = new Worker(asyncApp, { hostname: node, concurrency: 2, logger });
    await worker.start();
    try {
      const r = await asyncApp.sendTask('async.sleep', [1_500]);
      await waitFor(async () => {
        const active = (await asyncApp.control.inspect({ timeout: 300 }).active()) as Record<string, { id: string }[]> | null;
        return !!active?.[node]?.some((t) => t.id === r.id);
      }, 10_000, 'the sleep running');
      const replies = (await asyncApp.control.revoke(r.id, { terminate: true, reply: true, timeout: 1_000 })) as Record<string, { error?: string }>[];
      assert.match(replies[0]![node]!.error ?? '', /^terminate: the async pool cannot stop running JavaScript: .* AbortSignal aborted; code that does not listen to it runs to the end\. Start the worker with --pool threads or --pool processes/);
      assert.ok(lines.some((l) => /Cannot terminate .*the async pool cannot stop running JavaScript/.test(l)), lines.join('\n'));
      assert.equal(await r.get({ timeout: 10_000 }), 1_500);
      const grow = await asyncApp.control.broadcast('pool_grow', { arguments: { n: 3 }, reply: true, timeout: 1_000 });
      assert.deepEqual(grow, [{ [node]: { ok: 'pool will grow' } }]);
      assert.equal(worker.concurrency, 5);
    } finally {
      await worker.stop();
      await asyncApp.close();
    }
  });
  test('terminate on the async pool aborts the task\'s signal: a task that listens stops and is stored REVOKED (terminated)', async () => {
    const listenApp = createApp('control-async-listen', { brokerUrl: 'memory://control-async-listen', workerHeartbeatThread: false });
    const finished: string[] = [];
    listenApp.task('async.listen', async function (this: TaskContext) {
      const signal = this.signal;
      await new Promise<void>((resolve, reject) => {
        const timer = setTimeout(resolve, 60_000);
        signal.addEventListener('abort', () => (clearTimeout(timer), reject(signal.reason as Error)), { once: true });
      });
      finished.push(this.id);
      return 'ran to the end';
    });
    const node = 'async-listen@pools';
    const worker = new Worker(listenApp, { hostname: node, concurrency: 1, logger: silent });
    await worker.start();
    try {
      const r = await listenApp.sendTask('async.listen', []);
      await waitFor(async () => {
        const active = (await listenApp.control.inspect({ timeout: 300 }).active()) as Record<string, { id: string }[]> | null;
        return !!active?.[node]?.some((t) => t.id === r.id);
      }, 10_000, 'the listening task running');
      await listenApp.control.revoke(r.id, { terminate: true, reply: true, timeout: 1_000 });
      await assert.rejects(r.get({ timeout: 10_000 }), (err: Error) => err.name === 'TaskRevokedError' && /terminated/.test(err.message));
      assert.equal(await r.state, States.REVOKED);
      assert.deepEqual(finished, []);
    } finally {
      await worker.stop();
      await listenApp.close();
    }
  });
});

describe('enable_events / disable_events', () => {
  test('switch task events on a running worker (Celery\'s replies); worker events go on either way', async () => {
    const evApp = createApp('control-events', { brokerUrl: 'memory://control-events', workerHeartbeatThread: false });
    evApp.task('ev.add', (x: number, y: number) => x + y);
    const seen: CeleryEvent[] = [];
    const receiver = evApp.events.receiver();
    receiver.on('*', (e) => seen.push(e));
    await receiver.start();
    const node = 'events@pools';
    const worker = new Worker(evApp, { hostname: node, concurrency: 1, logLevel: 'error' });
    await worker.start();
    const reply = async (method: string) => (await evApp.control.broadcast(method, { reply: true, timeout: 1_000 }))[0]![node];
    const run = async (x: number) => {
      const r = await evApp.sendTask('ev.add', [x, x]);
      await r.get({ timeout: 5_000 });
      return r.id;
    };
    try {
      await waitFor(() => seen.some((e) => e.type === 'worker-online' && e.hostname === node), 5_000, 'worker-online');
      const quiet = await run(1); // no -E: no task events
      assert.deepEqual(await reply('enable_events'), { ok: 'task events enabled' });
      assert.deepEqual(await reply('enable_events'), { ok: 'task events already enabled' });
      const loud = await run(2);
      await waitFor(() => seen.some((e) => e.type === 'task-succeeded' && e.uuid === loud), 5_000, 'task-succeeded after enable_events');
      assert.ok(seen.some((e) => e.type === 'task-received' && e.uuid === loud));
      assert.deepEqual(await reply('disable_events'), { ok: 'task events disabled' });
      assert.deepEqual(await reply('disable_events'), { ok: 'task events already disabled' });
      const quietAgain = await run(3);
      assert.deepEqual(await reply('enable_events'), { ok: 'task events enabled' });
      const last = await run(4);
      // Events of one worker arrive in order: once the last task's arrived, the quiet ones would have too.
      await waitFor(() => seen.some((e) => e.type === 'task-succeeded' && e.uuid === last), 5_000, 'task-succeeded of the last task');
      assert.deepEqual(seen.filter((e) => e.uuid === quiet || e.uuid === quietAgain), []);
    } finally {
      await receiver.stop();
      await worker.stop();
      await evApp.close();
    }
  });
});
