/**
 * Liveness that follows progress: a worker whose event loop hangs gives its messages
 * back (its heartbeat thread watches the loop), and a loop blocked at start-up does
 * not cost the worker its heartbeat thread; a task settled by the hang watch gets
 * FAILURE (WorkerLostError) stored, as Celery stores for a lost worker. Real redis-server, `celeriac worker`
 * processes running test/apps/hang-app.ts; hung workers are killed by PID.
 */
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test, type TestContext } from 'node:test';
import { Redis } from 'ioredis';
import { States, type AsyncResult } from '../packages/core/src/index.ts';
import { missing, REDIS_SERVER } from './helpers/services.ts';
import { killChild as kill, useRedisWorkers } from './helpers/redis-workers.ts';
import { waitFor } from './helpers/worker-process.ts';

const skip = missing(REDIS_SERVER, 'apt-get install redis-server');
const tmp = mkdtempSync(join(tmpdir(), 'celeriac-hang-'));
const workers = useRedisWorkers(skip, { stop: 'kill' }); // SIGKILL: a hung loop cannot run a SIGTERM handler
const { producer } = workers;

/** Start a hang-app worker; resolves once it printed `ready.` (or at once with `waitReady: false`). */
const startWorker = (env: Record<string, string>, args: string[], waitReady = true) => workers.startWorker({ env, args, app: 'test/apps/hang-app.ts', waitReady });

/** Keys and sizes in the broker db, for failure messages. */
async function redisState(): Promise<Record<string, number | string>> {
  const out: Record<string, number | string> = {};
  for (const key of await workers.client.keys('*')) {
    const type = await workers.client.type(key);
    out[key] = type === 'list' ? await workers.client.llen(key) : type === 'hash' ? await workers.client.hlen(key) : type === 'set' ? await workers.client.scard(key) : type === 'zset' ? await workers.client.zcard(key) : type;
  }
  return out;
}

/** Lines `<event> <tag> <pid>` of a run log. */
function runs(runlog: string): { event: string; tag: string; pid: number }[] {
  if (!existsSync(runlog)) return [];
  return readFileSync(runlog, 'utf8')
    .trim()
    .split('\n')
    .filter(Boolean)
    .map((line) => {
      const [event, tag, pid] = line.split(' ');
      return { event: event!, tag: tag!, pid: Number(pid) };
    });
}

/**
 * Worker A (-c 1, prefetch 4) takes a task that never returns plus 3 more; worker B
 * must still drain everything else. Returns what happened for the per-mode asserts.
 */
async function hangScenario(t: TestContext, name: string, stuckTask: string, notes: number, unackedWhileStuck: readonly number[], bArgs = ['-c', '2']) {
  const runlog = join(tmp, `${name}.log`);
  // TTL 10 s: A's messages must come back through its hang watch, not because a peer
  // took A for dead while its heartbeat thread was still starting (slow under load).
  const env = { CELERIAC_TEST_RUNLOG: runlog, CELERIAC_TEST_HEARTBEAT: '2', CELERIAC_TEST_HANG_TIMEOUT: '3' };
  await workers.client.flushall();
  const stuck = await producer.sendTask(stuckTask, [`${name}-stuck`]);
  const tags = Array.from({ length: notes }, (_, i) => `${name}-${i}`);
  for (const tag of tags) await producer.sendTask('hang.note', [tag]);
  const a = await startWorker(env, ['-c', '1', '-n', `a-${name}@test`], false);
  t.after(() => kill(a.child));
  await waitFor(() => runs(runlog).some((r) => r.tag === `${name}-stuck`), 20_000, 'A started the stuck task');
  // A holds 3 prefetched messages (and the stuck one, unless acked early before it ran), and keeps them alive from its thread.
  const held = await workers.client.hlen('unacked');
  assert.ok(unackedWhileStuck.includes(held), `A holds what it reserved (${held})`);
  const b = await startWorker(env, [...bArgs, '-n', `b-${name}@test`]);
  t.after(() => kill(b.child));
  const bReadyAt = Date.now();
  await waitFor(() => tags.every((tag) => runs(runlog).some((r) => r.tag === tag)), 30_000, 'B drained every other message').catch(async (err: Error) => {
    throw new Error(`${err.message}\nredis: ${JSON.stringify(await redisState())}\nrun log:\n${readFileSync(runlog, 'utf8')}\nA:\n${a.output()}\nB:\n${b.output()}`);
  });
  const drainMs = Date.now() - bReadyAt;
  return { runlog, a, b, tags, drainMs, stuck };
}

