/**
 * The one Redis connection factory: how a URL and the `redis` option resolve,
 * what is refused at start-up (keyPrefix, Sentinel/Cluster options, a cluster-mode
 * server), and that secrets never reach a message or a log line.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { after, before, test } from 'node:test';
import { pino } from 'pino';
import { ConfigurationError, createApp, createBackend, createBroker, Worker } from '../packages/core/src/index.ts';
import { safeErrorSerializer } from '../packages/core/src/error-serializer.ts';
import { maskUrl } from '../packages/core/src/mask-url.ts';
import { resolveRedisConnection } from '../packages/core/src/redis-connection.ts';
import { waitForRedis } from '../packages/core/src/wait-for-redis.ts';
import { missing, REDIS_SERVER, startRedis, type RedisServer } from './helpers/services.ts';

const skip = missing(REDIS_SERVER, 'apt-get install redis-server');
const SECRET = 's3cretPW';
let cluster: RedisServer;

before(async () => {
  if (skip) return;
  cluster = await startRedis(undefined, ['--cluster-enabled', 'yes']);
});
after(async () => {
  if (skip) return;
  await cluster.stop();
});

/** A pino logger whose JSON lines land in `lines`. */
function capturingLogger(lines: string[]) {
  const stream = new Writable({
    write(chunk, _enc, done) {
      lines.push(...String(chunk).split('\n').filter(Boolean));
      done();
    },
  });
  return pino({ level: 'debug', serializers: { err: safeErrorSerializer } }, stream);
}

test('the password comes from the userinfo, ?password= or redis.password; the db from the path, ?db= or redis.db', () => {
  assert.deepEqual(
    { ...resolveRedisConnection('redis://127.0.0.1:6390/2?password=a%2Fb') },
    { host: '127.0.0.1', port: 6390, db: 2, password: 'a/b', displayUrl: 'redis://127.0.0.1:6390/2?password=****' },
  );
  const fromOptions = resolveRedisConnection('redis://h', { password: SECRET, username: 'app', db: 5 });
  assert.equal(fromOptions.password, SECRET);
  assert.equal(fromOptions.username, 'app');
  assert.equal(fromOptions.db, 5);
  assert.equal(fromOptions.port, 6379);
  assert.equal(resolveRedisConnection('redis://u:p%40ss@h/0?db=4').password, 'p@ss');
  assert.equal(resolveRedisConnection('redis://h/?db=4').db, 4);
  assert.equal(resolveRedisConnection('redis://[::1]:7000/0').host, '::1');
  assert.throws(() => resolveRedisConnection('redis://h/x1'), /must be a non-negative integer/);
});

test('rediss:// reads kombu\'s ssl_* parameters; redis.tls options are kept', () => {
  const dir = mkdtempSync(join(tmpdir(), 'celeriac-tls-'));
  writeFileSync(join(dir, 'ca.pem'), 'CA-BYTES');
  const tls = resolveRedisConnection(`rediss://h:6380/0?ssl_ca_certs=${join(dir, 'ca.pem')}&ssl_cert_reqs=CERT_REQUIRED`).tls!;
  assert.equal(String(tls.ca), 'CA-BYTES');
  assert.equal(tls.rejectUnauthorized, true);
  assert.equal(resolveRedisConnection('rediss://h/0?ssl_cert_reqs=none').tls!.rejectUnauthorized, false);
  assert.equal(resolveRedisConnection('rediss://h/0', { tls: { ca: 'X', servername: 'redis.internal' } }).tls!.servername, 'redis.internal');
  assert.equal(resolveRedisConnection('redis://h/0').tls, undefined);
  assert.throws(() => resolveRedisConnection(`rediss://h/0?ssl_ca_certs=${join(dir, 'missing.pem')}`), /Cannot read ssl_ca_certs=.*missing\.pem/);
});

