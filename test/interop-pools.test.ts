/**
 * A Celeriac `--pool processes` worker (members load test/apps/pool-app.ts) driven
 * by real Python Celery 5.2 on a real redis-server: Python's `time_limit` stops a
 * synchronous loop that never yields (the member is terminated and replaced; Python
 * raises billiard's TimeLimitExceeded), Python's `soft_time_limit` aborts the task's
 * signal in the member (SoftTimeLimitExceeded), and the pool goes on serving Python.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { after, before, test } from 'node:test';
import { pino } from 'pino';
import { Worker } from '../packages/core/src/index.ts';
import { app } from './apps/pool-app.ts';
import { PY_DIR, pythonCeleryMissing } from './helpers/python-celery.ts';
import { missing, REDIS_SERVER, startRedis, SYSTEM_PYTHON, type RedisServer } from './helpers/services.ts';

const skip = missing(REDIS_SERVER, 'apt-get install redis-server') ?? pythonCeleryMissing();
let redis: RedisServer;
let worker: Worker;

before(async () => {
  if (skip) return;
  redis = await startRedis();
  app.configure({ brokerUrl: redis.url(0), resultBackend: redis.url(1) });
  worker = new Worker(app, { pool: 'processes', appModule: 'test/apps/pool-app.ts', concurrency: 2, logger: pino({ level: 'silent' }) });
  await worker.start();
});
after(async () => {
  if (skip) return;
  await worker.stop();
  await app.close();
  await redis.stop();
});

/** What Python's `get()` returned or raised for each call, as JSON lines. */
const PYTHON = `
import json, os, sys
from celery import Celery
app = Celery(broker=os.environ['BROKER'], backend=os.environ['BACKEND'])
def outcome(name, args=(), **options):
    r = app.send_task(name, args=list(args), **options)
    try:
        return {'value': r.get(timeout=60), 'state': r.state}
    except Exception as e:
        return {'raised': type(e).__name__, 'module': type(e).__module__, 'args': list(e.args), 'state': r.state}
out = {
    'hard': outcome('pool.forever', time_limit=0.5),
    'soft': outcome('pool.soft', [False], soft_time_limit=0.3),
    'softCaught': outcome('pool.soft', [True], soft_time_limit=0.3),
    'after': outcome('pool.add', [2, 3]),
}
print(json.dumps(out))
`;

test("Python's time_limit / soft_time_limit on a processes pool: terminated / aborted, read by Python; the pool goes on", { skip: skip ?? false }, async () => {
  const env: NodeJS.ProcessEnv = { ...process.env, PYTHONPATH: PY_DIR, BROKER: redis.url(0), BACKEND: redis.url(1) };
  delete env.PYTHONHOME;
  // Not spawnSync: the worker runs on this event loop.
  const py = spawn(SYSTEM_PYTHON, ['-c', PYTHON], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  py.stdout!.on('data', (c: Buffer) => (stdout += c));
  py.stderr!.on('data', (c: Buffer) => (stderr += c));
  const timer = setTimeout(() => py.kill('SIGKILL'), 240_000);
  const code = await new Promise<number | null>((resolve) => py.once('exit', resolve));
  clearTimeout(timer);
  assert.equal(code, 0, stderr);
  const seen = JSON.parse(stdout.trim().split('\n').pop()!) as Record<string, unknown>;
  assert.deepEqual(seen.hard, { raised: 'TimeLimitExceeded', module: 'billiard.exceptions', args: [0.5], state: 'FAILURE' });
  assert.deepEqual(seen.soft, { raised: 'SoftTimeLimitExceeded', module: 'billiard.exceptions', args: [], state: 'FAILURE' });
  assert.deepEqual(seen.softCaught, { value: 'cleaned up', state: 'SUCCESS' });
  assert.deepEqual(seen.after, { value: 5, state: 'SUCCESS' });
});
