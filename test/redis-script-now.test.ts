/**
 * `runScriptNow`: a script command written to the socket at once, past ioredis's
 * auto-pipelining (which holds commands until `setImmediate`), unless commands issued
 * earlier still wait there (they must reach Redis first); NOSCRIPT falls back to EVAL.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { Redis } from 'ioredis';
import { runScriptNow } from '../packages/core/src/brokers/redis-script-now.ts';
import { scripts } from '../packages/core/src/brokers/redis-scripts.ts';
import { missing, REDIS_SERVER, startRedis, type RedisServer } from './helpers/services.ts';

const skip = missing(REDIS_SERVER, 'apt-get install redis-server');
let server: RedisServer;
let redis: Redis;
/** Commands written and awaiting their reply (ioredis's internal queue). */
const sent = () => (redis as unknown as { commandQueue: { length: number } }).commandQueue.length;
const sweep = () => runScriptNow(redis, scripts.sweepRedeliveries, ['unacked', '_celeriac.redeliveries', '_celeriac.redeliveries.at'], [1000, 10]);

before(async () => {
  if (skip) return;
  server = await startRedis();
  redis = new Redis(server.url(0), { enableAutoPipelining: true });
  await redis.ping();
});
after(async () => {
  if (skip) return;
  redis.disconnect();
  await server.stop();
});

test('the command is on the wire in the same step, where run() waits for the auto-pipeline', { skip: skip ?? false }, async () => {
  assert.equal(await sweep(), 0); // loads the script (EVALSHA, NOSCRIPT, EVAL)
  const pipelined = scripts.sweepRedeliveries.run(redis, ['unacked', '_celeriac.redeliveries', '_celeriac.redeliveries.at'], [1000, 10]);
  assert.deepEqual([sent(), redis.autoPipelineQueueSize], [0, 1], 'run(): held for setImmediate');
  await pipelined;
  const now = sweep();
  assert.deepEqual([sent(), redis.autoPipelineQueueSize], [1, 0], 'runScriptNow(): written at once');
  assert.equal(await now, 0);
});

test('behind commands still waiting in the auto-pipeline it waits too: the order of writes is kept', { skip: skip ?? false }, async () => {
  const earlier = redis.set('k', '1');
  const now = sweep();
  assert.deepEqual([sent(), redis.autoPipelineQueueSize], [0, 2]);
  await Promise.all([earlier, now]);
});

test('after SCRIPT FLUSH it falls back to EVAL with the source', { skip: skip ?? false }, async () => {
  await redis.script('FLUSH');
  await redis.zadd('_celeriac.redeliveries.at', 1, 'gone-tag');
  await redis.hset('_celeriac.redeliveries', 'gone-tag', '2');
  assert.equal(await sweep(), 1, 'the old count of a message nobody holds is swept');
});
