/**
 * `whenRedisReady` with many callers at once (a producer's first 1,000 `delay`s
 * while the connection is still opening): they share one set of client listeners
 * instead of adding (and later removing, one linear scan each) three per caller.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Redis } from 'ioredis';
import { whenRedisReady } from '../packages/core/src/redis-client.ts';
import { startRedis } from './helpers/services.ts';

test('1,000 concurrent waiters for a connecting client share its listeners and all see it ready', async (t) => {
  const redis = await startRedis();
  t.after(() => redis.stop());
  const client = new Redis({ host: '127.0.0.1', port: redis.port, lazyConnect: true });
  t.after(() => client.disconnect());
  const before = { ready: client.listenerCount('ready'), error: client.listenerCount('error'), end: client.listenerCount('end') };
  const waits = Array.from({ length: 1000 }, () => whenRedisReady(client, 10_000));
  assert.ok(client.listenerCount('ready') - before.ready <= 1, `ready listeners added: ${client.listenerCount('ready') - before.ready}`);
  assert.ok(client.listenerCount('error') - before.error <= 1, `error listeners added: ${client.listenerCount('error') - before.error}`);
  assert.ok(client.listenerCount('end') - before.end <= 1, `end listeners added: ${client.listenerCount('end') - before.end}`);
  await client.connect();
  assert.deepEqual(new Set(await Promise.all(waits)), new Set([true]));
  assert.equal(client.listenerCount('ready'), before.ready, 'listeners removed once ready');
  assert.equal(client.listenerCount('error'), before.error);
  assert.equal(client.listenerCount('end'), before.end);
});

test('a waiter still times out on its own deadline while others wait longer', async (t) => {
  const client = new Redis({ host: '127.0.0.1', port: 1, lazyConnect: true, retryStrategy: () => null });
  t.after(() => client.disconnect());
  const started = Date.now();
  const short = whenRedisReady(client, 50);
  const long = whenRedisReady(client, 60_000);
  assert.equal(await short, false);
  assert.ok(Date.now() - started < 5_000, 'the short waiter did not wait for the long one');
  client.disconnect(); // 'end': the long waiter resolves false too, without waiting 60 s
  assert.equal(await long, false);
});
