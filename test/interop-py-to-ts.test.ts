/**
 * Python producer → Celeriac worker, on one real redis-server.
 *
 * A Python Celery 5.2 process (test/python/producer.py) sends tasks with
 * `delay` / `apply_async` / `send_task` and waits with `AsyncResult.get()`; a
 * `celeriac worker` process (the CLI, test/apps/interop-app.ts) runs them. Every
 * assertion is on what the Python side printed.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { assertBrokerDrained, interopEnv, pythonCeleryMissing, runPythonProducer, startCeleriacWorker, type InteropEnv, type PeerProcess } from './helpers/python-celery.ts';
import { missing, REDIS_SERVER, startRedis, type RedisServer } from './helpers/services.ts';

const skip = missing(REDIS_SERVER, 'apt-get install redis-server') ?? pythonCeleryMissing();

let redis: RedisServer | undefined;
let worker: PeerProcess | undefined;
let env: InteropEnv;

before(async () => {
  if (skip) return;
  redis = await startRedis();
  env = interopEnv(redis);
  worker = await startCeleriacWorker({ app: 'test/apps/interop-app.ts', env, concurrency: 8, hostname: 'ts@py-to-ts' });
});

after(async () => {
  await worker?.stop();
  await redis?.stop();
});

/** What producer.py prints for one `get()`. */
interface Outcome<V = unknown> {
  id: string;
  value?: V;
  raised?: { type: string; module: string; args: unknown[]; str: string; is_TypeError: boolean; is_builtin_class: boolean };
  state: string;
  traceback: string | null;
}

const py = <T = Outcome>(name: string, args: string[] = []) => runPythonProducer<T>(name, env, args);
const workerLog = () => worker?.output().slice(-3000) ?? '';

