/** Redis transport against a real redis-server: kombu's layout, atomic reserve, restores, deferral. */
import assert from 'node:assert/strict';
import { after, before, beforeEach, describe, test } from 'node:test';
import { Redis } from 'ioredis';
import { RedisBroker } from '../packages/core/src/brokers/redis.ts';
import type { RedisConsumer } from '../packages/core/src/brokers/redis-consumer.ts';
import { ConfigurationError, MessageDecodeError } from '../packages/core/src/errors.ts';
import { buildTaskMessage, decodeTaskMessage } from '../packages/core/src/protocol/task-message.ts';
import { encodeEnvelope } from '../packages/core/src/brokers/redis-envelope.ts';
import { scripts } from '../packages/core/src/brokers/redis-scripts.ts';
import { fixture } from './helpers/fixtures.ts';
import { missing, REDIS_SERVER, startRedis, type RedisServer } from './helpers/services.ts';
import { startReplyCutter } from './helpers/reply-cutter.ts';

const SEP = '\x06\x16';
const skip = missing(REDIS_SERVER, 'apt-get install redis-server');

interface Cmd {
  cmd: string[];
}
const commands = (name: string) => fixture<{ redis_commands: Cmd[] }>(`worker-redis/${name}.json`).redis_commands.map((c) => c.cmd);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
async function waitUntil(check: () => Promise<boolean>, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await sleep(20);
  }
}

function message(id: string, priority = 0) {
  return buildTaskMessage({ taskName: 'tasks.add', taskId: id, args: [1, 2], kwargs: {}, origin: 'gen1@test', replyTo: 'reply', serializer: 'json', priority });
}
const celery = { exchange: '', routingKey: 'celery' };

