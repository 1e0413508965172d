/**
 * The heartbeat thread's one-socket Redis client: AUTH and SELECT from the URL,
 * errors reported, reconnects after a server restart. Real redis-server.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { Redis } from 'ioredis';
import { createBroker } from '../packages/core/src/brokers/index.ts';
import { encodeCommand, startLiveness } from '../packages/core/src/brokers/redis-liveness.ts';
import { buildTaskMessage } from '../packages/core/src/protocol/task-message.ts';
import { missing, REDIS_SERVER, startRedis, type RedisServer } from './helpers/services.ts';

const skip = missing(REDIS_SERVER, 'apt-get install redis-server');
let redis: RedisServer;
let client: Redis;

before(async () => {
  if (skip) return;
  redis = await startRedis(undefined, ['--requirepass', 's3cr:et']);
  client = new Redis({ port: redis.port, host: '127.0.0.1', password: 's3cr:et', db: 3 });
});
after(async () => {
  if (skip) return;
  client.disconnect();
  await redis.stop();
});

async function aliveUntil(consumer: string): Promise<number | null> {
  const score = await client.zscore('_celeriac.consumers', consumer);
  return score === null ? null : Number(score);
}

async function waitFor(check: () => Promise<boolean>, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 20));
  }
}

test('RESP encoding of a command', () => {
  assert.equal(encodeCommand(['SELECT', 3]).toString(), '*2\r\n$6\r\nSELECT\r\n$1\r\n3\r\n');
  assert.equal(encodeCommand(['ECHO', 'é']).toString(), '*2\r\n$4\r\nECHO\r\n$2\r\né\r\n');
});

test('beats with AUTH (password from the URL, percent-encoded) into the URL’s db, refreshing the TTL', { skip: skip ?? false }, async () => {
  const errors: string[] = [];
  const live = startLiveness({ url: `redis://:${encodeURIComponent('s3cr:et')}@127.0.0.1:${redis.port}/3`, consumerId: 'c1', ttlMs: 5000, intervalMs: 50, onError: (m) => errors.push(m) });
  try {
    await waitFor(async () => (await aliveUntil('c1')) !== null);
    const first = (await aliveUntil('c1'))!;
    assert.ok(first > Date.now() + 4000 && first <= Date.now() + 5100, `alive until ${first - Date.now()} ms from now`);
    await waitFor(async () => (await aliveUntil('c1'))! > first);
    assert.deepEqual(errors, []);
  } finally {
    await live.stop();
  }
});

test('a wrong password is reported, not silent', { skip: skip ?? false }, async () => {
  const errors: string[] = [];
  const live = startLiveness({ url: `redis://:wrong@127.0.0.1:${redis.port}/3`, consumerId: 'c2', ttlMs: 5000, intervalMs: 50, onError: (m) => errors.push(m) });
  try {
    await waitFor(async () => errors.some((e) => /WRONGPASS|NOAUTH|invalid password/i.test(e)));
    assert.equal(await aliveUntil('c2'), null);
  } finally {
    await live.stop();
  }
});

test('beats resume after the server restarts', { skip: skip ?? false }, async () => {
  const live = startLiveness({ url: `redis://:${encodeURIComponent('s3cr:et')}@127.0.0.1:${redis.port}/3`, consumerId: 'c3', ttlMs: 5000, intervalMs: 50, onError: () => undefined });
  try {
    await waitFor(async () => (await aliveUntil('c3')) !== null);
    const port = redis.port;
    await redis.stop();
    redis = await startRedis(port, ['--requirepass', 's3cr:et']);
    await waitFor(async () => (await aliveUntil('c3').catch(() => null)) !== null);
  } finally {
    await live.stop();
  }
});

test('release() of a hung consumer (after an AUTH + SELECT handshake): not-started messages back in front, started ones dropped or requeued at the back', { skip: skip ?? false }, async () => {
  const url = `redis://:${encodeURIComponent('s3cr:et')}@127.0.0.1:${redis.port}/3`;
  const broker = await createBroker(url);
  const consumer = await broker.openConsumer(['hung'], { consumerId: 'hung-1', autoUpkeep: false });
  const live = startLiveness({ url, consumerId: 'hung-1', ttlMs: 60_000, intervalMs: 20, onError: () => undefined });
  try {
    for (const name of ['m0', 'm1', 'm2', 'm3']) await broker.publish(buildTaskMessage({ taskName: name, taskId: `id-${name}`, args: [], kwargs: {}, origin: 'gen1@test', replyTo: '', serializer: 'json' }), { exchange: '', routingKey: 'hung' });
    const held = await consumer.reserve({ max: 4, timeoutMs: 1000 });
    assert.deepEqual(held.map((d) => d.message!.headers.task), ['m0', 'm1', 'm2', 'm3']);
    await waitFor(async () => (await aliveUntil('hung-1')) !== null); // a few beats went first: replies stay in line
    const counts = await live.release([
      { tag: held[0]!.deliveryTag, requeue: false },
      { tag: held[1]!.deliveryTag, requeue: true },
      { tag: 'not-mine', requeue: true },
    ]);
    assert.deepEqual(counts, { restored: 2, dropped: 1, requeued: 1 });
    assert.equal(await client.hlen('unacked'), 0);
    assert.equal(await client.scard('_celeriac.owned.hung-1'), 0);
    // Consumed from the right: m2 and m3 first (given back untouched, in front, in the owned set's
    // order), then m1 (requeued at the back); m0 is gone.
    const queue = (await client.lrange('hung', 0, -1)).map((e) => JSON.parse(e) as { headers: { task: string; redelivered?: boolean } });
    const consumedOrder = queue.map((e) => e.headers.task).reverse();
    assert.deepEqual([...consumedOrder.slice(0, 2)].sort(), ['m2', 'm3']);
    assert.deepEqual(consumedOrder.slice(2), ['m1']);
    assert.ok(queue.every((e) => e.headers.redelivered === true), 'marked redelivered');
    assert.notEqual(await aliveUntil('hung-1'), null, 'the consumer itself stays alive');
    // The hung owner coming back cannot settle what it held any more: its ack is a no-op.
    const again = await (await broker.openConsumer(['hung'], { consumerId: 'peer', autoUpkeep: false })).reserve({ max: 3, timeoutMs: 1000 });
    await consumer.ack([held[2]!]);
    assert.equal(await client.hlen('unacked'), again.length);
  } finally {
    await live.stop();
    await consumer.close();
    await broker.close();
  }
});
