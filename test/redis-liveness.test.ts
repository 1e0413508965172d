/**
 * The heartbeat thread's one-socket Redis client: AUTH and SELECT from the URL,
 * errors reported, reconnects after a server restart. Real redis-server.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { Redis } from 'ioredis';
import { encodeCommand, startLiveness } from '../packages/core/src/brokers/redis-liveness.ts';
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
