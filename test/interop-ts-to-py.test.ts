/**
 * Celeriac producer → Python Celery 5.2 worker, on one real redis-server.
 *
 * This process sends with typed `delay` / `applyAsync` and with `sendTask` by
 * name; `python3 -m celery -A interop_tasks worker` (test/python) runs the tasks;
 * Celeriac's `AsyncResult.get()` reads what the Python worker stored.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { createApp, RemoteTaskError } from '../packages/core/src/index.ts';
import { assertBrokerDrained, interopEnv, pythonCeleryMissing, startPythonWorker, type InteropEnv, type PeerProcess } from './helpers/python-celery.ts';
import { missing, REDIS_SERVER, startRedis, type RedisServer } from './helpers/services.ts';

const skip = missing(REDIS_SERVER, 'apt-get install redis-server') ?? pythonCeleryMissing();

let redis: RedisServer | undefined;
let worker: PeerProcess | undefined;
let env: InteropEnv;

// The producer side: tasks only Python implements, declared for their types.
const app = createApp('interop-producer');
const pythonOnly = (): never => {
  throw new Error('runs on the Python worker');
};
const add = app.task('tasks.add', (_x: number, _y: number): number => pythonOnly());
const div = app.task('tasks.div', (_x: number, _y: number): number => pythonOnly());
const flaky = app.task('tasks.flaky', (_value: string): { value: string; retries: number; ran_at: number } => pythonOnly());

before(async () => {
  if (skip) return;
  redis = await startRedis();
  env = interopEnv(redis);
  app.configure({ brokerUrl: env.INTEROP_BROKER_URL, resultBackend: env.INTEROP_BACKEND_URL });
  worker = await startPythonWorker({ env, hostname: 'py@ts-to-py' });
});

after(async () => {
  await app.close();
  await worker?.stop();
  await redis?.stop();
});

const T = { timeout: 15_000 };
const workerLog = () => worker?.output().slice(-3000) ?? '';

/** The error `get()` rejected with (fails the test when it resolved). */
async function rejection(promise: Promise<unknown>): Promise<RemoteTaskError> {
  try {
    const value = await promise;
    assert.fail(`get() resolved with ${JSON.stringify(value)} instead of rejecting`);
  } catch (err) {
    if (err instanceof assert.AssertionError) throw err;
    assert.ok(err instanceof RemoteTaskError, `expected a RemoteTaskError, got ${String(err)}`);
    return err;
  }
}