describe('RedisBroker', { skip: skip ?? false }, () => {
  let server: RedisServer;
  let raw: Redis;
  const brokers: RedisBroker[] = [];
  const broker = (options: Record<string, unknown> = {}) => {
    const b = new RedisBroker(server.url(0), options);
    brokers.push(b);
    return b;
  };
  /** A consumer whose liveness and upkeep the test drives by hand (`beat`, `upkeep`). */
  const consumer = (consumerId: string, queues: string[] = ['celery'], options: Record<string, unknown> = {}): Promise<RedisConsumer> =>
    broker(options).openConsumer(queues, { consumerId, autoUpkeep: false });

  let pub: RedisBroker;
  before(async () => {
    server = await startRedis();
    raw = new Redis(server.url(0));
    pub = broker();
  });
  after(async () => {
    await Promise.all(brokers.map((b) => b.close().catch(() => undefined)));
    await raw.quit();
    await server.stop();
  });
  beforeEach(async () => {
    await raw.flushall();
  });

  test('publish declares like kombu, reserve records unacked, ack leaves nothing behind', async () => {
    const b = await consumer('A');
    await pub.publish(message('m1'), celery);
    assert.deepEqual(await raw.smembers('_kombu.binding.celery'), [`celery${SEP}${SEP}celery`]);
    assert.equal(await raw.llen('celery'), 1);
    const [d, ...rest] = await b.reserve({ max: 10, timeoutMs: 0 });
    assert.equal(rest.length, 0);
    assert.equal(d!.message!.headers.id, 'm1');
    assert.deepEqual([d!.queue, d!.exchange, d!.routingKey, d!.redelivered], ['celery', '', 'celery', false]);
    assert.equal(await raw.hexists('unacked', d!.deliveryTag), 1);
    assert.deepEqual(await raw.smembers('_celeriac.owned.A'), [`${d!.lease}${SEP}${d!.deliveryTag}`], 'held under its lease');
    await b.ack([d!]);
    assert.deepEqual([await raw.hlen('unacked'), await raw.zcard('unacked_index'), await raw.scard('_celeriac.owned.A')], [0, 0, 0]);
    assert.equal(await raw.llen('celery'), 0);
  });

  test('reserve takes priority 0 first, then buckets 3, 6, 9, FIFO within a bucket', async () => {
    const b = await consumer('A');
    const order: [string, number][] = [['p9', 9], ['a0', 0], ['p5', 5], ['p3', 3], ['b0', 0], ['p7', 7], ['p2', 2]];
    for (const [id, p] of order) await pub.publish(message(id, p), celery);
    assert.equal(await raw.llen(`celery${SEP}3`), 2);
    assert.equal(await raw.llen(`celery${SEP}9`), 1);
    assert.equal(await pub.queueLength('celery'), 7);
    const got = await b.reserve({ max: 10, timeoutMs: 0 });
    assert.deepEqual(got.map((d) => d.message!.headers.id), ['a0', 'b0', 'p2', 'p5', 'p3', 'p7', 'p9']);
    const partial = await (async () => {
      for (const [id, p] of order) await pub.publish(message(id, p), celery);
      return b.reserve({ max: 3, timeoutMs: 0 });
    })();
    assert.deepEqual(partial.map((d) => d.message!.headers.id), ['a0', 'b0', 'p2']);
    assert.equal(await pub.queueLength('celery'), 4);
  });

  test('reserve blocks without polling and wakes within 100 ms of an LPUSH', async () => {
    const b = await consumer('A');
    const raw01 = fixture<{ messages: { raw: string }[] }>('producer-redis/01_delay.json').messages[0]!.raw;
    await b.reserve({ max: 1, timeoutMs: 0 }); // warm up connection + scripts
    const calls = async (cmd: string) => Number(new RegExp(`cmdstat_${cmd}:calls=(\\d+)`).exec(await raw.info('commandstats'))?.[1] ?? 0);
    const before = { evalsha: await calls('evalsha'), blmove: await calls('blmove') };
    let pushedAt = 0;
    setTimeout(() => void raw.lpush('celery', raw01).then(() => void 0), 500);
    setTimeout(() => (pushedAt = Date.now()), 500);
    const started = Date.now();
    const got = await b.reserve({ max: 5, timeoutMs: 5000 });
    const done = Date.now();
    assert.equal(got.length, 1);
    assert.ok(done - started >= 450, `resolved after ${done - started} ms, before the push`);
    assert.ok(done - pushedAt < 100, `woke ${done - pushedAt} ms after the LPUSH`);
    assert.equal((await calls('evalsha')) - before.evalsha, 2, 'one take before blocking, one after the wake-up');
    assert.equal((await calls('blmove')) - before.blmove, 4, 'one blocking wake-up per priority list, no polling');
    assert.deepEqual(await raw.keys('_celeriac.inflight.*'), [], 'waiting never moves a message out of its queue');
    assert.equal(await raw.hlen('unacked'), 1);
  });

  test('with several queues, a message on a non-watched list is seen within the poll interval', async () => {
    const b = await consumer('A', ['a', 'b']);
    setTimeout(() => void pub.publish(message('on-b'), { exchange: '', routingKey: 'b' }), 300);
    const started = Date.now();
    const got = await b.reserve({ max: 1, timeoutMs: 5000 });
    assert.equal(got[0]!.message!.headers.id, 'on-b');
    assert.equal(got[0]!.queue, 'b');
    assert.ok(Date.now() - started < 300 + 400, `took ${Date.now() - started} ms`);
  });

  /** Arm the watchers (their connections come up during a first, empty wait), take one message, and leave the lists empty. */
  async function armedIdle(b: RedisConsumer): Promise<void> {
    assert.deepEqual(await b.reserve({ max: 1, timeoutMs: 200 }), []);
    await pub.publish(message('warm'), celery);
    const warm = await b.reserve({ max: 1, timeoutMs: 0 });
    assert.equal(warm.length, 1);
    await b.ack(warm);
  }
  /** Connections whose last command was EVALSHA (CLIENT LIST). */
  const lastRanEvalsha = async () => String(await raw.client('LIST')).split('\n').filter((line) => / cmd=evalsha /.test(line)).length;
  const calls = async (cmd: string) => Number(new RegExp(`cmdstat_${cmd}:calls=(\\d+)`).exec(await raw.info('commandstats'))?.[1] ?? 0);

  test('on an idle queue the reserve rides behind the wait: Redis runs it when a message lands, with no reserve round trip after the wake-up', async () => {
    const b = await consumer('A');
    await b.beat(); // the queued reserve only takes for a consumer whose heartbeat is current
    await armedIdle(b);
    const before = await calls('evalsha');
    const evalshaLast = await lastRanEvalsha();
    setTimeout(() => void pub.publish(message('idle-1'), celery), 300);
    const got = await b.reserve({ max: 5, timeoutMs: 5000 });
    assert.deepEqual(got.map((d) => d.message!.headers.id), ['idle-1']);
    assert.equal((await calls('evalsha')) - before, 2, 'one take before blocking, one queued behind the wait; none after the wake-up');
    assert.equal((await lastRanEvalsha()) - evalshaLast, 1, "the watcher connection's last command is now the reserve (it was BLMOVE)");
    assert.deepEqual(await raw.smembers('_celeriac.owned.A'), [`${got[0]!.lease}${SEP}${got[0]!.deliveryTag}`], 'held under its lease like any reservation');
    await b.ack(got);
    assert.equal(await raw.hlen('unacked'), 0);
  });

  test("a queued reserve takes nothing for a consumer whose heartbeat is not current (Redis runs it even while its worker is frozen): the wake-up reserves instead", async () => {
    const b = await consumer('A'); // never beats
    await armedIdle(b);
    const before = await calls('evalsha');
    setTimeout(() => void pub.publish(message('idle-2'), celery), 300);
    const got = await b.reserve({ max: 5, timeoutMs: 5000 });
    assert.deepEqual(got.map((d) => d.message!.headers.id), ['idle-2']);
    assert.equal((await calls('evalsha')) - before, 3, 'take before blocking, queued (took nothing), take after the wake-up');
  });

  test('a queued reserve that took a message nobody asked for yet gives it back at close untouched (no redelivery counted)', async () => {
    const b = await consumer('A');
    await b.beat();
    await armedIdle(b);
    assert.deepEqual(await b.reserve({ max: 5, timeoutMs: 200 }), [], 'times out with the reserve queued behind the wait');
    await pub.publish(message('late'), celery);
    await waitUntil(async () => (await raw.scard('_celeriac.owned.A')) === 1); // Redis ran the queued reserve
    await b.close();
    assert.equal(await raw.llen('celery'), 1, 'back in its queue');
    assert.deepEqual([await raw.hlen('unacked'), await raw.hlen('_celeriac.redeliveries')], [0, 0], 'given back, not counted as lost');
  });

  test('a wake-up connection dropped while blocked (its client does not resend): the watcher re-arms and the next message is reserved at once', async () => {
    const b = await consumer('A');
    await b.beat();
    await armedIdle(b);
    assert.deepEqual(await b.reserve({ max: 5, timeoutMs: 200 }), [], 'blocked, with a reserve queued behind the wait');
    const blocked = String(await raw.client('LIST')).split('\n').find((line) => / cmd=blmove /.test(line));
    assert.ok(blocked, 'a connection blocked in BLMOVE');
    await raw.client('KILL', 'ID', /\bid=(\d+)/.exec(blocked)![1]!);
    setTimeout(() => void pub.publish(message('after-drop'), celery), 300);
    const started = Date.now();
    const got = await b.reserve({ max: 5, timeoutMs: 5000 });
    assert.deepEqual(got.map((d) => d.message!.headers.id), ['after-drop']);
    assert.ok(Date.now() - started < 2000, `reserved after ${Date.now() - started} ms (a wait left on the dropped connection lasts the whole timeout)`);
    await b.ack(got);
  });

  test('a queued reserve whose reply is lost (Redis ran it, the connection dropped after the wake-up): the reserve does not hang, the message is given back and reserved again', async () => {
    const cutter = await startReplyCutter(server.port);
    try {
      const through = new RedisBroker(`redis://127.0.0.1:${cutter.port}/0`, {});
      brokers.push(through);
      const b = await through.openConsumer(['celery'], { consumerId: 'A', autoUpkeep: false });
      await b.beat();
      await armedIdle(b);
      const cut = cutter.cutAfterReplyTo('BLMOVE');
      setTimeout(() => void pub.publish(message('reply-lost'), celery), 300);
      const deadline = Date.now() + 8000;
      let got: Awaited<ReturnType<typeof b.reserve>> = [];
      while (got.length === 0 && Date.now() < deadline) {
        const reserving = b.reserve({ max: 5, timeoutMs: 1000 });
        got = await Promise.race([reserving, sleep(deadline - Date.now() + 100).then(() => assert.fail('reserve() never returned: the lost reply left it waiting'))]);
      }
      await cut;
      assert.deepEqual(got.map((d) => d.message!.headers.id), ['reply-lost']);
      assert.deepEqual(await raw.hkeys('unacked'), [got[0]!.deliveryTag], 'held once, by this reserve');
      assert.equal(await raw.scard('_celeriac.owned.A'), 1, 'the lost reserve\'s hold was given back');
      await b.ack(got);
    } finally {
      await cutter.close();
    }
  });

  test('restoreLease gives back exactly the messages of one reserve, by its lease prefix', async () => {
    const b = await consumer('A');
    for (const id of ['l1', 'l2']) await pub.publish(message(id), celery);
    const first = await b.reserve({ max: 2, timeoutMs: 0 });
    await pub.publish(message('l3'), celery);
    const second = await b.reserve({ max: 1, timeoutMs: 0 });
    const prefix = first[0]!.lease!.replace(/\d+$/, '');
    assert.ok(first.every((d) => d.lease!.startsWith(prefix)) && !second[0]!.lease!.startsWith(prefix));
    assert.equal(await scripts.restoreLease.run(raw, ['unacked', 'unacked_index', '_celeriac.owned.A'], [prefix, 'celery']), 2);
    assert.equal(await raw.llen('celery'), 2);
    assert.deepEqual(await raw.hkeys('unacked'), [second[0]!.deliveryTag], 'the other reserve is untouched');
    assert.deepEqual(await raw.smembers('_celeriac.owned.A'), [`${second[0]!.lease}${SEP}${second[0]!.deliveryTag}`]);
    const again = await b.reserve({ max: 2, timeoutMs: 0 });
    assert.deepEqual(again.map((d) => [d.message!.headers.id, d.redelivered]).sort(), [['l1', true], ['l2', true]]);
  });

  test('a blocked reserve wakes on a priority list of an idle queue at once (every priority list is watched)', async () => {
    const b = await consumer('A');
    await b.reserve({ max: 1, timeoutMs: 0 }); // warm up connection + scripts
    let pushedAt = 0;
    setTimeout(() => {
      pushedAt = Date.now();
      void raw.lpush(`celery${SEP}9`, encodeEnvelope(message('urgent', 9), { ...celery, priority: 9 }));
    }, 300);
    const got = await b.reserve({ max: 1, timeoutMs: 5000 });
    const wokeAfter = Date.now() - pushedAt;
    assert.equal(got[0]?.message?.headers.id, 'urgent');
    // Before: only the bare list was watched, so this waited out the whole 5 s block.
    assert.ok(pushedAt > 0 && wokeAfter < 250, `woke ${wokeAfter} ms after the LPUSH to the priority-9 list`);
  });

  test('reserve writes exactly kombu\'s unacked entry (fixture w01: LPUSH by Python, HSET by the worker)', async () => {
    const b = await consumer('A');
    const w01 = commands('w01_success_int');
    const lpushed = w01.find((c) => c[0] === 'LPUSH')![2]!;
    const hset = w01.find((c) => c[0] === 'HSET')!;
    await raw.lpush('celery', lpushed);
    const t0 = Date.now() / 1000;
    const [d] = await b.reserve({ max: 1, timeoutMs: 0 });
    assert.equal(d!.deliveryTag, hset[2]);
    assert.equal(await raw.hget('unacked', hset[2]!), hset[3]);
    const score = Number(await raw.zscore('unacked_index', hset[2]!));
    assert.ok(Math.abs(score - t0) < 2 && !Number.isInteger(score), `unacked_index score ${score}`);
    const task = decodeTaskMessage(d!.message!, ['json']);
    assert.deepEqual([task.name, task.args], ['tasks.add', [2, 2]]);
  });

  test('the same envelope twice in the queue gets two unacked entries, settled independently', async () => {
    const b = await consumer('A');
    const raw02 = fixture<{ messages: { raw: string }[] }>('producer-redis/02_apply_async_task_id.json').messages[0]!.raw;
    await raw.lpush('celery', raw02, raw02);
    const got = await b.reserve({ max: 2, timeoutMs: 0 });
    assert.equal(got.length, 2);
    assert.notEqual(got[0]!.deliveryTag, got[1]!.deliveryTag);
    await b.ack([got[0]!]);
    assert.equal(await raw.hexists('unacked', got[1]!.deliveryTag), 1);
  });

  test('reject with requeue puts the message at the back of the line, marked redelivered', async () => {
    const b = await consumer('A');
    await pub.publish(message('first'), celery);
    await pub.publish(message('second'), celery);
    const [d] = await b.reserve({ max: 1, timeoutMs: 0 });
    assert.equal(d!.message!.headers.id, 'first');
    await b.reject(d!, true);
    assert.equal(await raw.hlen('unacked'), 0);
    assert.equal(await raw.scard('_celeriac.owned.A'), 0);
    const again = await b.reserve({ max: 2, timeoutMs: 0 });
    assert.deepEqual(again.map((x) => [x.message!.headers.id, x.redelivered]), [['second', false], ['first', true]]);
    assert.equal(again[1]!.message!.headers.redelivered, true);
    await b.reject(again[0]!, false);
    assert.equal(await raw.hexists('unacked', again[0]!.deliveryTag), 0);
    assert.equal(await raw.llen('celery'), 0);
  });

  test('deferUntil parks the message in _celeriac.eta; heartbeat promotes it when due, to its priority list', async () => {
    const b = await consumer('A');
    await pub.publish(message('later', 5), celery);
    const [d] = await b.reserve({ max: 1, timeoutMs: 0 });
    await b.defer(d!, new Date(Date.now() + 400));
    assert.deepEqual([await raw.hlen('unacked'), await raw.zcard('unacked_index'), await raw.scard('_celeriac.owned.A')], [0, 0, 0]);
    assert.equal(await raw.zcard('_celeriac.eta'), 1);
    await b.beat(10_000);
    assert.equal(await pub.queueLength('celery'), 0, 'not due yet');
    await sleep(500);
    await b.beat(10_000);
    assert.equal(await raw.zcard('_celeriac.eta'), 0);
    assert.equal(await raw.llen(`celery${SEP}3`), 1);
    const [back] = await b.reserve({ max: 1, timeoutMs: 0 });
    assert.equal(back!.message!.headers.id, 'later');
    assert.equal(back!.deliveryTag, d!.deliveryTag);
  });

  test('two identical messages parked for the same ETA both come back', async () => {
    const b = await consumer('A');
    const envelope = encodeEnvelope(message('twin'), celery, { deliveryTag: 'same-tag' });
    await raw.lpush('celery', envelope, envelope);
    const got = await b.reserve({ max: 2, timeoutMs: 0 });
    assert.equal(got.length, 2);
    const eta = new Date(Date.now() + 200);
    for (const d of got) await b.defer(d, eta);
    assert.equal(await raw.zcard('_celeriac.eta'), 2, 'two parked entries');
    await waitUntil(async () => (await b.upkeep(), (await pub.queueLength('celery')) === 2));
    const back = await b.reserve({ max: 5, timeoutMs: 0 });
    assert.deepEqual(back.map((d) => d.message!.headers.id), ['twin', 'twin']);
    assert.equal(await raw.zcard('_celeriac.eta'), 0);
  });

  test('parking uses the Redis clock: a worker whose clock runs 1 h ahead parks a message due in 10 s for 10 s', async () => {
    const b = await consumer('A');
    await pub.publish(message('skewed'), celery);
    const [d] = await b.reserve({ max: 1, timeoutMs: 0 });
    const realNow = Date.now;
    Date.now = () => realNow() + 3_600_000;
    try {
      await b.defer(d!, new Date(Date.now() + 10_000));
    } finally {
      Date.now = realNow;
    }
    const [seconds, micros] = await raw.time();
    const redisNowMs = Number(seconds) * 1000 + Math.floor(Number(micros) / 1000);
    const [, due] = await raw.zrange('_celeriac.eta', 0, 0, 'WITHSCORES');
    const inMs = Number(due) - redisNowMs;
    assert.ok(inMs > 9_000 && inMs <= 10_000, `due ${inMs} ms from now on the Redis clock`);
  });

  test('a dead consumer\'s messages (owned and inflight) come back after its ttl, marked redelivered', async () => {
    const a = await consumer('dead-A');
    const b = await consumer('live-B');
    await pub.publish(message('held'), celery);
    const [d] = await a.reserve({ max: 1, timeoutMs: 0 });
    await a.beat(300);
    const stray = fixture<{ messages: { raw: string }[] }>('producer-redis/02_apply_async_task_id.json').messages[0]!.raw;
    await raw.lpush('_celeriac.inflight.dead-A', stray); // moved by BLMOVE just before the crash
    await b.beat(10_000);
    assert.equal(await raw.hexists('unacked', d!.deliveryTag), 1, 'A is still alive');
    await sleep(400);
    await b.beat(10_000);
    assert.deepEqual([await raw.hlen('unacked'), await raw.zcard('unacked_index')], [0, 0]);
    assert.equal(await raw.exists('_celeriac.owned.dead-A', '_celeriac.inflight.dead-A'), 0);
    const back = await b.reserve({ max: 5, timeoutMs: 0 });
    const held = back.find((x) => x.message!.headers.id === 'held')!;
    assert.equal(held.redelivered, true);
    assert.equal(held.message!.headers.redelivered, true);
    assert.equal(back.length, 2);
    assert.equal(back.find((x) => x !== held)!.message!.headers.id, '00000000-0000-4000-8000-000000000001');
  });

  test('an oversized message is reserved without its bytes: the reply has its size and task id, and it can be acked away', async () => {
    const c = await broker().openConsumer(['celery'], { consumerId: 'size-check', autoUpkeep: false, maxMessageBytes: 32_768 });
    await pub.publish(message('small'), celery);
    const big = { ...message('big-one') };
    big.body = Buffer.from('x'.repeat(3_000_000));
    await pub.publish(big, celery);
    const sentByRedis = async () => Number(/total_net_output_bytes:(\d+)/.exec(await raw.info('stats'))![1]);
    const before = await sentByRedis();
    const got = await c.reserve({ max: 10, timeoutMs: 0 });
    const sent = (await sentByRedis()) - before;
    assert.ok(sent < 64 * 1024, `Redis sent ${sent} bytes to reserve a 4 MB message over maxMessageBytes`);
    const tooBig = got.find((d) => d.message === null)!;
    const stored = (await raw.hget('unacked', tooBig.deliveryTag))!;
    // kombu's unacked entry is `[<envelope>, "<exchange>", "<routing key>"]`: the size is the envelope's bytes on Redis.
    assert.equal(tooBig.sizeBytes, Buffer.byteLength(stored) - Buffer.byteLength('[, "", "celery"]'));
    assert.ok(tooBig.sizeBytes > 4_000_000, `size ${tooBig.sizeBytes}`);
    assert.equal(tooBig.taskId, 'big-one');
    assert.equal(tooBig.decodeError?.name, 'MessageTooLarge');
    assert.equal(got.find((d) => d.message !== null)!.message!.headers.id, 'small', 'a small one in the same batch is delivered whole');
    await c.ack(got);
    assert.deepEqual([await raw.hlen('unacked'), await raw.llen('celery')], [0, 0]);
  });

  test('a redelivery count left behind by a Python worker\'s ack is swept once old, not while the message is held', async () => {
    const a = await consumer('crashed-A');
    const b = await consumer('live-B');
    await pub.publish(message('counted'), celery);
    const [first] = await a.reserve({ max: 1, timeoutMs: 0 });
    await a.beat(300);
    await sleep(400);
    await b.beat(10_000); // A is dead: its message comes back, counted
    assert.equal(await raw.hget('_celeriac.redeliveries', first!.deliveryTag), '1');
    // B holds it again: an old count of a held message stays (it is read if B dies too).
    const [again] = await b.reserve({ max: 1, timeoutMs: 0 });
    assert.equal(again!.redeliveries, 1);
    assert.equal(await b.sweepRedeliveries(0), 0);
    assert.equal(await raw.hget('_celeriac.redeliveries', again!.deliveryTag), '1');
    // A Python worker acks it the kombu way (what a Python worker that took it after B does): ZREM + HDEL.
    await raw.multi().zrem('unacked_index', again!.deliveryTag).hdel('unacked', again!.deliveryTag).exec();
    assert.equal(await b.sweepRedeliveries(60_000), 0, 'younger than the age: kept');
    assert.equal(await b.sweepRedeliveries(0), 1);
    assert.equal(await raw.exists('_celeriac.redeliveries', '_celeriac.redeliveries.at'), 0, 'nothing left behind');
  });

  test('a Celeriac ack forgets the redelivery count and its time', async () => {
    const a = await consumer('crashed-A2');
    const b = await consumer('live-B2');
    await pub.publish(message('counted2'), celery);
    await a.reserve({ max: 1, timeoutMs: 0 });
    await a.beat(300);
    await sleep(400);
    await b.beat(10_000);
    const [again] = await b.reserve({ max: 1, timeoutMs: 0 });
    assert.equal(await raw.zcard('_celeriac.redeliveries.at'), 1);
    await b.ack([again!]);
    assert.equal(await raw.exists('_celeriac.redeliveries', '_celeriac.redeliveries.at'), 0);
  });

  test('kombu visibility-timeout restore of a Python worker\'s entry is byte-identical to kombu\'s (w28 → w99)', async () => {
    const b = await consumer('B');
    const hset = commands('w28_eta_message_held_unacked').find((c) => c[0] === 'HSET')!;
    const rpush = commands('w99_worker_shutdown').find((c) => c[0] === 'RPUSH')!;
    const old = Date.now() / 1000 - 4000;
    await raw.hset('unacked', hset[2]!, hset[3]!);
    await raw.zadd('unacked_index', old, hset[2]!);
    await raw.set('unacked_mutex', 'python-worker', 'PX', 300000);
    await b.beat(10_000);
    assert.equal(await raw.llen('celery'), 0, 'another worker holds unacked_mutex: no restore');
    await raw.del('unacked_mutex');
    const c = await consumer('C');
    await c.beat(10_000);
    assert.deepEqual(await raw.lrange('celery', 0, -1), [rpush[2]]);
    assert.deepEqual([await raw.hlen('unacked'), await raw.zcard('unacked_index'), await raw.exists('unacked_mutex')], [0, 0, 0]);
  });

  test('a live consumer\'s heartbeat keeps its entries fresh, so visibility restores never steal them', async () => {
    const a = await consumer('A', ['celery'], { visibilityTimeout: 1 });
    await pub.publish(message('long-task'), celery);
    const [d] = await a.reserve({ max: 1, timeoutMs: 0 });
    await sleep(1300);
    await a.beat(10_000); // refreshes first, then (first call) runs the visibility restore
    assert.equal(await raw.hexists('unacked', d!.deliveryTag), 1);
    assert.equal(await raw.llen('celery'), 0);
  });

  test('a malformed envelope comes back as a Delivery with message null, and can be acked away', async () => {
    const b = await consumer('A');
    await raw.lpush('celery', '{"body": "not closed');
    const noTag = fixture<{ raw: string }>('interop/i05_no_delivery_tag.json').raw;
    await raw.lpush('celery', noTag);
    const got = await b.reserve({ max: 5, timeoutMs: 0 });
    assert.equal(got.length, 2);
    for (const d of got) {
      assert.equal(d.message, null);
      assert.ok(d.decodeError instanceof MessageDecodeError);
      assert.ok(d.deliveryTag.length > 10);
      assert.equal(d.queue, 'celery');
      assert.ok(JSON.parse((await raw.hget('unacked', d.deliveryTag))!), 'unacked entry stays valid JSON');
    }
    assert.equal(got[0]!.sizeBytes, Buffer.byteLength('{"body": "not closed'));
    assert.match(got[1]!.decodeError!.message, /delivery_tag/);
    await b.ack(got);
    assert.equal(await raw.hlen('unacked'), 0);
  });

  test('a delivery tag that is not valid UTF-8 is replaced, so the message can be acked', async () => {
    const b = await consumer('A');
    const envelope = Buffer.from(encodeEnvelope(message('bad-tag'), celery, { deliveryTag: 'TAG' }), 'utf8');
    const at = envelope.indexOf('"TAG"');
    const bad = Buffer.concat([envelope.subarray(0, at + 1), Buffer.from([0x61, 0xff, 0xfe, 0x62]), envelope.subarray(at + 4)]);
    await raw.lpush('celery', bad);
    const [d] = await b.reserve({ max: 1, timeoutMs: 0 });
    assert.equal(d!.message!.headers.id, 'bad-tag');
    assert.equal(Buffer.from(d!.deliveryTag, 'utf8').toString('utf8'), d!.deliveryTag);
    assert.equal(await raw.hexists('unacked', d!.deliveryTag), 1, 'the tag handed out is the field in unacked');
    await b.ack([d!]);
    assert.deepEqual([await raw.hlen('unacked'), await raw.zcard('unacked_index')], [0, 0]);
  });

  test('an unparseable message held by a dead consumer is restored unchanged to its queue', async () => {
    const a = await consumer('garbage-holder', ['lopri']);
    await raw.lpush('lopri', 'garbage');
    assert.equal((await a.reserve({ max: 1, timeoutMs: 0 })).length, 1);
    await a.beat(1);
    await sleep(20);
    await (await consumer('garbage-restorer', ['lopri'])).beat(10_000);
    assert.deepEqual(await raw.lrange('lopri', 0, -1), ['garbage'], `unacked: ${JSON.stringify(await raw.hgetall('unacked'))}, keys: ${JSON.stringify(await raw.keys('*'))}`);
  });

  test('restoreUnacked gives messages back at the front; close() restores what is still held', async () => {
    const b = await consumer('A');
    for (const id of ['m1', 'm2', 'm3']) await pub.publish(message(id), celery);
    const got = await b.reserve({ max: 2, timeoutMs: 0 });
    await b.restore(got);
    const next = await b.reserve({ max: 1, timeoutMs: 0 });
    assert.equal(next[0]!.message!.headers.id, 'm2');
    assert.equal(next[0]!.redelivered, true);
    await b.close();
    assert.equal(await raw.hlen('unacked'), 0);
    assert.equal(await raw.llen('celery'), 3);
    assert.equal(await raw.zscore('_celeriac.consumers', 'A'), null);
  });

  test('close() ends a blocked reserve promptly', async () => {
    const b = await consumer('A');
    const pending = b.reserve({ max: 1, timeoutMs: 10_000 });
    await sleep(100);
    const started = Date.now();
    await b.close();
    assert.deepEqual(await pending, []);
    assert.ok(Date.now() - started < 1000);
  });

  test('named exchanges route through _kombu.binding.<exchange>; unroutable publishes fail loudly', async () => {
    await raw.sadd('_kombu.binding.media', `image${SEP}${SEP}images`, `video${SEP}${SEP}videos`);
    await pub.publish(message('img'), { exchange: 'media', routingKey: 'image' });
    assert.equal(await raw.llen('images'), 1);
    assert.equal(await raw.llen('videos'), 0);
    await assert.rejects(pub.publish(message('x'), { exchange: 'media', routingKey: 'audio' }), ConfigurationError);
  });

  test('purge empties every priority list of the queues', async () => {
    const b = broker();
    for (const p of [0, 3, 6, 9, 0]) await pub.publish(message(`p${p}`, p), celery);
    await pub.publish(message('other'), { exchange: '', routingKey: 'other' });
    assert.equal(await b.purge(['celery']), 5);
    assert.equal(await pub.queueLength('celery'), 0);
    assert.equal(await pub.queueLength('other'), 1);
  });

  test('displayUrl masks the password', () => {
    const b = new RedisBroker('redis://:s3cret@127.0.0.1:1/3', { redis: { lazyConnect: true } });
    assert.equal(b.displayUrl, 'redis://:****@127.0.0.1:1/3');
    void b.close();
  });
});
