/**
 * Tasks that misbehave, on a real Redis broker and result backend: each ends in a
 * clear FAILURE and the worker goes on serving. A non-Error thrown, a result JSON
 * cannot carry (circular, a function), a task that never resolves (under its hard
 * limit: the async pool keeps that slot, the others serve), a task that floods the
 * log (stopped by its soft limit while other tasks still run). (A task allocating
 * until its thread/child dies: test/worker-pools.test.ts.)
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { setImmediate as tick } from 'node:timers/promises';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { createApp, States, Worker, type ExceptionDocument } from '../packages/core/src/index.ts';
import { missing, REDIS_SERVER, startRedis, type RedisServer } from './helpers/services.ts';

const skip = missing(REDIS_SERVER, 'apt-get install redis-server');
let redis: RedisServer;
let worker: Worker;
let logged = 0;
const app = createApp('bad-tasks');
app.task('bad.throw', (kind: string) => {
  const values: Record<string, unknown> = { string: 'a string', number: 42, null: null, undefined: undefined, object: { code: 7 } };
  throw values[kind];
});
app.task('bad.circular', () => {
  const a: Record<string, unknown> = { name: 'a' };
  a.self = a;
  return a;
});
// (A function-valued property is dropped, as JSON.stringify does; a function in a list or at the top cannot be.)
app.task('bad.function', () => ({ callbacks: [() => 1] }));
app.task('bad.never', () => new Promise(() => undefined), { timeLimit: 0.2 });
app.task('bad.flood', async function () {
  for (;;) {
    for (let i = 0; i < 500; i++) app.logger.info({ i }, 'flooding the log');
    this.signal.throwIfAborted();
    await tick();
  }
}, { softTimeLimit: 0.5 });
app.task('bad.ping', () => 'pong');

before(async () => {
  if (skip) return;
  redis = await startRedis();
  app.configure({ brokerUrl: redis.url(0), resultBackend: redis.url(1) });
  const counting = new Writable({
    write(chunk, _e, done) {
      logged += String(chunk).split('\n').length - 1;
      done();
    },
  });
  worker = new Worker(app, { concurrency: 2, logger: pino({ level: 'info' }, counting) });
  await worker.start();
});
after(async () => {
  if (skip) return;
  await worker.stop();
  await app.close();
  await redis.stop();
});

async function failure(name: string, args: unknown[] = []): Promise<ExceptionDocument> {
  const r = await app.sendTask(name, args);
  await assert.rejects(r.get({ timeout: 10_000 }));
  const doc = await (await app.getBackend()).getResult(r.id);
  assert.equal(doc?.status, States.FAILURE);
  return doc!.result as ExceptionDocument;
}

const pong = async () => assert.equal(await (await app.sendTask('bad.ping')).get({ timeout: 10_000 }), 'pong', 'the worker goes on');

test('a thrown non-Error value is a FAILURE that says what was thrown', { skip: skip ?? false }, async () => {
  assert.deepEqual(await failure('bad.throw', ['string']), { exc_type: 'Error', exc_message: ['a string'], exc_module: 'celeriac.js' });
  assert.deepEqual(await failure('bad.throw', ['number']), { exc_type: 'Error', exc_message: ['42'], exc_module: 'celeriac.js' });
  assert.deepEqual(await failure('bad.throw', ['null']), { exc_type: 'Error', exc_message: ['null'], exc_module: 'celeriac.js' });
  assert.deepEqual(await failure('bad.throw', ['undefined']), { exc_type: 'Error', exc_message: ['undefined'], exc_module: 'celeriac.js' });
  assert.deepEqual(await failure('bad.throw', ['object']), { exc_type: 'Error', exc_message: ['{"code":7}'], exc_module: 'celeriac.js' });
  await pong();
});

test('a result JSON cannot carry (circular, a function) is FAILURE EncodeError naming the problem', { skip: skip ?? false }, async () => {
  for (const name of ['bad.circular', 'bad.function']) {
    const exc = await failure(name);
    assert.equal(exc.exc_type, 'EncodeError');
    assert.equal(exc.exc_module, 'kombu.exceptions');
    assert.match(String((exc.exc_message as string[])[0]), name === 'bad.circular' ? /circular reference/ : /function/i);
  }
  await pong();
});

test('a task that never resolves: FAILURE TimeLimitExceeded at its hard limit; the other slot serves on', { skip: skip ?? false }, async () => {
  assert.deepEqual(await failure('bad.never'), { exc_type: 'TimeLimitExceeded', exc_message: [0.2], exc_module: 'billiard.exceptions' });
  await pong();
  assert.equal(worker.stats.active, 0, 'the lifecycle is done with it');
});

test('a task flooding the log is stopped by its soft limit (FAILURE SoftTimeLimitExceeded) while other tasks still run', { skip: skip ?? false }, async () => {
  const before = logged;
  const flood = await app.sendTask('bad.flood');
  const ping = await app.sendTask('bad.ping');
  assert.equal(await ping.get({ timeout: 10_000 }), 'pong', 'served during the flood');
  assert.equal(await flood.state.then((s) => s === States.SUCCESS), false);
  await assert.rejects(flood.get({ timeout: 10_000 }), (err: Error) => err.name === 'SoftTimeLimitExceeded');
  assert.ok(logged - before > 1_000, `the flood was logged (${logged - before} lines)`);
  await pong();
});
