/**
 * Tasks sent ahead to busy pool members (`--pool threads` / `processes`): at its
 * full size the pool takes two runs per member, and a member holding the next task
 * starts it as soon as the running one ends. In-process workers on memory://,
 * members loading test/apps/pool-app.ts; one member (concurrency 1) so "held
 * ahead" is the second task sent. Each test counts what ran where and checks the
 * semantics that must not change: at most one task at a time per member, time
 * limits from the real start, reserved (not active) until started, revoked before
 * it starts → dropped (REVOKED), its member lost → run by another member (not
 * failed), maxTasksPerChild / maxMemoryPerChild, early vs late acks.
 */
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { after, describe, test } from 'node:test';
import { pino } from 'pino';
import { States, Worker, type WorkerOptions } from '../packages/core/src/index.ts';
import { app } from './apps/pool-app.ts';
import { waitFor } from './helpers/worker-process.ts';

const APP_MODULE = 'test/apps/pool-app.ts';
const T = { timeout: 90_000 };
after(() => app.close());

type Where = { pid: number; threadId: number };
type Window = Where & { start: number; end: number };
const member = (w: Where) => `${w.pid}/${w.threadId}`;

/** A worker on its own queue with one member; `lines` collects its log messages. */
async function withWorker(node: string, options: WorkerOptions, body: (worker: Worker, lines: string[]) => Promise<void>): Promise<void> {
  const lines: string[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, done) {
      lines.push((JSON.parse(chunk.toString()) as { msg: string }).msg);
      done();
    },
  });
  const worker = new Worker(app, { appModule: APP_MODULE, logger: pino({ level: 'info' }, sink), hostname: node, queues: [node], concurrency: 1, ...options });
  await worker.start();
  try {
    await body(worker, lines);
  } finally {
    await worker.stop({ cold: true });
  }
}

async function activeAndReserved(node: string): Promise<{ active: string[]; reserved: string[] }> {
  const inspect = app.control.inspect({ destination: [node], timeout: 1_000 });
  const active = ((await inspect.active()) as Record<string, { id: string }[]> | null)?.[node] ?? [];
  const reserved = ((await inspect.reserved()) as Record<string, { id: string }[]> | null)?.[node] ?? [];
  return { active: active.map((t) => t.id), reserved: reserved.map((t) => t.id) };
}

/** Wait until `id` is active on `node` (inspect active, as an operator sees it). */
const whenActive = (node: string, id: string) => waitFor(async () => (await activeAndReserved(node)).active.includes(id), 60_000, `${id} active on ${node}`);

for (const kind of ['threads', 'processes'] as const) {
  describe(`--pool ${kind}: the next task sent ahead`, () => {
    test('held by the busy member: reserved, not active, until it starts; starts after the running one ends, in the same member; its hard limit runs from its start', async () => {
      const node = `ahead-${kind}@send-ahead`;
      await withWorker(node, { pool: kind }, async () => {
        const q = { queue: node };
        const first = await app.sendTask<Window>('pool.window', [3000], {}, q);
        // Limit 1 s for a 300 ms task: counted from when it was sent ahead, it would end the first task's member.
        const second = await app.sendTask<Window>('pool.window', [300], {}, { ...q, timeLimit: 1 });
        await whenActive(node, first.id);
        const seen = await activeAndReserved(node);
        assert.deepEqual(seen.active, [first.id], 'only the running task is active');
        assert.deepEqual(seen.reserved, [second.id], 'the held task is reserved');
        const [a, b] = [await first.get(T), await second.get(T)];
        assert.equal(member(a), member(b), 'the same member ran both');
        assert.ok(b.start >= a.end, `one at a time: the second started (${b.start}) after the first ended (${a.end})`);
        assert.equal(await second.state, States.SUCCESS);
      });
    });

    test('its member dies while running the task before it: that task fails (WorkerLostError), the held one runs in another member', async () => {
      const node = `lost-${kind}@send-ahead`;
      await withWorker(node, { pool: kind }, async (_worker, lines) => {
        const q = { queue: node };
        const before = await (await app.sendTask<Where>('pool.where', [], {}, q)).get(T);
        const crash = await app.sendTask('pool.crashAfter', [800], {}, q);
        const held = await app.sendTask<Where>('pool.where', [], {}, q);
        await assert.rejects(crash.get(T), (err: Error) => err.name === 'WorkerLostError');
        const ranOn = await held.get(T);
        assert.equal(await held.state, States.SUCCESS);
        assert.notEqual(member(ranOn), member(before), 'run by the member that replaced the dead one');
        assert.ok(
          lines.some((l) => l.includes(`pool.where[${held.id}] was held by`) && l.includes('exited before starting it: given to another member')),
          'it was held ahead by the dead member',
        );
      });
    });
  });
}