describe('Python producer, Celeriac worker (CLI process)', { skip: skip ?? false, concurrency: true }, () => {
  test('delay(2, 3): Python get() returns 5', async () => {
    const out = await py('delay_args');
    assert.equal(out.raised, undefined, `Python get() raised: ${JSON.stringify(out.raised)}\n${workerLog()}`);
    assert.equal(out.value, 5);
    assert.equal(out.state, 'SUCCESS');
  });

  test('send_task by name: Python get() returns 42', async () => {
    const out = await py('send_task');
    assert.equal(out.value, 42, JSON.stringify(out));
    assert.equal(out.state, 'SUCCESS');
  });

  test('apply_async(kwargs={x, y}) fills positions named by argNames', async () => {
    const out = await py('kwargs_by_name');
    assert.equal(out.raised, undefined, JSON.stringify(out.raised));
    assert.equal(out.value, 9);
  });

  test('apply_async(args, kwargs): the TS task gets both (trailing kwargs and this.kwargs), unicode intact', async () => {
    const out = await py('kwargs_trailing');
    const kwargs = { flag: true, n: [1, 2], name: 'élan' };
    assert.deepEqual(out.value, { args: [1, 'two'], kwargs, contextKwargs: kwargs }, JSON.stringify(out));
  });

  test('kwargs the task does not declare: Python get() raises TypeError naming the task, the keys and the fix (not SUCCESS NaN)', async () => {
    const out = await py('kwargs_undeclared');
    assert.equal(out.value, undefined, `the task ran with dropped kwargs: ${JSON.stringify(out)}`);
    assert.equal(out.state, 'FAILURE');
    assert.equal(out.raised?.type, 'TypeError', JSON.stringify(out.raised));
    assert.equal(out.raised?.is_builtin_class, true);
    assert.match(out.raised?.str ?? '', /^ts\.add_positional\(\) got unexpected keyword arguments 'x', 'y'/);
    assert.match(out.raised?.str ?? '', /argNames: \['x', 'y'\].*trailingKwargs: true.*acceptKwargs: true/);
  });

  test('acceptKwargs: true: the task reads Python kwargs from this.kwargs', async () => {
    const out = await py('kwargs_accepted');
    assert.deepEqual(out.value, { x: 7, kwargs: { mode: 'fast' } }, JSON.stringify(out));
  });

  test('apply_async(countdown=1): runs no earlier than 1 s after sending', async () => {
    const out = await py<Outcome<number> & { sent: number }>('countdown');
    assert.equal(typeof out.value, 'number', JSON.stringify(out));
    const waited = out.value! - out.sent;
    assert.ok(waited >= 0.9, `ran ${waited.toFixed(3)} s after sending; countdown was 1 s`);
    assert.ok(waited < 8, `ran ${waited.toFixed(3)} s after sending; far too late`);
  });

  test('expires in the past: Python get() raises TaskRevokedError("expired"), state REVOKED', async () => {
    const out = await py('expires_past');
    assert.equal(out.value, undefined, `an expired task ran: ${JSON.stringify(out)}`);
    assert.deepEqual(out.raised && { type: out.raised.type, module: out.raised.module, args: out.raised.args }, {
      type: 'TaskRevokedError',
      module: 'celery.exceptions',
      args: ['expired'],
    });
    assert.equal(out.state, 'REVOKED');
  });

  test('expires (2 s) before its countdown (4 s) is over: REVOKED, not run (Celery re-checks expiry before running)', async () => {
    const out = await py('expires_before_eta');
    assert.equal(out.value, undefined, `a task that expired while held for its eta ran anyway: ${JSON.stringify(out)}`);
    assert.equal(out.raised?.type, 'TaskRevokedError', JSON.stringify(out));
    assert.deepEqual(out.raised?.args, ['expired']);
    assert.equal(out.state, 'REVOKED');
  });

  test('link=[add.s(10), collect.s("tagged")]: both callbacks run with the result, are children of the task', async () => {
    const out = await py<Outcome & { callbacks: Outcome[]; callback_ids: string[]; children: string[]; children_kinds: string[]; callback_parent_ids: (string | null)[] }>('link');
    assert.equal(out.value, 4, JSON.stringify(out));
    assert.equal(out.callbacks[0]!.value, 14, `add.s(10) callback: ${JSON.stringify(out.callbacks[0])}`);
    assert.deepEqual(out.callbacks[1]!.value, [4, 'tagged'], `collect.s("tagged") callback: ${JSON.stringify(out.callbacks[1])}`);
    // As Celery 5.2's tracer does it: two or more callbacks go out as one group, the task's one child.
    assert.deepEqual(out.children_kinds, ['GroupResult'], 'Python AsyncResult.children is one GroupResult');
    assert.deepEqual(out.children, [...out.callback_ids].sort(), 'the group holds both callbacks');
    assert.deepEqual(out.callback_parent_ids, [out.id, out.id], 'callbacks carry parent_id = the linked task');
  });

  test('link_error: the TS failure reaches Python as TypeError, and the errback runs with the failed task id', async () => {
    const out = await py<Outcome & { errback: Outcome }>('link_error');
    assert.equal(out.raised?.type, 'TypeError', JSON.stringify(out));
    assert.equal(out.state, 'FAILURE');
    assert.deepEqual(out.errback.value, [out.id, 'errback'], `errback: ${JSON.stringify(out.errback)}`);
  });

  test('a TS TypeError: Python get() raises the real builtins.TypeError with the message', async () => {
    const out = await py('fail');
    const message = 'ts.fail rejected "bad input for ts.fail"';
    assert.deepEqual(out.raised, { type: 'TypeError', module: 'builtins', args: [message], str: message, is_TypeError: true, is_builtin_class: true });
    assert.equal(out.state, 'FAILURE');
    assert.match(out.traceback ?? '', /TypeError: ts\.fail rejected/, 'the JS stack is stored as the traceback');
  });

  test('a custom TS error class: Python get() raises a synthetic exception of that name with the message', async () => {
    const out = await py('fail_custom');
    assert.deepEqual(out.raised && { type: out.raised.type, args: out.raised.args, str: out.raised.str, is_TypeError: out.raised.is_TypeError }, {
      type: 'QuotaExceeded',
      args: ['quota of 42 exceeded'],
      str: 'quota of 42 exceeded',
      is_TypeError: false,
    });
    // No Python module defines the class, so Celery makes one in celery.exceptions.
    assert.equal(out.raised?.module, 'celery.exceptions');
    assert.equal(out.state, 'FAILURE');
  });

  test('a task nobody registered: Python get() raises NotRegistered', async () => {
    const out = await py('not_registered');
    assert.equal(out.raised?.type, 'NotRegistered', JSON.stringify(out));
    assert.equal(out.raised?.module, 'celery.exceptions');
    assert.deepEqual(out.raised?.args, ['ts.does_not_exist']);
    assert.equal(out.state, 'FAILURE');
  });

  type RetryOut = Outcome<{ value: string; retries: number; ranAt: number }> & { elapsed: number; states: string[]; retry_result: unknown };
  let retryCase: Promise<RetryOut> | undefined;
  const retryOut = () => (retryCase ??= py<RetryOut>('retry'));

  test('retry: the TS task retries once (countdown 1 s); Python sees RETRY, then get() returns the value', async () => {
    const out = await retryOut();
    assert.equal(out.raised, undefined, JSON.stringify(out));
    assert.equal(out.value?.value, 'v1');
    assert.equal(out.value?.retries, 1, 'the successful run is the first retry');
    assert.ok(out.elapsed >= 0.9, `finished ${out.elapsed.toFixed(3)} s after sending; the retry countdown was 1 s`);
    assert.ok(out.states.includes('RETRY'), `states seen by Python: ${out.states.join(' → ')}`);
    assert.equal(out.states.at(-1), 'SUCCESS');
  });

  test('retry() without exc: while RETRY, Python reads result None, as from a Celery worker', async () => {
    // Celery 5.2 stores mark_as_retry(id, reason.exc) — null when retry() got no exc.
    const out = await retryOut();
    assert.ok(out.states.includes('RETRY'), `states seen by Python: ${out.states.join(' → ')}`);
    assert.equal(out.retry_result, null, `Python AsyncResult.result during RETRY: ${JSON.stringify(out.retry_result)}`);
  });
});

test('afterwards the broker holds nothing: queue empty, no unacked entries, nothing Celeriac-held; after a warm stop the consumer is retired', { skip: skip ?? false }, async () => {
  await assertBrokerDrained(env.INTEROP_BROKER_URL);
  await worker!.stop();
  await assertBrokerDrained(env.INTEROP_BROKER_URL, { workersStopped: true });
});
