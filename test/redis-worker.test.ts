/**
 * The worker on a real Redis, as separate `celeriac worker` processes: the CLI,
 * warm shutdown, far-ETA parking, and recovery of a killed worker's messages.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { States } from '../packages/core/src/index.ts';
import { missing, REDIS_SERVER } from './helpers/services.ts';
import { useRedisWorkers } from './helpers/redis-workers.ts';
import { waitFor, type WorkerProcessOptions } from './helpers/worker-process.ts';

const skip = missing(REDIS_SERVER, 'apt-get install redis-server');
const CLI = ['--import', 'tsx', 'packages/core/src/cli/main.ts'];
const tmp = mkdtempSync(join(tmpdir(), 'celeriac-worker-'));
const workers = useRedisWorkers(skip);
const { producer } = workers;
const add = producer.task('tasks.add', (x: number, y: number) => x + y);
const startWorker = (env: WorkerProcessOptions['env'] = {}, args: string[] = []) => workers.startWorker({ env, args });

/** Tags of the tasks.slow runs that have started, from CELERIAC_TEST_STARTLOG. */
function startedTags(startlog: string): string[] {
  return existsSync(startlog) ? readFileSync(startlog, 'utf8').trim().split('\n').map((l) => l.split(' ')[0]!) : [];
}

async function cli(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const child = spawn(process.execPath, [...CLI, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d) => (stdout += d));
  child.stderr.on('data', (d) => (stderr += d));
  const code = await new Promise<number | null>((resolve) => child.once('exit', resolve));
  return { code, stdout, stderr };
}

test('worker banner, celeriac call / result / purge', { skip: skip ?? false }, async () => {
  const w = await startWorker();
  assert.match(w.output(), /\.> transport:\s+redis:\/\/127\.0\.0\.1/);
  assert.match(w.output(), /\[tasks\]\n {2}\. tasks\.add\n {2}\. tasks\.block\n {2}\. tasks\.retry_once\n {2}\. tasks\.slow\n/);
  const call = await cli(['call', 'tasks.add', '--args', '[20, 22]', '--broker', workers.redis.url(0), '--backend', workers.redis.url(1)]);
  assert.equal(call.code, 0, call.stderr);
  const id = call.stdout.trim();
  assert.match(id, /^[0-9a-f-]{36}$/);
  const result = await cli(['result', id, '--backend', workers.redis.url(1), '--timeout', '10']);
  assert.equal(result.stdout.trim(), '42');
  w.child.kill('SIGTERM');
  assert.equal(await w.exited, 0);

  await producer.sendTask('tasks.add', [1, 1]);
  await producer.sendTask('tasks.add', [1, 1]);
  const purge = await cli(['purge', '-f', '--broker', workers.redis.url(0)]);
  assert.equal(purge.stdout.trim(), 'Purged 2 messages from 1 known task queue.');
  assert.equal(await workers.client.llen('celery'), 0);
  const bad = await cli(['call', 'tasks.add', '--args', '[1,', '--broker', workers.redis.url(0)]);
  assert.equal(bad.code, 2);
  assert.match(bad.stderr, /--args is not valid JSON/);
});

test('SIGTERM is a warm shutdown: running tasks finish, held ETA messages go back to the queue', { skip: skip ?? false }, async () => {
  const runlog = join(tmp, 'warm.log');
  const startlog = join(tmp, 'warm.started');
  const w = await startWorker({ CELERIAC_TEST_RUNLOG: runlog, CELERIAC_TEST_STARTLOG: startlog });
  const running = await producer.sendTask('tasks.slow', [3000, 'warm']); // longer than a shutdown that does not wait
  const held = await producer.sendTask('tasks.add', [2, 3], {}, { countdown: 30 });
  await waitFor(async () => (await workers.client.hlen('unacked')) === 2);
  await waitFor(() => startedTags(startlog).includes('warm')); // the slow task is running now
  w.child.kill('SIGTERM');
  assert.equal(await w.exited, 0);
  assert.equal(await producer.AsyncResult(running.id).state, States.SUCCESS, 'in-flight task finished before exit');
  assert.match(readFileSync(runlog, 'utf8'), /^warm \d+\n$/);
  assert.equal(await workers.client.hlen('unacked'), 0);
  const queued = await workers.client.lrange('celery', 0, -1);
  assert.equal(queued.length, 1, 'the held ETA message is back in the queue');
  assert.equal(JSON.parse(queued[0]!).headers.id, held.id);
  await workers.client.del('celery');
});

