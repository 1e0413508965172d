/**
 * States and result fields a Celeriac worker writes, read back through
 * `AsyncResult` in Celeriac and in real Python Celery 5.2 (on a real
 * redis-server): a custom PROGRESS state with its meta while the task runs (`.info`
 * on both sides), STARTED with pid and hostname (`taskTrackStarted`),
 * `result_extended` fields, an error class named for Python (`excModule`), and
 * `ignoreResult` storing nothing.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { pino } from 'pino';
import { createApp, States, Worker } from '../packages/core/src/index.ts';
import { PY_DIR, pythonCeleryMissing } from './helpers/python-celery.ts';
import { missing, REDIS_SERVER, startRedis, SYSTEM_PYTHON, type RedisServer } from './helpers/services.ts';

const skip = missing(REDIS_SERVER, 'apt-get install redis-server') ?? pythonCeleryMissing();
let redis: RedisServer;
let worker: Worker;
const HOSTNAME = 'ts@states';
const app = createApp('states', { resultExtended: true });
/** One gate per key: the task waits on it, the test opens it (in whichever order they come). */
const gates = new Map<string, { promise: Promise<void>; open: () => void }>();
function gate(key: string) {
  let g = gates.get(key);
  if (!g) {
    let open!: () => void;
    const promise = new Promise<void>((resolve) => (open = resolve));
    gates.set(key, (g = { promise, open }));
  }
  return g;
}

app.task('st.progress', async function (total: number) {
  await this.updateState('PROGRESS', { current: 1, total });
  await gate('progress').promise;
  return { done: total };
});
app.task(
  'st.started',
  async () => {
    await gate('started').promise;
    return 'ok';
  },
  { trackStarted: true },
);
class ExpectedException extends Error {
  static excModule = 'proj.errors';
}
app.task('st.fail', () => {
  throw new ExpectedException('planned');
});
app.task('st.quiet', () => 'not stored', { ignoreResult: true });

type Seen = Record<string, { state: string; info: unknown; name: string | null; args: unknown; kwargs: unknown; worker: string | null; queue: string | null; retries: number | null }>;

function pythonSees(...ids: string[]): Seen {
  const env: NodeJS.ProcessEnv = { ...process.env, PYTHONPATH: PY_DIR, INTEROP_BACKEND_URL: redis.url(1) };
  delete env.PYTHONHOME;
  const run = spawnSync(SYSTEM_PYTHON, [join(PY_DIR, 'result_reader.py'), ...ids], { env, encoding: 'utf8', timeout: 30_000 });
  if (run.status !== 0) throw new Error(`result_reader.py failed: ${run.stderr}`);
  return JSON.parse(run.stdout.trim().split('\n').pop()!) as Seen;
}

async function until<T>(read: () => Promise<T>, ok: (v: T) => boolean): Promise<T> {
  const deadline = Date.now() + 10_000;
  for (;;) {
    const v = await read();
    if (ok(v) || Date.now() > deadline) return v;
    await sleep(10);
  }
}

before(async () => {
  if (skip) return;
  redis = await startRedis();
  app.configure({ brokerUrl: redis.url(0), resultBackend: redis.url(1) });
  worker = new Worker(app, { concurrency: 4, hostname: HOSTNAME, logger: pino({ level: 'silent' }) });
  await worker.start();
});
after(async () => {
  if (skip) return;
  for (const g of gates.values()) g.open();
  await worker.stop();
  await app.close();
  await redis.stop();
});

test('PROGRESS with its meta is readable at once, here (.state/.info) and in Python; then SUCCESS with result_extended fields', { skip: skip ?? false }, async () => {
  const r = await app.sendTask('st.progress', [3], {}, {});
  assert.equal(await until(() => r.state, (s) => s === 'PROGRESS'), 'PROGRESS');
  assert.deepEqual(await r.info, { current: 1, total: 3 });
  const during = pythonSees(r.id)[r.id]!;
  assert.equal(during.state, 'PROGRESS');
  assert.deepEqual(during.info, { current: 1, total: 3 });
  gate('progress').open();
  assert.deepEqual(await r.get({ timeout: 10_000 }), { done: 3 });
  const done = pythonSees(r.id)[r.id]!;
  assert.equal(done.state, 'SUCCESS');
  assert.deepEqual(done.info, { done: 3 });
  assert.deepEqual(
    { name: done.name, args: done.args, kwargs: done.kwargs, worker: done.worker, queue: done.queue, retries: done.retries },
    { name: 'st.progress', args: [3], kwargs: {}, worker: HOSTNAME, queue: 'celery', retries: 0 },
  );
  assert.deepEqual(await r.extended, { name: 'st.progress', args: [3], kwargs: {}, worker: HOSTNAME, queue: 'celery', retries: 0 });
});

test('trackStarted: STARTED with the pid and hostname, read by Python', { skip: skip ?? false }, async () => {
  const r = await app.sendTask('st.started');
  assert.equal(await until(() => r.state, (s) => s === States.STARTED), States.STARTED);
  const seen = pythonSees(r.id)[r.id]!;
  assert.equal(seen.state, 'STARTED');
  assert.deepEqual(seen.info, { pid: process.pid, hostname: HOSTNAME });
  gate('started').open();
  assert.equal(await r.get({ timeout: 10_000 }), 'ok');
});

test('an error class with excModule is raised in Python under that module; ignoreResult stores nothing', { skip: skip ?? false }, async () => {
  const before = worker.stats.processed;
  const failed = await app.sendTask('st.fail');
  await assert.rejects(failed.get({ timeout: 10_000 }), (err: Error) => err.name === 'ExpectedException');
  const quiet = await app.sendTask('st.quiet');
  await until(async () => worker.stats.processed, (n) => n >= before + 2);
  assert.equal(worker.stats.processed, before + 2, 'both ran');
  const seen = pythonSees(failed.id, quiet.id);
  assert.equal(seen[failed.id]!.state, 'FAILURE');
  // Python rebuilds the exception from exc_module / exc_type: the caller's own proj.errors.ExpectedException.
  assert.deepEqual(seen[failed.id]!.info, { exception: 'ExpectedException', module: 'proj.errors', args: ['planned'], is_proj_error: true });
  assert.equal(seen[quiet.id]!.state, 'PENDING', 'ignoreResult: nothing stored');
});
