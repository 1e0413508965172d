/**
 * A Python Celery worker and a Celeriac worker consuming the same queue on one
 * real redis-server: they split the work, nothing is lost, nothing runs twice,
 * and the broker is clean afterwards.
 *
 * `mixed.who(i)` exists on both sides and returns `['py', i]` (Python) or
 * `['ts', i]` (Celeriac); each run also RPUSHes `<who>:<i>` to the list
 * `interop:executions` in db 2, which counts executions independently of results.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { Worker } from '../packages/core/src/index.ts';
import { app, closeRecorder, who } from './apps/interop-app.ts';
import { brokerState, interopEnv, pythonCeleryMissing, redisClient, runPythonProducer, startPythonWorker, type InteropEnv, type PeerProcess } from './helpers/python-celery.ts';
import { missing, REDIS_SERVER, startRedis, type RedisServer } from './helpers/services.ts';

const skip = missing(REDIS_SERVER, 'apt-get install redis-server') ?? pythonCeleryMissing();
const N = 200;

let redis: RedisServer | undefined;
let pyWorker: PeerProcess | undefined;
let tsWorker: Worker | undefined;
let env: InteropEnv;

before(async () => {
  if (skip) return;
  redis = await startRedis();
  env = interopEnv(redis);
  process.env.INTEROP_RECORD_URL = env.INTEROP_RECORD_URL;
  app.configure({ brokerUrl: env.INTEROP_BROKER_URL, resultBackend: env.INTEROP_BACKEND_URL });
  pyWorker = await startPythonWorker({ env, hostname: 'py@mixed' });
  tsWorker = new Worker(app, { concurrency: 4, hostname: 'ts@mixed', logLevel: 'warn' });
  await tsWorker.start();
});

after(async () => {
  await tsWorker?.stop();
  await closeRecorder();
  await app.close();
  await pyWorker?.stop();
  await redis?.stop();
});

type Who = [string, number];

/** Read and clear the execution log. */
async function takeExecutions(): Promise<string[]> {
  const r = redisClient(env.INTEROP_RECORD_URL);
  try {
    const [[, list]] = (await r.multi().lrange('interop:executions', 0, -1).del('interop:executions').exec()) as [[null, string[]], [null, number]];
    return list;
  } finally {
    r.disconnect();
  }
}

/**
 * Every i in 0..n-1 has exactly one result, naming the worker that ran it, and
 * exactly one execution in the log, by that same worker.
 */
function checkSplit(values: (Who | undefined)[], executions: string[], n: number): { py: number; ts: number } {
  const counts = { py: 0, ts: 0 };
  assert.equal(values.length, n);
  values.forEach((v, i) => {
    assert.ok(Array.isArray(v) && v.length === 2, `result ${i} is ${JSON.stringify(v)}`);
    assert.equal(v[1], i, `result ${i} belongs to task ${v[1]}`);
    assert.ok(v[0] === 'py' || v[0] === 'ts', `result ${i} ran on ${JSON.stringify(v[0])}`);
    counts[v[0]]++;
  });
  const seen = new Map<number, string[]>();
  for (const e of executions) {
    const [by, i] = e.split(':') as [string, string];
    seen.set(Number(i), [...(seen.get(Number(i)) ?? []), by]);
  }
  const twice = [...seen].filter(([, by]) => by.length > 1);
  assert.deepEqual(twice, [], 'tasks executed more than once');
  assert.equal(executions.length, n, `${executions.length} executions recorded for ${n} tasks`);
  values.forEach((v, i) => assert.deepEqual(seen.get(i), [v![0]], `task ${i}: result says ${v![0]}, log says ${seen.get(i)}`));
  assert.ok(counts.py > 0, `the Python worker ran none of ${n} tasks (ts ran ${counts.ts})`);
  assert.ok(counts.ts > 0, `the Celeriac worker ran none of ${n} tasks (py ran ${counts.py})`);
  return counts;
}

async function waitBrokerClean(): Promise<void> {
  const deadline = Date.now() + 5000;
  let state = await brokerState(env.INTEROP_BROKER_URL);
  while ((state.ready || state.unacked || state.unackedIndex) && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 100));
    state = await brokerState(env.INTEROP_BROKER_URL);
  }
  assert.deepEqual({ ready: state.ready, unacked: state.unacked, unackedIndex: state.unackedIndex }, { ready: 0, unacked: 0, unackedIndex: 0 }, `broker keys: ${JSON.stringify(state.keys)}`);
}

test(`Celeriac sends ${N} tasks; the Python and Celeriac workers split them, each result exactly once`, { skip: skip ?? false }, async () => {
  await takeExecutions();
  const before = tsWorker!.stats.succeeded;
  const results = await Promise.all(Array.from({ length: N }, (_, i) => who.delay(i)));
  const values = (await Promise.all(results.map((r) => r.get({ timeout: 20_000 })))) as Who[];
  await tsWorker!.whenIdle();
  const counts = checkSplit(values, await takeExecutions(), N);
  assert.equal(tsWorker!.stats.succeeded - before, counts.ts, 'Celeriac worker stats agree with the results');
  console.log(`split of ${N} Celeriac-sent tasks: py ${counts.py}, ts ${counts.ts}`);
  await waitBrokerClean();
});

test(`Python sends ${N} tasks; the Python and Celeriac workers split them, Python reads every result`, { skip: skip ?? false }, async () => {
  await takeExecutions();
  const out = await runPythonProducer<{ ids: string[]; values: Record<string, Who>; failures: Record<string, unknown> }>('mixed', env, [String(N)], 40_000);
  assert.deepEqual(out.failures, {}, 'Python get() raised');
  assert.equal(new Set(out.ids).size, N);
  const values = Array.from({ length: N }, (_, i) => out.values[String(i)]);
  const counts = checkSplit(values, await takeExecutions(), N);
  console.log(`split of ${N} Python-sent tasks: py ${counts.py}, ts ${counts.ts}`);
  await waitBrokerClean();
});

test('after both workers stop (warm), the broker is clean: queue empty, no unacked entries', { skip: skip ?? false }, async () => {
  await tsWorker!.stop();
  tsWorker = undefined;
  await pyWorker!.stop();
  const exit = pyWorker!.child.exitCode;
  pyWorker = undefined;
  assert.equal(exit, 0, 'the Python worker exited cleanly on SIGTERM');
  await waitBrokerClean();
});