describe('Celeriac producer, Python worker', { skip: skip ?? false, concurrency: true }, () => {
  test('add.delay(2, 3): get() returns 5', async () => {
    const r = await add.delay(2, 3);
    assert.equal(await r.get(T), 5, workerLog());
    assert.equal(await r.state, 'SUCCESS');
  });

  test('sendTask by name with kwargs only: Python keyword arguments', async () => {
    const r = await app.sendTask<number>('tasks.add', [], { x: 4, y: 5 });
    assert.equal(await r.get(T), 9);
  });

  test('sendTask with args and kwargs: Python sees both, unicode and nesting intact', async () => {
    const kwargs = { a: 1, b: 'é😀', nested: { list: [1, 2.5, null, true] } };
    const r = await app.sendTask('tasks.echo_kwargs', [1, 'two'], kwargs);
    assert.deepEqual(await r.get(T), { args: [1, 'two'], kwargs });
  });

  test('applyAsync countdown 1: the Python worker runs it no earlier than 1 s later', async () => {
    const sent = Date.now() / 1000;
    const r = await app.sendTask<number>('tasks.now', [], {}, { countdown: 1 });
    const ran = await r.get(T);
    assert.ok(ran - sent >= 0.9, `ran ${(ran - sent).toFixed(3)} s after sending; countdown was 1 s`);
    assert.ok(ran - sent < 8, `ran ${(ran - sent).toFixed(3)} s after sending; far too late`);
  });

  test('ZeroDivisionError: get() rejects with name ZeroDivisionError and the Python message', async () => {
    const r = await div.delay(1, 0);
    const err = await rejection(r.get(T));
    assert.equal(err.name, 'ZeroDivisionError');
    assert.equal(err.message, 'division by zero');
    assert.equal(err.excModule, 'builtins');
    assert.deepEqual(err.excArgs, ['division by zero']);
    assert.equal(err.taskId, r.id);
    assert.match(err.remoteTraceback ?? '', /Traceback \(most recent call last\)[\s\S]*ZeroDivisionError: division by zero/);
    assert.equal(await r.state, 'FAILURE');
  });

  test('ValueError("bad", 7): get() rejects with name ValueError and both arguments', async () => {
    const r = await app.sendTask('tasks.fail');
    const err = await rejection(r.get(T));
    assert.equal(err.name, 'ValueError');
    assert.deepEqual(err.excArgs, ['bad', 7]);
    assert.match(err.message, /bad/);
  });

  test('propagate: false resolves with the error instead', async () => {
    const r = await div.delay(2, 0);
    const value: unknown = await r.get({ ...T, propagate: false });
    assert.ok(value instanceof Error && value.name === 'ZeroDivisionError', String(value));
  });

  test('expires in the past: the Python worker revokes it; get() rejects with TaskRevokedError "expired"', async () => {
    const r = await add.applyAsync([1, 1], {}, { expires: new Date(Date.now() - 30_000) });
    const err = await rejection(r.get(T));
    assert.equal(err.name, 'TaskRevokedError');
    assert.deepEqual(err.excArgs, ['expired']);
    assert.equal(await r.state, 'REVOKED');
  });

  test('expires before the countdown is over: Python Celery revokes it when the eta comes (reference for Celeriac)', async () => {
    const r = await add.applyAsync([1, 1], {}, { countdown: 2, expires: 1 });
    const err = await rejection(r.get(T));
    assert.equal(err.name, 'TaskRevokedError');
    assert.deepEqual(err.excArgs, ['expired']);
  });

  test('link: the Python worker sends the callback with the result prepended', async () => {
    const callbackId = randomUUID();
    const r = await add.applyAsync([2, 2], {}, { link: app.signature('tasks.mul', [10], {}, { task_id: callbackId }) });
    assert.equal(await r.get(T), 4);
    const cb = app.AsyncResult<number>(callbackId);
    assert.equal(await cb.get(T), 40);
    assert.equal((await cb.refresh()).parentId, r.id, 'the callback is a child of the linked task');
  });

  test('linkError: the Python worker sends the errback with the failed task id', async () => {
    const errbackId = randomUUID();
    const r = await div.applyAsync([1, 0], {}, { linkError: app.signature('tasks.errback', [], {}, { task_id: errbackId }) });
    await rejection(r.get(T));
    assert.deepEqual(await app.AsyncResult(errbackId).get(T), { failed_task_id: r.id });
  });

  test('a Python task that retries once: get() waits through RETRY and returns the value', async () => {
    const started = Date.now();
    const r = await flaky.delay('v2');
    const value = await r.get(T);
    assert.equal(value.value, 'v2');
    assert.equal(value.retries, 1);
    assert.ok(Date.now() - started >= 900, `returned after ${Date.now() - started} ms; the retry countdown was 1 s`);
  });

  test('while a Python task waits for its retry (retry() without exc), Celeriac reads RETRY with result null', async () => {
    const r = await flaky.delay('v3');
    const deadline = Date.now() + 5000;
    let snap = await app.AsyncResult(r.id).refresh();
    while (snap.state !== 'RETRY' && snap.state !== 'SUCCESS' && Date.now() < deadline) {
      await new Promise((res) => setTimeout(res, 20));
      snap = await app.AsyncResult(r.id).refresh();
    }
    assert.equal(snap.state, 'RETRY', 'the Python worker stores RETRY for about 1 s');
    // The stored document says "result": null (Python's AsyncResult.result is None).
    assert.equal(snap.result, null, `Celeriac read ${String(snap.result)} from a RETRY document whose result is null`);
    assert.equal((await r.get(T)).retries, 1);
  });

  test('a task the Python worker does not know: get() rejects with NotRegistered', async () => {
    const r = await app.sendTask('tasks.does_not_exist', [1]);
    const err = await rejection(r.get(T));
    assert.equal(err.name, 'NotRegistered');
    assert.deepEqual(err.excArgs, ['tasks.does_not_exist']);
  });
});

test('afterwards the broker holds nothing: queue empty, no unacked entries', { skip: skip ?? false }, async () => {
  await assertBrokerDrained(env.INTEROP_BROKER_URL);
});