/** The stuck task's stored result: FAILURE WorkerLostError, as Celery stores for a lost worker. */
async function assertLostWorkerFailure(stuck: AsyncResult): Promise<void> {
  await waitFor(async () => (await stuck.state) === States.FAILURE, 10_000, 'FAILURE stored for the hung task');
  const backend = new Redis(workers.redis.url(1));
  try {
    const doc = JSON.parse((await backend.get(`celery-task-meta-${stuck.id}`))!) as { status: string; task_id: string; result: { exc_type: string; exc_module: string; exc_message: string[] } };
    assert.equal(doc.status, 'FAILURE');
    assert.equal(doc.task_id, stuck.id);
    assert.deepEqual([doc.result.exc_type, doc.result.exc_module], ['WorkerLostError', 'billiard.exceptions']);
    assert.match(doc.result.exc_message[0]!, /workerHangTimeout/);
  } finally {
    backend.disconnect();
  }
}

test('a worker whose event loop hangs forever gives back its prefetched messages; another worker drains them (early ack: the stuck one was acked before it ran)', { skip: skip ?? false }, async (t) => {
  const { runlog, a, b, tags, drainMs, stuck } = await hangScenario(t, 'early', 'hang.stuck', 11, [3, 4]); // the early ack frees a slot: one more may be reserved
  console.log(`# early: B drained the 11 other messages ${drainMs} ms after it was ready (hang timeout 3 s)`);
  const log = runs(runlog);
  for (const tag of tags) {
    const ran = log.filter((r) => r.tag === tag);
    assert.equal(ran.length, 1, `${tag} ran once`);
    assert.equal(ran[0]!.pid, b.pid, `${tag} ran on B`);
  }
  await waitFor(async () => (await workers.client.hlen('unacked')) === 0 && (await workers.client.llen('celery')) === 0, 10_000, 'nothing left unacked or queued');
  // Early ack: the stuck message was acknowledged before it ran, as in Celery; it never runs again.
  assert.deepEqual(log.filter((r) => r.tag === 'early-stuck').map((r) => r.pid), [a.pid]);
  await waitFor(() => /Hung worker released: [34] message\(s\) given back, 0 started dropped, 0 started requeued/.test(a.output()), 5000, 'the release logged'); // stderr arrives on its own schedule
  assert.equal(a.child.exitCode, null, 'A is still alive (hung)');
  await assertLostWorkerFailure(stuck);
});

test('acks late: the hung task is acknowledged (Celery without reject_on_worker_lost), not run again', { skip: skip ?? false }, async (t) => {
  const { runlog, a, stuck } = await hangScenario(t, 'late', 'hang.stuckLate', 4, [4]);
  await waitFor(async () => (await workers.client.hlen('unacked')) === 0 && (await workers.client.llen('celery')) === 0, 10_000, 'nothing left unacked or queued');
  assert.deepEqual(runs(runlog).filter((r) => r.tag === 'late-stuck').map((r) => r.pid), [a.pid]);
  await waitFor(() => /Hung worker released: 3 message\(s\) given back, 1 started dropped, 0 started requeued/.test(a.output()), 5000, 'the release logged'); // stderr arrives on its own schedule
  await assertLostWorkerFailure(stuck);
});

test('acks late + rejectOnWorkerLost: the hung task is requeued and another worker runs it', { skip: skip ?? false }, async (t) => {
  // B takes one message at a time: the requeued task (at the back of the queue) hangs B too, after the rest.
  const { runlog, a, b } = await hangScenario(t, 'requeue', 'hang.stuckRequeue', 4, [4], ['-c', '1', '--prefetch-multiplier', '1']);
  await waitFor(() => runs(runlog).filter((r) => r.tag === 'requeue-stuck').length === 2, 10_000, 'B started the requeued task');
  assert.deepEqual(runs(runlog).filter((r) => r.tag === 'requeue-stuck').map((r) => r.pid), [a.pid, b.pid]);
  await waitFor(() => /Hung worker released: 3 message\(s\) given back, 0 started dropped, 1 started requeued/.test(a.output()), 5000, 'the release logged'); // stderr arrives on its own schedule
});

test('a task blocking the loop at start-up does not cost the heartbeat thread: a later long task runs once', { skip: skip ?? false }, async (t) => {
  const runlog = join(tmp, 'startup.log');
  const env = { CELERIAC_TEST_RUNLOG: runlog, CELERIAC_TEST_HEARTBEAT: '0.5' }; // TTL 2.5 s
  await workers.client.flushall();
  await producer.sendTask('hang.block', [12_000, 'startup']); // longer than the 10 s start-up timeout
  const a = await startWorker(env, ['-c', '1', '-n', 'a-startup@test'], false);
  t.after(() => kill(a.child));
  await waitFor(() => runs(runlog).some((r) => r.event === 'end' && r.tag === 'startup'), 30_000, 'A ran the start-up blocker');
  const long = await producer.sendTask('hang.block', [8000, 'long']);
  await waitFor(() => runs(runlog).some((r) => r.tag === 'long'), 10_000, 'A started the long task');
  const b = await startWorker(env, ['-c', '1', '-n', 'b-startup@test']);
  t.after(() => kill(b.child));
  assert.ok(!runs(runlog).some((r) => r.event === 'end' && r.tag === 'long'), 'B was ready while A was still blocked');
  assert.equal(await long.get({ timeout: 30_000 }), 'long');
  const starts = runs(runlog).filter((r) => r.event === 'start' && r.tag === 'long');
  assert.deepEqual(starts.map((r) => r.pid), [a.pid], `the long task ran once, on A (${starts.length} run(s))`);
  assert.doesNotMatch(a.output(), /beating from the event loop/);
});