test('a second SIGTERM is a cold shutdown: the running late-ack task is given back, not lost', { skip: skip ?? false }, async () => {
  const runlog = join(tmp, 'cold.log');
  const startlog = join(tmp, 'cold.started');
  const w = await startWorker({ CELERIAC_TEST_RUNLOG: runlog, CELERIAC_TEST_STARTLOG: startlog });
  const r = await producer.sendTask('tasks.slow', [5000, 'cold']);
  await waitFor(async () => (await workers.client.hlen('unacked')) === 1);
  await waitFor(() => startedTags(startlog).includes('cold')); // running now
  try {
    w.child.kill('SIGTERM');
    await waitFor(() => /Warm shutdown \(SIGTERM\)/.test(w.output())); // the first signal was handled
    w.child.kill('SIGTERM');
    assert.equal(await w.exited, 1);
    // It did not wait for the 5 s task: the task never wrote its run log (no upper time bound: a busy machine may be slow to exit).
    assert.equal(existsSync(runlog), false, 'the task did not finish');
    assert.equal(await workers.client.hlen('unacked'), 0);
    const queued = await workers.client.lrange('celery', 0, -1);
    assert.equal(queued.length, 1, 'the message is back in the queue');
    const envelope = JSON.parse(queued[0]!);
    assert.equal(envelope.headers.id, r.id);
    assert.equal(envelope.headers.redelivered, true);
  } finally {
    // Whatever happened above, the next test starts with an empty queue.
    await workers.client.del('celery', 'unacked', 'unacked_index');
  }
});

test('far-future ETA messages are parked in Redis, not held unacked, and run when due', { skip: skip ?? false }, async () => {
  const w = await startWorker({ CELERIAC_TEST_ETA_HOLD: '1' });
  const r = await producer.sendTask<number>('tasks.add', [4, 4], {}, { countdown: 3 });
  await waitFor(async () => (await workers.client.zcard('_celeriac.eta')) === 1);
  assert.equal(await workers.client.hlen('unacked'), 0, 'not held unacked past the visibility timeout');
  assert.equal(await r.get({ timeout: 10_000 }), 8);
  assert.equal(await workers.client.zcard('_celeriac.eta'), 0);
  w.child.kill('SIGTERM');
  await w.exited;
});

test('a killed worker’s unacked message is redelivered within seconds, not after the visibility timeout', { skip: skip ?? false }, async () => {
  const runlog = join(tmp, 'kill.log');
  const env = { CELERIAC_TEST_RUNLOG: runlog, CELERIAC_TEST_HEARTBEAT: '0.5' };
  const first = await startWorker(env);
  const r = await producer.sendTask('tasks.slow', [3000, 'survivor']);
  await waitFor(async () => (await workers.client.hlen('unacked')) === 1);
  first.child.kill('SIGKILL');
  await first.exited;
  assert.equal(existsSync(runlog), false, 'the first worker died before finishing');
  const started = Date.now();
  const second = await startWorker(env);
  assert.equal(await r.get({ timeout: 15_000 }), 'survivor');
  const recoveredMs = Date.now() - started;
  assert.ok(recoveredMs < 12_000, `recovered after ${recoveredMs} ms`);
  assert.equal(readFileSync(runlog, 'utf8').trim().split('\n').length, 1, 'ran exactly once to completion');
  await waitFor(async () => (await workers.client.hlen('unacked')) === 0); // late ack follows the stored result
  second.child.kill('SIGTERM');
  await second.exited;
});

test('a task that blocks the event loop past the heartbeat TTL is not redelivered to another worker', { skip: skip ?? false }, async () => {
  const runlog = join(tmp, 'block.log');
  const env = { CELERIAC_TEST_RUNLOG: runlog, CELERIAC_TEST_HEARTBEAT: '0.3' }; // TTL 1.5 s
  const a = await startWorker(env, ['-n', 'a@test']);
  const b = await startWorker(env, ['-n', 'b@test']);
  const r = await producer.sendTask('tasks.block', [4000, 'blocker']);
  assert.equal(await r.get({ timeout: 15_000 }), 'blocker');
  await new Promise((res) => setTimeout(res, 2000)); // a duplicate would have started by now
  assert.equal(readFileSync(runlog, 'utf8').trim().split('\n').length, 1, 'ran exactly once');
  a.child.kill('SIGTERM');
  b.child.kill('SIGTERM');
  await Promise.all([a.exited, b.exited]);
});

test('kill -9 in the middle of 300 late-ack tasks: a second worker finishes them all, nothing is lost', { skip: skip ?? false }, async () => {
  const runlog = join(tmp, 'bulk.log');
  const env = { CELERIAC_TEST_RUNLOG: runlog, CELERIAC_TEST_HEARTBEAT: '0.5' };
  const first = await startWorker(env); // -c 4, prefetch 16
  const sent = await Promise.all(Array.from({ length: 300 }, (_, i) => producer.sendTask('tasks.slow', [20, `bulk-${i}`])));
  await waitFor(async () => existsSync(runlog) && readFileSync(runlog, 'utf8').split('\n').length > 60);
  first.child.kill('SIGKILL');
  await first.exited;
  const second = await startWorker(env);
  const values = await Promise.all(sent.map((r) => r.get({ timeout: 30_000 })));
  assert.deepEqual(values, sent.map((_, i) => `bulk-${i}`), 'every task has its result');
  const runs = readFileSync(runlog, 'utf8').trim().split('\n').map((l) => l.split(' ')[0]);
  assert.equal(new Set(runs).size, 300, 'every task ran');
  // At-least-once: only runs the killed worker had not acknowledged yet may happen twice:
  // at most 4 running (-c 4) + 16 finished but still recording (the recording limit).
  assert.ok(runs.length - 300 <= 20, `${runs.length - 300} duplicate runs`);
  await waitFor(async () => (await workers.client.hlen('unacked')) === 0 && (await workers.client.llen('celery')) === 0);
  second.child.kill('SIGTERM');
  await second.exited;
});
