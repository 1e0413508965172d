/** Redis result backend against a real redis-server: Celery's bytes, duplicate protection, pub/sub waits. */
import assert from 'node:assert/strict';
import { after, before, beforeEach, describe, test } from 'node:test';
import { Redis } from 'ioredis';
import type { ResultDocument } from '../packages/core/src/backends/backend.ts';
import { RedisBackend } from '../packages/core/src/backends/redis.ts';
import { TimeoutError } from '../packages/core/src/errors.ts';
import { dumpsPython, loadsPython } from '../packages/core/src/protocol/python-json.ts';
import { fixture, fixtureNames } from './helpers/fixtures.ts';
import { missing, REDIS_SERVER, startRedis, type RedisServer } from './helpers/services.ts';

const skip = missing(REDIS_SERVER, 'apt-get install redis-server');
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Poll `check` until it holds; fail naming `what` after `timeoutMs`. */
async function waitFor(what: string, check: () => boolean | Promise<boolean>, timeoutMs = 3000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for: ${what}`);
    await sleep(10);
  }
}

function doc(taskId: string, status: string, result: unknown = null): ResultDocument {
  const ready = status === 'SUCCESS' || status === 'FAILURE' || status === 'REVOKED';
  return { status, result, traceback: null, children: [], date_done: ready ? '2026-11-23T06:45:47.671937' : null, task_id: taskId };
}

describe('RedisBackend', { skip: skip ?? false }, () => {
  let server: RedisServer;
  let raw: Redis;
  let backend: RedisBackend;
  const calls = async (cmd: string) => Number(new RegExp(`cmdstat_${cmd}:calls=(\\d+)`).exec(await raw.info('commandstats'))?.[1] ?? 0);

  before(async () => {
    server = await startRedis();
    raw = new Redis(server.url(1));
    backend = new RedisBackend(server.url(1));
  });
  after(async () => {
    await backend.close();
    await raw.quit();
    await server.stop();
  });
  beforeEach(async () => {
    await raw.flushall();
  });

  test('documents are byte-identical to Celery\'s, SETEX with result_expires and PUBLISHed on the key', async () => {
    const listener = new Redis(server.url(1));
    const published: string[] = [];
    after(() => listener.disconnect());
    await listener.psubscribe('celery-task-meta-*');
    listener.on('pmessage', (_p: string, _c: string, message: string) => published.push(message));
    const documents = fixtureNames('results-redis')
      .map((name) => ({ name, fx: fixture<{ key?: string; raw?: string }>(`results-redis/${name}`) }))
      .filter(({ fx }) => fx.key?.startsWith('celery-task-meta-'));
    assert.ok(documents.length >= 20, `only ${documents.length} result documents among the captures`);
    for (const { name, fx } of documents) {
      assert.equal(typeof fx.raw, 'string', `${name}: capture without raw bytes`);
      const parsed = loadsPython(fx.raw!) as ResultDocument;
      assert.equal(dumpsPython(parsed), fx.raw, `${name}: re-encoded bytes differ from Celery's`);
      await backend.storeResult(parsed);
      assert.equal(await raw.get(fx.key!), fx.raw, name);
      const ttl = await raw.ttl(fx.key!);
      assert.ok(ttl > 86_390 && ttl <= 86_400, `${name}: ttl ${ttl}`);
    }
    await waitFor(`${documents.length} PUBLISHes`, () => published.length >= documents.length);
    assert.deepEqual(published, documents.map(({ fx }) => fx.raw), 'each document published once, with the stored bytes, in order');
  });

  test('resultExpires 0 stores without expiry', async () => {
    const forever = new RedisBackend(server.url(1), { resultExpires: 0 });
    await forever.storeResult(doc('t-forever', 'SUCCESS', 1));
    assert.equal(await raw.ttl('celery-task-meta-t-forever'), -1);
    await forever.close();
  });

  test('a stored SUCCESS is never overwritten (Celery and compact JSON alike); other states are', async () => {
    await backend.storeResult(doc('t1', 'STARTED', { pid: 1, hostname: 'w' }));
    await backend.storeResult(doc('t1', 'SUCCESS', 4));
    await backend.storeResult(doc('t1', 'FAILURE', { exc_type: 'X', exc_message: [], exc_module: 'builtins' }));
    assert.equal((await backend.getResult('t1'))!.status, 'SUCCESS');
    assert.equal((await backend.getResult('t1'))!.result, 4);
    await raw.set('celery-task-meta-t2', '{"task_id":"t2","result":1,"status":"SUCCESS"}');
    await backend.storeResult(doc('t2', 'RETRY'));
    assert.equal(await raw.get('celery-task-meta-t2'), '{"task_id":"t2","result":1,"status":"SUCCESS"}');
  });

  test('storeResults writes a batch in one round trip', async () => {
    const docs = Array.from({ length: 200 }, (_, i) => doc(`b${i}`, 'SUCCESS', i));
    await backend.storeResults(docs);
    const got = await Promise.all(docs.map((d) => backend.getResult(d.task_id)));
    assert.deepEqual(got.map((d) => d!.result), docs.map((d) => d.result));
  });

  test('a batch write keeps a stored SUCCESS (also one written earlier in the same batch), publishes only what it wrote, and honours resultExpires 0', async () => {
    const listener = new Redis(server.url(1));
    after(() => listener.disconnect());
    const published: string[] = [];
    await listener.subscribe('celery-task-meta-k1', 'celery-task-meta-k2', 'celery-task-meta-k3');
    listener.on('message', (_c: string, message: string) => published.push(message));
    await raw.set('celery-task-meta-k2', '{"task_id":"k2","result":1,"status":"SUCCESS"}');
    const forever = new RedisBackend(server.url(1), { resultExpires: 0 });
    after(() => forever.close());
    const docs = [doc('k1', 'SUCCESS', 1), doc('k1', 'FAILURE', { exc_type: 'X', exc_message: [], exc_module: 'builtins' }), doc('k2', 'RETRY'), doc('k3', 'STARTED')].map((d) => forever.encodeResult(d));
    assert.deepEqual(await forever.storeEncoded(docs), [null, null, null, null]);
    assert.equal((await forever.getResult('k1'))!.status, 'SUCCESS');
    assert.equal(await raw.get('celery-task-meta-k2'), '{"task_id":"k2","result":1,"status":"SUCCESS"}');
    assert.equal((await forever.getResult('k3'))!.status, 'STARTED');
    assert.deepEqual([await raw.ttl('celery-task-meta-k1'), await raw.ttl('celery-task-meta-k2'), await raw.ttl('celery-task-meta-k3')], [-1, -1, -1]);
    await waitFor('2 PUBLISHes', () => published.length >= 2);
    assert.deepEqual(published, [docs[0]!.payload, docs[3]!.payload], 'only the written documents are published');
  });

  test('storeEncoded reports a write Redis refuses for one document without failing the others', async () => {
    await raw.rpush('celery-task-meta-wrongtype', 'a list, not a result'); // GET in the script fails: WRONGTYPE
    const docs = ['ok1', 'wrongtype', 'ok2'].map((id) => backend.encodeResult(doc(id, 'SUCCESS', id)));
    const outcome = await backend.storeEncoded(docs);
    assert.equal(outcome.length, 3);
    assert.equal(outcome[0], null);
    assert.match(String(outcome[1]?.message), /WRONGTYPE/);
    assert.equal(outcome[2], null);
    assert.equal((await backend.getResult('ok1'))?.result, 'ok1');
    assert.equal((await backend.getResult('ok2'))?.result, 'ok2');
  });

  test('getResult: null when missing, a clear error for garbage', async () => {
    assert.equal(await backend.getResult('nope'), null);
    await raw.set('celery-task-meta-bad', '{oops');
    await assert.rejects(backend.getResult('bad'), /task bad is not valid JSON/);
  });

  test('waitForResult wakes on a PUBLISH from another connection, with a single GET and no polling', async () => {
    const getsBefore = await calls('get');
    let settled = false;
    const waiting = backend.waitForResult('w1', { timeoutMs: 5000 }).finally(() => (settled = true));
    await waitFor('subscribed to w1', async () => (await raw.pubsub('NUMSUB', 'celery-task-meta-w1'))[1] === 1);
    await raw.publish('celery-task-meta-w1', dumpsPython(doc('w1', 'STARTED'))); // not ready: keep waiting
    await sleep(300); // idle time: a polling implementation would GET again here
    assert.equal(settled, false, 'resolved on the STARTED message');
    const ready = fixture<{ raw: string }>('results-redis/success_int.json').raw.replace('00000000-0000-4000-8000-000000000101', 'w1');
    const publishedAt = Date.now();
    await raw.set('celery-task-meta-w1', ready);
    await raw.publish('celery-task-meta-w1', ready);
    const got = await waiting;
    assert.equal(got.status, 'SUCCESS');
    assert.equal(got.result, 4);
    assert.ok(Date.now() - publishedAt < 100, `woke ${Date.now() - publishedAt} ms after PUBLISH`);
    assert.equal((await calls('get')) - getsBefore, 1, 'exactly one GET (closing the subscribe race), no polling');
    await waitFor('unsubscribed when no waiter remains', async () => (await raw.pubsub('CHANNELS')).length === 0);
  });

  test('waitForResult resolves at once from a stored ready result', async () => {
    await backend.storeResult(doc('w2', 'FAILURE', { exc_type: 'ValueError', exc_message: ['x'], exc_module: 'builtins' }));
    const got = await backend.waitForResult('w2', { timeoutMs: 1000 });
    assert.equal(got.status, 'FAILURE');
  });

  test('many waiters share one subscriber connection; each gets its own result', async () => {
    const clientsBefore = Number(/connected_clients:(\d+)/.exec(await raw.info('clients'))![1]);
    const ids = Array.from({ length: 50 }, (_, i) => `m${i}`);
    const waits = ids.map((id) => backend.waitForResult(id, { timeoutMs: 5000 }));
    const twice = backend.waitForResult('m7', { timeoutMs: 5000 });
    await waitFor('all 50 channels subscribed', async () => (await raw.pubsub('NUMSUB', ...ids.map((id) => `celery-task-meta-${id}`))).filter((_, i) => i % 2 === 1).every((n) => n === 1));
    assert.equal(Number(/connected_clients:(\d+)/.exec(await raw.info('clients'))![1]) - clientsBefore, 0, 'subscriber already open');
    assert.equal((await raw.pubsub('NUMSUB', 'celery-task-meta-m7'))[1], 1, 'one subscription shared by both waiters on m7');
    await backend.storeResults(ids.map((id, i) => doc(id, 'SUCCESS', i)));
    const results = await Promise.all(waits);
    assert.deepEqual(results.map((r) => r.result), ids.map((_, i) => i));
    assert.equal((await twice).result, 7);
    await waitFor('every channel unsubscribed', async () => (await raw.pubsub('CHANNELS')).length === 0);
  });

  test('waitForResult rejects with TimeoutError naming the task and the timeout', async () => {
    await assert.rejects(backend.waitForResult('slow-task', { timeoutMs: 150 }), (err: unknown) => {
      assert.ok(err instanceof TimeoutError);
      assert.match(err.message, /slow-task/);
      assert.match(err.message, /150 ms/);
      return true;
    });
    await waitFor('unsubscribed after the timeout', async () => (await raw.pubsub('CHANNELS')).length === 0);
  });

  test('forget deletes the stored result', async () => {
    await backend.storeResult(doc('f1', 'SUCCESS', 1));
    await backend.forget('f1');
    assert.equal(await raw.exists('celery-task-meta-f1'), 0);
    assert.equal(await backend.getResult('f1'), null);
  });
});
