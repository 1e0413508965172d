/**
 * `celeriac call / result / purge` never fall back to an in-process memory://
 * broker: they take the broker and result backend from -b/--result-backend, -A,
 * or the environment (CELERIAC_* or CELERY_*), and otherwise fail, saying so.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { Redis } from 'ioredis';
import { missing, REDIS_SERVER, startRedis, type RedisServer } from './helpers/services.ts';
import { runCli } from './helpers/cli.ts';

const skip = missing(REDIS_SERVER, 'apt-get install redis-server');
const SECRET = 's3cretPW';
let redis: RedisServer;
let client: Redis;

before(async () => {
  if (skip) return;
  redis = await startRedis();
  client = new Redis(redis.url(0));
});

after(async () => {
  if (skip) return;
  client.disconnect();
  await redis.stop();
});

function assertOneErrorLine(run: { code: number | null; stdout: string; stderr: string }, pattern: RegExp): void {
  assert.equal(run.code, 2, `exit status 2, got ${run.code}: ${run.stderr}`);
  assert.equal(run.stdout, '', 'no task id printed');
  const lines = run.stderr.trim().split('\n');
  assert.equal(lines.length, 1, run.stderr);
  assert.match(lines[0]!, /^celeriac: error: /);
  assert.match(lines[0]!, pattern);
}

test('without any broker, call and purge fail with status 2 and say how to name one', async () => {
  const [call, purge, appOnMemory] = await Promise.all([
    runCli(['call', 'tasks.add', '--args', '[1, 2]']),
    runCli(['purge', '-f']),
    runCli(['-A', 'test/apps/worker-app.ts', 'call', 'tasks.add']),
  ]);
  const fix = /pass -b redis:\/\/127\.0\.0\.1:6379\/0, set CELERIAC_BROKER_URL \(or CELERY_BROKER_URL\), or -A a module whose app sets brokerUrl/;
  assertOneErrorLine(call, /^celeriac: error: celeriac call has no broker \(memory:\/\/ lives inside one process/);
  assertOneErrorLine(call, fix);
  assertOneErrorLine(purge, /^celeriac: error: celeriac purge has no broker/);
  assertOneErrorLine(appOnMemory, /celeriac call has no broker/);
});

test('without a result backend, result and call --wait fail before sending anything', { skip: skip ?? false }, async () => {
  const [result, wait] = await Promise.all([
    runCli(['result', '3b2f1c1e-0000-4000-8000-000000000000']),
    runCli(['call', 'tasks.add', '--wait'], { CELERY_BROKER_URL: redis.url(0) }),
  ]);
  const fix = /pass --result-backend redis:\/\/127\.0\.0\.1:6379\/1, set CELERIAC_RESULT_BACKEND \(or CELERY_RESULT_BACKEND\)/;
  assertOneErrorLine(result, /^celeriac: error: celeriac result has no result backend/);
  assertOneErrorLine(result, fix);
  assertOneErrorLine(wait, /^celeriac: error: celeriac call --wait has no result backend/);
  assert.equal(await client.llen('celery'), 0, 'call --wait sent nothing');
});

test('CELERY_BROKER_URL / CELERIAC_BROKER_URL reach a real Redis: call queues the message, purge removes it', { skip: skip ?? false }, async () => {
  await client.del('celery');
  const call = await runCli(['call', 'tasks.add', '--args', '[2, 3]'], { CELERY_BROKER_URL: redis.url(0) });
  assert.equal(call.code, 0, call.stderr);
  const id = call.stdout.trim();
  const queued = await client.lrange('celery', 0, -1);
  assert.equal(queued.length, 1, 'the message is in the Redis list, not lost in memory://');
  const envelope = JSON.parse(queued[0]!) as { headers: { id: string; task: string } };
  assert.deepEqual([envelope.headers.id, envelope.headers.task], [id, 'tasks.add']);

  const second = await runCli(['call', 'tasks.add', '--args', '[4, 5]'], { CELERIAC_BROKER_URL: redis.url(0), CELERY_BROKER_URL: 'redis://127.0.0.1:1/0' });
  assert.equal(second.code, 0, `CELERIAC_BROKER_URL wins over CELERY_BROKER_URL: ${second.stderr}`);
  assert.equal(await client.llen('celery'), 2);

  const purge = await runCli(['purge', '-f'], { CELERIAC_BROKER_URL: redis.url(0) });
  assert.equal(purge.code, 0, purge.stderr);
  assert.equal(purge.stdout.trim(), 'Purged 2 messages from 1 known task queue.');
  assert.equal(await client.llen('celery'), 0);
});

test('CELERY_RESULT_BACKEND: result reads a stored result from Redis', { skip: skip ?? false }, async () => {
  const id = '8c1e9a50-6f55-4d0e-9d55-2f9c1b0e7a11';
  const doc = { status: 'SUCCESS', result: 42, traceback: null, children: [], date_done: '2026-12-02T01:00:00.000000', task_id: id };
  await client.select(1);
  await client.set(`celery-task-meta-${id}`, JSON.stringify(doc));
  await client.select(0);
  const result = await runCli(['result', id, '--timeout', '5'], { CELERY_RESULT_BACKEND: redis.url(1) });
  assert.equal(result.code, 0, result.stderr);
  assert.equal(result.stdout.trim(), '42');
});

test('result --timeout on a task that never finishes: one line naming the timeout, status 1, no stack', { skip: skip ?? false }, async () => {
  const id = '0d6f1d2e-1111-4222-8333-444455556666';
  const run = await runCli(['result', id, '--timeout', '0.3'], { CELERY_RESULT_BACKEND: redis.url(1) });
  assert.equal(run.code, 1, run.stderr);
  assert.equal(run.stdout, '');
  assert.equal(run.stderr, `celeriac: error: TimeoutError: The result of task ${id} was not ready within 300 ms (still pending or running).\n`);
});

test('purge and result with Redis down fail fast: one line naming the masked URL and the reason, status 1, no ioredis stack', { skip: skip ?? false }, async () => {
  const down = await startRedis();
  await down.stop(); // a port where nothing listens any more
  const broker = `redis://:${SECRET}@127.0.0.1:${down.port}/0`;
  const backend = `redis://:${SECRET}@127.0.0.1:${down.port}/1`;
  const started = Date.now();
  const [purge, result, resultNoWait] = await Promise.all([
    runCli(['purge', '-f', '-b', broker]),
    runCli(['result', '3b2f1c1e-0000-4000-8000-000000000000', '--result-backend', backend]),
    runCli(['result', '3b2f1c1e-0000-4000-8000-000000000000', '--result-backend', backend, '--no-wait']),
  ]);
  const tookMs = Date.now() - started;
  console.log(`# purge/result with Redis down exited after ${tookMs} ms`);
  const masked = (db: number) => `redis://:\\*\\*\\*\\*@127\\.0\\.0\\.1:${down.port}/${db}`;
  for (const [run, pattern] of [
    [purge, new RegExp(`^celeriac: error: BrokerUnavailable: Cannot purge queues on ${masked(0)}: the broker is unreachable \\(Connection refused\\)`)],
    [result, new RegExp(`^celeriac: error: ResultBackendUnavailable: Cannot read results from ${masked(1)}: Connection refused`)],
    [resultNoWait, new RegExp(`^celeriac: error: ResultBackendUnavailable: Cannot read results from ${masked(1)}: Connection refused`)],
  ] as const) {
    assert.equal(run.code, 1, run.stderr);
    assert.equal(run.stdout, '');
    const errors = run.stderr.split('\n').filter((l) => l.startsWith('celeriac: error: '));
    assert.equal(errors.length, 1, run.stderr);
    assert.match(errors[0]!, pattern);
    assert.doesNotMatch(run.stderr, /MaxRetriesPerRequest|\n\s+at /, 'no raw ioredis error or stack');
    assert.ok(!run.stderr.includes(SECRET), 'the password is masked');
  }
  assert.ok(tookMs < 15_000, `took ${tookMs} ms`);
});
