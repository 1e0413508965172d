/**
 * The bulk producer API: `task.delayMany`, `task.applyAsyncMany`, `app.sendMany`
 * and the brokers' `publishMany`. On memory:// and on a real redis-server: every
 * message lands, in order, byte for byte what a single `delay` sends (modulo the
 * ids), in one MULTI/EXEC; and a Python Celery 5.2 worker runs them.
 */
import assert from 'node:assert/strict';
import { after, before, beforeEach, describe, test } from 'node:test';
import { Redis } from 'ioredis';
import { createApp, type AsyncResult } from '../packages/core/src/index.ts';
import type { Consumer, Delivery } from '../packages/core/src/brokers/broker.ts';
import { assertBrokerDrained, interopEnv, pythonCeleryMissing, startPythonWorker, type PeerProcess } from './helpers/python-celery.ts';
import { missing, REDIS_SERVER, startRedis, type RedisServer } from './helpers/services.ts';

/** Headers/properties of a message with its own ids replaced, for comparing two sends. */
function withoutIds(d: Delivery, id: string): string {
  const m = d.message!;
  return JSON.stringify({ headers: m.headers, properties: m.properties, body: m.body.toString('base64'), type: m.contentType }).replaceAll(id, '<id>');
}

describe('bulk send on memory://', () => {
  const app = createApp('bulk-mem', { brokerUrl: 'memory://bulk-send' });
  const add = app.task('bulk.add', (x: number, y: number) => x + y);
  const greet = app.task('bulk.greet', (name: string, opts: { loud?: boolean }) => `${opts.loud ? 'HI' : 'hi'} ${name}`, { trailingKwargs: true });
  let consumer: Consumer | undefined;
  const take = async (max = 10_000): Promise<Delivery[]> => {
    consumer ??= await (await app.getBroker()).openConsumer(['celery', 'other'], { autoUpkeep: false });
    const got = await consumer.reserve({ max, timeoutMs: 0 });
    await consumer.ack(got);
    return got;
  };

  beforeEach(async () => {
    await take(); // empty the queues between tests
  });
  after(async () => {
    await consumer?.close();
    await app.close();
  });

  test('delayMany: one message per argument list, in order, each what delay() sends', async () => {
    const single = await add.delay(7, 8);
    const [one] = await take();
    const results = await add.delayMany(Array.from({ length: 300 }, (_, i) => [i, i] as [number, number]).concat([[7, 8]]));
    assert.equal(results.length, 301);
    const got = await take();
    assert.deepEqual(
      got.map((d) => d.message!.headers.id),
      results.map((r) => r.id),
      'queued in the order given, ids as returned',
    );
    assert.equal(new Set(results.map((r) => r.id)).size, 301, 'every message has its own id');
    assert.deepEqual(got.slice(0, 3).map((d) => d.message!.headers.argsrepr), ['(0, 0)', '(1, 1)', '(2, 2)']);
    assert.equal(got[300]!.message!.headers.root_id, results[300]!.id);
    assert.equal(got[300]!.message!.properties.correlation_id, results[300]!.id);
    assert.equal(withoutIds(got[300]!, results[300]!.id), withoutIds(one!, single.id));
  });

  test('applyAsyncMany: kwargs, shared and per-call options; trailing kwargs split like applyAsync', async () => {
    const results = await greet.applyAsyncMany(
      [{ args: ['ann', {}] }, { args: ['bob', { loud: true }], options: { queue: 'other', taskId: 'fixed-id' } }, { args: ['cy', {}], kwargs: { loud: false } }],
      { priority: 5 },
    );
    assert.equal(results[1]!.id, 'fixed-id');
    const got = await take();
    const byId = new Map(got.map((d) => [d.message!.headers.id, d]));
    assert.equal(byId.get('fixed-id')!.queue, 'other');
    assert.equal(byId.get(results[0]!.id)!.queue, 'celery');
    assert.deepEqual(
      results.map((r) => byId.get(r.id)!.message!.headers.kwargsrepr),
      ['{}', "{'loud': True}", "{'loud': False}"],
    );
    assert.ok(got.every((d) => d.message!.properties.priority === 5));
  });

  test('sendMany: several task names in one batch; a bad item rejects before anything is sent', async () => {
    const results = await app.sendMany<unknown>([
      { name: 'bulk.add', args: [1, 2] },
      { name: 'py.only', kwargs: { x: 1 } },
    ]);
    assert.deepEqual((await take()).map((d) => [d.message!.headers.task, d.message!.headers.id]), [
      ['bulk.add', results[0]!.id],
      ['py.only', results[1]!.id],
    ]);
    await assert.rejects(
      app.sendMany([{ name: 'bulk.add', args: [1, 2] }, { name: 'bulk.add', options: { countdown: Number.NaN } }]),
      /countdown must be a finite number of seconds, got NaN/,
    );
    await assert.rejects(app.sendMany([{ name: '' }]), /item 0 must be an object with a task name/);
    await assert.rejects(add.delayMany([5 as unknown as [number, number]]), /bulk\.add\.delayMany\(\) item 0 must be an argument list/);
    assert.deepEqual(await take(), [], 'nothing of the rejected batches was sent');
    assert.deepEqual(await app.sendMany([]), []);
  });

  test('types: delayMany and applyAsyncMany check arguments like delay', async () => {
    const typed: AsyncResult<number>[] = await add.delayMany([[1, 2]]);
    assert.equal(typed.length, 1);
    // @ts-expect-error a string is not a number
    await add.delayMany([['1', 2]]).catch(() => undefined);
    // @ts-expect-error applyAsyncMany args are typed too
    await add.applyAsyncMany([{ args: [1] }]).catch(() => undefined);
    await take();
  });
});