describe('--pool processes: shared pool logic', () => {
  test('revoked while held ahead: dropped without running (REVOKED, revoked not terminated); the member goes on', async () => {
    const node = 'revoke@send-ahead';
    await withWorker(node, { pool: 'processes' }, async (_worker, lines) => {
      const q = { queue: node };
      const first = await app.sendTask<Window>('pool.window', [3000], {}, q);
      const held = await app.sendTask<Where>('pool.where', [], {}, q);
      await whenActive(node, first.id);
      assert.deepEqual((await activeAndReserved(node)).reserved, [held.id]);
      await app.control.revoke(held.id, { reply: true, destination: [node], timeout: 2_000 });
      await assert.rejects(held.get(T), (err: Error) => err.name === 'TaskRevokedError' && /revoked/.test(err.message));
      assert.equal(await held.state, States.REVOKED);
      const doc = await (await app.getBackend()).getResult(held.id);
      assert.deepEqual(doc?.result, { exc_type: 'TaskRevokedError', exc_message: ['revoked'], exc_module: 'celery.exceptions' });
      assert.ok(lines.some((l) => l.includes(`pool.where[${held.id}] (held by a pool member, not started)`)), 'dropped by the pool, not before it');
      const a = await first.get(T);
      const next = await (await app.sendTask<Where>('pool.where', [], {}, q)).get(T);
      assert.equal(member(next), member(a), 'the member was not stopped');
    });
  });

  test('hard time limit of the running task: its member is replaced, the held task runs in the new one under its own limit', async () => {
    const node = 'limit@send-ahead';
    await withWorker(node, { pool: 'processes' }, async (_worker, lines) => {
      const q = { queue: node };
      const before = await (await app.sendTask<Where>('pool.where', [], {}, q)).get(T);
      const forever = await app.sendTask('pool.forever', [], {}, { ...q, timeLimit: 1 });
      const held = await app.sendTask<Window>('pool.window', [300], {}, { ...q, timeLimit: 1 });
      await assert.rejects(forever.get(T), (err: Error) => err.name === 'TimeLimitExceeded');
      const b = await held.get(T);
      assert.notEqual(member(b), member(before));
      assert.ok(lines.some((l) => l.includes(`pool.window[${held.id}] was held by`)));
    });
  });

  test('maxTasksPerChild 2: no member runs more than 2 tasks, none is lost', async () => {
    const node = 'recycle@send-ahead';
    await withWorker(node, { pool: 'processes', maxTasksPerChild: 2 }, async () => {
      const sent = await Promise.all(Array.from({ length: 7 }, () => app.sendTask<Window>('pool.window', [150], {}, { queue: node })));
      const ran = await Promise.all(sent.map((r) => r.get(T)));
      const perMember = new Map<string, number>();
      for (const w of ran) perMember.set(member(w), (perMember.get(member(w)) ?? 0) + 1);
      assert.ok([...perMember.values()].every((n) => n <= 2), JSON.stringify([...perMember]));
      assert.ok(perMember.size >= 4, `7 tasks need at least 4 members: ${perMember.size}`);
    });
  });

  test('maxMemoryPerChild: the member past the limit starts nothing more; its held task runs in the next member', async () => {
    const baselineWorker = 'mem-baseline@send-ahead';
    let baseline = 0;
    await withWorker(baselineWorker, { pool: 'processes' }, async () => {
      baseline = await (await app.sendTask<number>('pool.memory', ['processes'], {}, { queue: baselineWorker })).get(T);
    });
    const node = 'memory@send-ahead';
    await withWorker(node, { pool: 'processes', maxMemoryPerChild: baseline + 40 * 1024 }, async (_worker, lines) => {
      const q = { queue: node };
      const grows = await app.sendTask<Where>('pool.keepAfter', [80, 800], {}, q);
      const held = await app.sendTask<Where>('pool.where', [], {}, q);
      const [g, h] = [await grows.get(T), await held.get(T)];
      assert.notEqual(member(h), member(g), 'not run by the member past the limit');
      assert.ok(lines.some((l) => l.includes(`pool.where[${held.id}] was held by`)), 'it had been held ahead there');
    });
  });

  test('acks: an early-ack task is acked when handed to the member; an acks-late one only once it ran', async () => {
    for (const acksLate of [false, true]) {
      const node = `acks-${acksLate}@send-ahead`;
      await withWorker(node, { pool: 'processes' }, async (worker) => {
        const q = { queue: node };
        const first = await app.sendTask<Window>('pool.window', [3000], {}, q);
        await whenActive(node, first.id);
        // Sent once the first runs (an acks-late message skips the early-ack step and could reach the pool first).
        const held = await app.sendTask(acksLate ? 'pool.lateAck' : 'pool.add', acksLate ? [] : [1, 2], {}, q);
        await waitFor(async () => (await activeAndReserved(node)).reserved.includes(held.id), 10_000, 'held reserved');
        let seen = await activeAndReserved(node);
        assert.deepEqual(seen, { active: [first.id], reserved: [held.id] }, `acksLate=${acksLate}`);
        // Unsettled deliveries: the running early-ack task was acked; the held one only when acks late.
        assert.equal(worker.stats.reserved, acksLate ? 1 : 0, `acksLate=${acksLate}: ${JSON.stringify(worker.stats)}`);
        seen = await activeAndReserved(node);
        assert.deepEqual(seen.reserved, [held.id], 'still held');
        await held.get(T);
        await waitFor(() => worker.stats.reserved === 0, 10_000, 'acked once it ran');
      });
    }
  });

  test('trackStarted: not sent ahead: STARTED is stored before the function runs (then active), still one at a time', async () => {
    const node = 'started@send-ahead';
    app.configure({ taskTrackStarted: true });
    try {
      await withWorker(node, { pool: 'processes' }, async () => {
        const q = { queue: node };
        const first = await app.sendTask<Window>('pool.window', [800], {}, q);
        const second = await app.sendTask<Window>('pool.window', [800], {}, q);
        await whenActive(node, first.id);
        assert.equal(await second.state, States.PENDING, 'not started while the first runs');
        await whenActive(node, second.id);
        assert.equal(await second.state, States.STARTED, 'STARTED stored by the time it is active');
        const [a, b] = [await first.get(T), await second.get(T)];
        assert.ok(b.start >= a.end);
      });
    } finally {
      app.configure({ taskTrackStarted: false });
    }
  });
});

test('worker-heartbeat counts started tasks only: a task held ahead by the busy member is not "active"', T, async () => {
  const node = 'heartbeat-ahead@send-ahead';
  const receiver = app.events.receiver();
  const beats: Array<{ hostname?: unknown; active?: unknown }> = [];
  receiver.on('worker-heartbeat', (e) => void beats.push(e));
  await receiver.start();
  try {
    await withWorker(node, { pool: 'threads' }, async () => {
      const running = await app.sendTask('pool.spin', [6_000], {}, { queue: node });
      const held = await app.sendTask('pool.add', [1, 2], {}, { queue: node });
      await whenActive(node, running.id);
      await waitFor(async () => (await activeAndReserved(node)).reserved.includes(held.id), 30_000, 'the add held ahead (reserved)');
      const from = beats.length;
      await waitFor(() => beats.slice(from).some((b) => b.hostname === node), 20_000, 'a heartbeat while one task runs and one is held');
      const beat = beats.slice(from).find((b) => b.hostname === node)!;
      assert.equal(beat.active, 1, JSON.stringify(beat));
      assert.equal(await held.get({ timeout: 60_000 }), 3);
    });
  } finally {
    await receiver.stop();
  }
});
