/**
 * Redis commands per task on the hot paths, counted with `INFO commandstats` (which
 * also counts the commands a Lua script runs): a reservation, an ack and a result
 * write each cost a handful of commands per batch, not several per message. The
 * benchmark (bench/, "Redis commands per task, end to end") measures the same end
 * to end; these bounds keep a regression from slipping in unnoticed.
 */
import assert from 'node:assert/strict';
import { after, before, beforeEach, describe, test } from 'node:test';
import { Redis } from 'ioredis';
import { RedisBackend } from '../packages/core/src/backends/redis.ts';
import { RedisBroker } from '../packages/core/src/brokers/redis.ts';
import { buildTaskMessage } from '../packages/core/src/protocol/task-message.ts';
import { missing, REDIS_SERVER, startRedis, type RedisServer } from './helpers/services.ts';

const skip = missing(REDIS_SERVER, 'apt-get install redis-server');
const N = 200;

function message(i: number) {
  return buildTaskMessage({ taskName: 'tasks.add', taskId: `budget-${i}`, args: [i, i], kwargs: {}, origin: 'gen1@test', replyTo: 'reply', serializer: 'json' });
}

describe('Redis commands per task', { skip: skip ?? false }, () => {
  let server: RedisServer;
  let raw: Redis;
  let broker: RedisBroker;
  let backend: RedisBackend;

  /** Commands Redis ran since the last call (INFO itself excluded). */
  async function commandsSince(): Promise<Record<string, number>> {
    const info = await raw.info('commandstats');
    await raw.config('RESETSTAT');
    const out: Record<string, number> = {};
    for (const m of info.matchAll(/^cmdstat_([^:]+):calls=(\d+)/gm)) if (m[1] !== 'config|resetstat') out[m[1]!] = Number(m[2]);
    return out;
  }
  const total = (c: Record<string, number>) => Object.values(c).reduce((a, b) => a + b, 0);

  before(async () => {
    server = await startRedis();
    raw = new Redis(server.url(0));
    broker = new RedisBroker(server.url(0));
    backend = new RedisBackend(server.url(1));
  });
  after(async () => {
    await broker?.close();
    await backend?.close();
    raw?.disconnect();
    await server?.stop();
  });
  beforeEach(async () => {
    await raw.flushall();
  });

  test(`reserving ${N} messages, a heartbeat while holding them, and acking them each cost a few commands, not some per message`, async () => {
    await broker.publishMany(Array.from({ length: N }, (_, i) => ({ message: message(i), route: { exchange: '', routingKey: 'celery' } })));
    const consumer = await broker.openConsumer(['celery'], { autoUpkeep: false, heartbeatThread: false });
    try {
      await commandsSince();
      const got = await consumer.reserve({ max: N, timeoutMs: 0 });
      const reserve = await commandsSince();
      assert.equal(got.length, N);
      assert.ok(total(reserve) <= 15, `reserve of ${N}: ${total(reserve)} commands ${JSON.stringify(reserve)}`);
      await consumer.beat(10_000);
      const beat = await commandsSince();
      assert.ok(total(beat) <= 25, `heartbeat holding ${N}: ${total(beat)} commands ${JSON.stringify(beat)}`);
      assert.ok((beat.zadd ?? 0) <= 3, `heartbeat refreshes the ${N} index entries in one ZADD XX, not ${beat.zadd}`);
      await consumer.ack(got);
      const ack = await commandsSince();
      assert.ok(total(ack) <= 10, `ack of ${N}: ${total(ack)} commands ${JSON.stringify(ack)}`);
      assert.deepEqual([await raw.hlen('unacked'), await raw.zcard('unacked_index'), await raw.scard(`_celeriac.owned.${consumer.id}`)], [0, 0, 0], 'the ack settled every message');
    } finally {
      await consumer.close();
    }
  });

  test(`storing ${N} results costs one write (SET ... GET) + PUBLISH per result plus a few per batch`, async () => {
    const docs = Array.from({ length: N }, (_, i) => ({ status: 'SUCCESS' as const, result: i, traceback: null, children: [], date_done: '2026-01-01T00:00:00.000000', task_id: `r${i}` }));
    await commandsSince();
    await backend.storeResults(docs);
    const store = await commandsSince();
    assert.ok(total(store) <= 2 * N + 5, `store of ${N}: ${total(store)} commands ${JSON.stringify(store)}`);
    assert.equal((store.set ?? 0) + (store.setex ?? 0), N, 'one write per result');
    assert.equal(store.publish, N);
    assert.equal((await backend.getResult('r7'))!.result, 7);
  });
});