const skipRedis = missing(REDIS_SERVER, 'apt-get install redis-server');

describe('bulk send on Redis', { skip: skipRedis ?? false }, () => {
  let server: RedisServer;
  let raw: Redis;
  const app = createApp('bulk-redis');
  const add = app.task('tasks.add', (x: number, y: number) => x + y);

  before(async () => {
    server = await startRedis();
    raw = new Redis(server.url(0));
    app.configure({ brokerUrl: server.url(0), resultBackend: server.url(1) });
  });
  after(async () => {
    await app.close();
    raw?.disconnect();
    await server?.stop();
  });

  test('delayMany of 2,500: one MULTI/EXEC, LPUSH in chunks of 1,000, consumed in order, envelopes byte-identical to delay()', async () => {
    await raw.flushall();
    const single = await add.delay(7, 8);
    const [singleEnvelope] = await raw.lrange('celery', 0, 0);
    await raw.del('celery');
    await raw.config('RESETSTAT');
    const n = 2500;
    const results = await add.delayMany(Array.from({ length: n }, (_, i) => (i === n - 1 ? [7, 8] : [i, i]) as [number, number]));
    const stats = await raw.info('commandstats');
    const calls = (cmd: string) => Number(new RegExp(`^cmdstat_${cmd}:calls=(\\d+)`, 'm').exec(stats)?.[1] ?? 0);
    assert.deepEqual({ multi: calls('multi'), exec: calls('exec'), lpush: calls('lpush') }, { multi: 1, exec: 1, lpush: 3 });

    assert.equal(await raw.llen('celery'), n);
    // Consumers take from the right: the rightmost element is the first to run.
    const envelopes = (await raw.lrange('celery', 0, -1)).reverse();
    const docs = envelopes.map((e) => JSON.parse(e) as { headers: { id: string; root_id: string }; properties: { correlation_id: string; delivery_tag: string } });
    assert.deepEqual(
      docs.map((d) => d.headers.id),
      results.map((r) => r.id),
    );
    assert.ok(docs.every((d, i) => d.headers.root_id === results[i]!.id && d.properties.correlation_id === results[i]!.id));
    assert.equal(new Set(docs.map((d) => d.properties.delivery_tag)).size, n, 'every envelope has its own delivery tag');

    const normalize = (envelope: string, id: string) => {
      const tag = (JSON.parse(envelope) as { properties: { delivery_tag: string } }).properties.delivery_tag;
      return envelope.replaceAll(id, '<id>').replace(tag, '<tag>');
    };
    assert.equal(normalize(envelopes[n - 1]!, results[n - 1]!.id), normalize(singleEnvelope!, single.id));
  });

  test('delayMany of 1,000 to one queue: one LPUSH, no MULTI/EXEC, same envelopes as delay()', async () => {
    await raw.flushall();
    const single = await add.delay(7, 8);
    const [singleEnvelope] = await raw.lrange('celery', 0, 0);
    await raw.del('celery');
    await raw.config('RESETSTAT');
    const results = await add.delayMany(Array.from({ length: 1000 }, (_, i) => (i === 0 ? [7, 8] : [i, i]) as [number, number]));
    const stats = await raw.info('commandstats');
    const calls = (cmd: string) => Number(new RegExp(`^cmdstat_${cmd}:calls=(\\d+)`, 'm').exec(stats)?.[1] ?? 0);
    assert.deepEqual({ multi: calls('multi'), exec: calls('exec'), lpush: calls('lpush') }, { multi: 0, exec: 0, lpush: 1 });
    const envelopes = (await raw.lrange('celery', 0, -1)).reverse();
    assert.deepEqual(
      envelopes.map((e) => (JSON.parse(e) as { headers: { id: string } }).headers.id),
      results.map((r) => r.id),
    );
    const normalize = (envelope: string, id: string) => {
      const tag = (JSON.parse(envelope) as { properties: { delivery_tag: string } }).properties.delivery_tag;
      return envelope.replaceAll(id, '<id>').replace(tag, '<tag>');
    };
    assert.equal(normalize(envelopes[0]!, results[0]!.id), normalize(singleEnvelope!, single.id));
  });

  test('publishMany declares the queue binding once and routes priorities to kombu lists', async () => {
    await raw.flushall();
    const fresh = createApp('bulk-redis-fresh', { brokerUrl: server.url(0) });
    try {
      await fresh.sendMany([
        { name: 'tasks.add', args: [1, 1] },
        { name: 'tasks.add', args: [2, 2], options: { priority: 9 } },
        { name: 'tasks.add', args: [3, 3], options: { queue: 'q2' } },
      ]);
      assert.deepEqual(await raw.smembers('_kombu.binding.celery'), ['celery\x06\x16\x06\x16celery']);
      assert.deepEqual(await raw.smembers('_kombu.binding.q2'), ['q2\x06\x16\x06\x16q2']);
      assert.deepEqual([await raw.llen('celery'), await raw.llen('celery\x06\x169'), await raw.llen('q2')], [1, 1, 1]);
    } finally {
      await fresh.close();
    }
  });
});