test('a loop that comes back after a declared hang forfeits what it held and consumes again: nothing runs twice', { skip: skip ?? false }, async (t) => {
  const runlog = join(tmp, 'resume.log');
  const env = { CELERIAC_TEST_RUNLOG: runlog, CELERIAC_TEST_HEARTBEAT: '0.5', CELERIAC_TEST_HANG_TIMEOUT: '2' };
  await workers.client.flushall();
  const blocker = await producer.sendTask('hang.block', [8000, 'resume-blocker']); // acks late, no reject on worker lost; well past the 2 s hang timeout even if the thread starts slowly
  const tags = Array.from({ length: 6 }, (_, i) => `resume-${i}`);
  for (const tag of tags) await producer.sendTask('hang.note', [tag]);
  const a = await startWorker(env, ['-c', '1', '-n', 'a-resume@test'], false);
  t.after(() => kill(a.child));
  await waitFor(() => runs(runlog).some((r) => r.event === 'end' && r.tag === 'resume-blocker'), 20_000, 'A finished blocking');
  await waitFor(() => tags.every((tag) => runs(runlog).some((r) => r.tag === tag)), 20_000, 'A ran every other message after it came back');
  await waitFor(async () => (await workers.client.hlen('unacked')) === 0 && (await workers.client.llen('celery')) === 0, 10_000, 'nothing left unacked or queued');
  for (const tag of tags) assert.equal(runs(runlog).filter((r) => r.tag === tag).length, 1, `${tag} ran once`);
  // The thread acked the blocker (Celery's lost-worker rule); A's own late ack came after and was a logged no-op.
  assert.equal(runs(runlog).filter((r) => r.event === 'start' && r.tag === 'resume-blocker').length, 1);
  assert.equal(await blocker.get({ timeout: 10_000 }), 'resume-blocker');
  await waitFor(() => /Hung worker released: 3 message\(s\) given back, 1 started dropped/.test(a.output()), 5000, 'the release logged'); // stderr arrives on its own schedule
  await waitFor(() => /Consuming again/.test(a.output()), 5000, 'the worker logged it consumes again');
  assert.equal(a.child.exitCode, null, 'A is still running');
});

// End to end with the consumer blocked in a reserve when the loop hangs. Here the tick
// timer usually settles the hang before the pending reply is read; the other order
// (a task blocking from a timer callback) is covered by ConsumerHeartbeats.reserving()
// in loop-watch.test.ts.
test('a reserve pending when the loop hung: after the loop comes back every message runs once and none stays held', { skip: skip ?? false }, async (t) => {
  const runlog = join(tmp, 'pending.log');
  const env = { CELERIAC_TEST_RUNLOG: runlog, CELERIAC_TEST_HEARTBEAT: '0.5', CELERIAC_TEST_HANG_TIMEOUT: '2' };
  await workers.client.flushall();
  const a = await startWorker(env, ['-c', '2', '-n', 'a-pending@test']); // idle: blocked in a reserve
  t.after(() => kill(a.child));
  await producer.sendTask('hang.block', [8000, 'pending-blocker']); // well past the 2 s hang timeout even if the thread starts slowly
  await waitFor(() => runs(runlog).some((r) => r.tag === 'pending-blocker'), 10_000, 'A started blocking');
  const tags = Array.from({ length: 6 }, (_, i) => `pending-${i}`);
  for (const tag of tags) await producer.sendTask('hang.note', [tag]);
  await waitFor(() => tags.every((tag) => runs(runlog).some((r) => r.tag === tag)), 20_000, 'A ran every message after it came back');
  await waitFor(async () => (await workers.client.hlen('unacked')) === 0 && (await workers.client.llen('celery')) === 0, 10_000, 'nothing left unacked or queued');
  assert.equal(await workers.client.scard(`_celeriac.owned.${(await workers.client.zrange('_celeriac.consumers', 0, -1))[0]}`), 0, 'A holds nothing');
  for (const tag of tags) assert.equal(runs(runlog).filter((r) => r.tag === tag).length, 1, `${tag} ran once`);
  await waitFor(() => /Consuming again/.test(a.output()), 5000, 'the worker logged it consumes again');
});
