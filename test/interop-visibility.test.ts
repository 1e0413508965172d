/**
 * A Python Celery worker with a short `visibility_timeout` shares the queue with
 * a Celeriac worker that holds long-running late-ack tasks. kombu's visibility
 * restore (run when the Python worker starts polling) puts back every
 * `unacked_index` entry older than the timeout; Celeriac's heartbeat keeps the
 * scores of the messages it holds fresh, so the Python worker must restore and
 * run none of them, while it does restore a genuinely abandoned entry (the
 * control that shows the restore ran). Real redis-server, real Celery 5.2.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { Redis } from 'ioredis';
import { createApp, Worker, type AsyncResult, type TaskContext } from '../packages/core/src/index.ts';
import { assertBrokerDrained, interopEnv, pythonCeleryMissing, startPythonWorker, type InteropEnv, type PeerProcess } from './helpers/python-celery.ts';
import { missing, REDIS_SERVER, startRedis, type RedisServer } from './helpers/services.ts';

const skip = missing(REDIS_SERVER, 'apt-get install redis-server') ?? pythonCeleryMissing();
const HELD = 4;
const VISIBILITY_TIMEOUT_S = 2;

let redis: RedisServer;
let broker: Redis;
let records: Redis;
let env: InteropEnv;
let tsWorker: Worker | undefined;
let pyWorker: PeerProcess | undefined;
const app = createApp('visibility');
const started = new Map<string, number>();
const runs = new Map<string, number>();
let release!: () => void;
const released = new Promise<void>((resolve) => (release = resolve));
/** Same name as the Python task: whoever runs it says so in the result. */
const hold = app.task('mixed.hold', async function (this: TaskContext, tag: string) {
  runs.set(tag, (runs.get(tag) ?? 0) + 1);
  started.set(tag, Date.now());
  await released; // long-running: until the test has seen the Python worker's restore
  return ['ts', tag];
}, { acksLate: true });

async function waitFor(what: string, check: () => boolean | Promise<boolean>, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for: ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

before(async () => {
  if (skip) return;
  redis = await startRedis();
  env = { ...interopEnv(redis), INTEROP_VISIBILITY_TIMEOUT: String(VISIBILITY_TIMEOUT_S) };
  broker = new Redis(env.INTEROP_BROKER_URL);
  records = new Redis(env.INTEROP_RECORD_URL);
  app.configure({ brokerUrl: env.INTEROP_BROKER_URL, resultBackend: env.INTEROP_BACKEND_URL, workerHeartbeatInterval: 0.5 });
  // Exactly HELD prefetch slots: everything the Celeriac worker takes, it runs now.
  tsWorker = new Worker(app, { concurrency: HELD, prefetchMultiplier: 1, hostname: 'ts@visibility', logLevel: 'warn' });
  await tsWorker.start();
});

after(async () => {
  if (skip) return;
  release();
  await tsWorker?.stop();
  await pyWorker?.stop();
  await app.close();
  broker.disconnect();
  records.disconnect();
  await redis.stop();
});

test(`a Python worker with visibility_timeout=${VISIBILITY_TIMEOUT_S} s restores none of the messages a live Celeriac worker holds`, { skip: skip ?? false }, async () => {
  const held: AsyncResult<unknown>[] = [];
  for (let i = 0; i < HELD; i++) held.push(await hold.delay(`held-${i}`));
  await waitFor(`${HELD} tasks running on Celeriac`, () => started.size === HELD, 10_000);
  assert.equal(await broker.llen('celery'), 0);
  assert.equal(await broker.hlen('unacked'), HELD);

  // The control: an unacked entry nobody holds, delivered a minute ago (a dead worker's).
  const orphan = await hold.applyAsync(['orphan'], {}, { queue: 'parking' });
  const envelope = await broker.rpop('parking');
  assert.ok(envelope, 'the orphan message was published');
  await broker.multi().hset('unacked', 'orphan-tag', JSON.stringify([JSON.parse(envelope), '', 'celery'])).zadd('unacked_index', Date.now() / 1000 - 60, 'orphan-tag').exec();

  // Celeriac's messages are now older than the visibility timeout by delivery time.
  const oldest = Math.min(...started.values());
  await waitFor('held past the visibility timeout', () => Date.now() - oldest > (VISIBILITY_TIMEOUT_S + 1) * 1000, 10_000);
  pyWorker = await startPythonWorker({ env, hostname: 'py@visibility' });
  // kombu restored the abandoned entry and the Python worker ran it: its restore has run.
  assert.deepEqual(await orphan.get({ timeout: 30_000 }), ['py', 'orphan']);

  assert.deepEqual(await records.lrange('interop:executions', 0, -1), ['py:orphan'], 'the Python worker ran only the abandoned message');
  assert.equal(await broker.hlen('unacked'), HELD, 'the held messages are still unacked, not restored');
  release();
  const values = await Promise.all(held.map((r) => r.get({ timeout: 10_000 })));
  assert.deepEqual(values, held.map((_, i) => ['ts', `held-${i}`]), 'Celeriac ran every held task');
  assert.deepEqual([...runs.entries()].sort(), held.map((_, i) => [`held-${i}`, 1]).sort(), 'each held task ran exactly once');
  assert.deepEqual(await records.lrange('interop:executions', 0, -1), ['py:orphan'], 'still nothing else ran on Python');
  await tsWorker!.stop();
  await assertBrokerDrained(env.INTEROP_BROKER_URL, { workersStopped: true });
});