const skipPython = skipRedis ?? pythonCeleryMissing();

describe('bulk send to a Python Celery worker', { skip: skipPython ?? false }, () => {
  let server: RedisServer;
  let worker: PeerProcess | undefined;
  const app = createApp('bulk-py');
  const add = app.task('tasks.add', (_x: number, _y: number): number => {
    throw new Error('runs on the Python worker');
  });

  before(async () => {
    server = await startRedis();
    const env = interopEnv(server);
    app.configure({ brokerUrl: env.INTEROP_BROKER_URL, resultBackend: env.INTEROP_BACKEND_URL });
    worker = await startPythonWorker({ env, hostname: 'py@bulk' });
  });
  after(async () => {
    await app.close();
    await worker?.stop();
    await server?.stop();
  });

  test('Python runs every message of a delayMany and an applyAsyncMany batch', async () => {
    const a = await add.delayMany(Array.from({ length: 100 }, (_, i) => [i, 1] as [number, number]));
    const b = await add.applyAsyncMany([{ kwargs: { x: 2, y: 3 } }, { args: [4, 5], options: { priority: 9 } }]);
    const values = await Promise.all([...a, ...b].map((r) => r.get({ timeout: 20_000 })));
    assert.deepEqual(values, [...Array.from({ length: 100 }, (_, i) => i + 1), 5, 9], worker?.output().slice(-3000));
    await assertBrokerDrained(server.url(0));
  });
});