test('redis.keyPrefix is refused at start-up, naming the option and the fix', async () => {
  for (const open of [
    () => createBroker('redis://127.0.0.1:1/0', { transportOptions: { redis: { keyPrefix: 'app:', lazyConnect: true } } }),
    () => createBackend('redis://127.0.0.1:1/1', { resultExpires: 1, transportOptions: { redis: { keyPrefix: 'app:', lazyConnect: true } } }),
  ]) {
    await assert.rejects(open(), (err: unknown) => {
      assert.ok(err instanceof ConfigurationError);
      assert.match(err.message, /redis\.keyPrefix is not supported/);
      assert.match(err.message, /Redis database number/);
      return true;
    });
  }
  const app = createApp('prefixed', { brokerUrl: 'redis://127.0.0.1:1/0', brokerTransportOptions: { redis: { keyPrefix: 'x:' } } });
  const worker = new Worker(app, { logger: pino({ level: 'silent' }) });
  await assert.rejects(worker.start(), /keyPrefix is not supported/);
  await app.close();
});

test('Sentinel and Cluster ioredis options are refused (Sentinel is given by a sentinel:// URL)', async () => {
  assert.throws(() => resolveRedisConnection('redis://h/0', { sentinels: [{ host: 'h', port: 26379 }] }), /Give Redis Sentinel in the URL, not as redis\.sentinels: brokerUrl 'sentinel:\/\//);
  assert.throws(() => resolveRedisConnection('redis://h/0', { clusterNodes: ['h:7000'] } as never), /Redis Cluster is not supported/);
});

test('a cluster-mode server is refused at start-up with the reason and the fix', { skip: skip ?? false }, async () => {
  const lines: string[] = [];
  const options = { retry: true, maxRetries: 100, timeoutMs: 2000, log: capturingLogger(lines) };
  await assert.rejects(waitForRedis(cluster.url(0), undefined, options), (err: Error) => {
    assert.match(err.message, /^Cannot connect to redis:\/\/127\.0\.0\.1:\d+\/0: the server runs in cluster mode\. Redis Cluster is not supported/);
    return true;
  });
  assert.deepEqual(lines, [], 'not retried');
  const app = createApp('cluster', { brokerUrl: cluster.url(0) });
  await assert.rejects(new Worker(app, { logger: pino({ level: 'silent' }) }).start(), /cluster mode/);
  await app.close();
});

test('maskUrl hides userinfo passwords and ?password= for any scheme, including kombu failover lists', () => {
  assert.equal(maskUrl(`redis://:${SECRET}@h:6379/0`), 'redis://:****@h:6379/0');
  assert.equal(maskUrl(`redis://h:6379/0?password=${SECRET}&ssl_cert_reqs=none`), 'redis://h:6379/0?password=****&ssl_cert_reqs=none');
  assert.equal(maskUrl(`sentinel://:${SECRET}@h1:26379;sentinel://:${SECRET}@h2:26379`), 'sentinel://:****@h1:26379;sentinel://:****@h2:26379');
  assert.equal(maskUrl(`db+postgresql://scott:${SECRET}@db/celery`), 'db+postgresql://scott:****@db/celery');
  assert.equal(maskUrl('redis://h:6379/0'), 'redis://h:6379/0');
});

test('an unknown scheme is reported with the URL masked', async () => {
  for (const [open, url] of [
    [createBroker, `kafka://:${SECRET}@127.0.0.1:9092`],
    [(u: string) => createBackend(u, { resultExpires: 1 }), `db+postgresql://scott:${SECRET}@127.0.0.1/celery`],
  ] as const) {
    await assert.rejects((open as (u: string) => Promise<unknown>)(url), (err: Error) => {
      assert.match(err.message, /Unknown .*scheme/);
      assert.match(err.message, /:\*\*\*\*@/);
      assert.ok(!err.message.includes(SECRET), err.message);
      return true;
    });
  }
});

test('a logged ioredis error never carries the command or its arguments', () => {
  const err = Object.assign(new Error('WRONGPASS invalid username-password pair or user is disabled.'), {
    command: { name: 'auth', args: ['user', SECRET] },
    cause: Object.assign(new Error('inner'), { command: { name: 'auth', args: [SECRET] } }),
  });
  const lines: string[] = [];
  capturingLogger(lines).error({ err }, 'Broker heartbeat failed');
  assert.equal(lines.length, 1);
  assert.match(lines[0]!, /WRONGPASS/);
  assert.ok(!lines[0]!.includes(SECRET), lines[0]);
  assert.ok(!lines[0]!.includes('"args"'), lines[0]);
});
