/**
 * Clear failures when Redis is away, against a real redis-server that is stopped
 * (by PID) or never started: what a `celeriac worker` prints before it can
 * connect, during an outage and at shutdown, and how a producer's `delay()` fails.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { Writable } from 'node:stream';
import { after, test } from 'node:test';
import { Redis } from 'ioredis';
import { pino } from 'pino';
import { BrokerUnavailable, createApp, Worker } from '../packages/core/src/index.ts';
import { freePort, missing, REDIS_SERVER, startRedis, stopChild, type RedisServer } from './helpers/services.ts';

const skip = missing(REDIS_SERVER, 'apt-get install redis-server');
const CLI = ['--import', 'tsx', 'packages/core/src/cli/main.ts'];
const SECRET = 'wr0ngPW';
const children = new Set<ChildProcess>();
const servers = new Set<RedisServer>();

after(async () => {
  for (const child of children) await stopChild(child, 1000);
  for (const server of servers) await server.stop();
});

async function redisOn(port?: number, args: string[] = []): Promise<RedisServer> {
  const server = await startRedis(port, args);
  servers.add(server);
  return server;
}

async function stopRedis(server: RedisServer): Promise<void> {
  await server.stop();
  servers.delete(server);
}

interface RunningWorker {
  child: ChildProcess;
  output(): string;
  exited: Promise<{ code: number | null; at: number }>;
}

function spawnWorker(broker: string, backend: string | null, env: Record<string, string> = {}): RunningWorker {
  const args = [...CLI, 'worker', '-A', 'test/apps/worker-app.ts', '--broker', broker, '-c', '2', '-l', 'info'];
  if (backend) args.push('--backend', backend);
  const child = spawn(process.execPath, args, { env: { ...process.env, CELERIAC_TEST_HEARTBEAT: '0.5', ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  children.add(child);
  let out = '';
  child.stdout!.on('data', (d) => (out += d));
  child.stderr!.on('data', (d) => (out += d));
  const exited = new Promise<{ code: number | null; at: number }>((resolve) =>
    child.once('exit', (code) => (children.delete(child), resolve({ code, at: Date.now() }))),
  );
  return { child, output: () => out, exited };
}

async function until(what: string, check: () => boolean, timeoutMs: number, output?: () => string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`${what}: not within ${timeoutMs} ms${output ? `\n--- output ---\n${output()}` : ''}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

const count = (text: string, pattern: RegExp) => text.match(new RegExp(pattern.source, 'g'))?.length ?? 0;

test('before Redis is up the worker says so like Celery, and prints ready. only once connected', { skip: skip ?? false }, async () => {
  const port = await freePort();
  const url = `redis://127.0.0.1:${port}/0`;
  const w = spawnWorker(url, `redis://127.0.0.1:${port}/1`);
  const line = `Cannot connect to ${url}: Connection refused. Trying again in 2.00 seconds... (1/100)`;
  await until('first retry line', () => w.output().includes(line), 20_000, w.output);
  assert.ok(!w.output().includes(' ready.'), 'ready. before connecting');
  await redisOn(port);
  await until('ready.', () => w.output().includes(' ready.'), 20_000, w.output);
  const out = w.output();
  assert.ok(out.indexOf(`Connected to ${url}`) < out.indexOf(' ready.'), 'Connected to ... comes before ready.');
  assert.doesNotMatch(out, /Unhandled error event/);
  w.child.kill('SIGTERM');
  assert.equal((await w.exited).code, 0, w.output());
});

test('a wrong password is reported as such, not retried, exits non-zero, and is never printed', { skip: skip ?? false }, async () => {
  const server = await redisOn(undefined, ['--requirepass', 'the-real-one']);
  const w = spawnWorker(`redis://:${SECRET}@127.0.0.1:${server.port}/0`, null);
  const { code } = await w.exited;
  const out = w.output();
  assert.notEqual(code, 0);
  assert.match(out, /Cannot connect to redis:\/\/:\*\*\*\*@127\.0\.0\.1:\d+\/0: authentication failed \(WRONGPASS[^)]*\)\. Check the password/);
  assert.doesNotMatch(out, /Trying again/);
  assert.ok(!out.includes(SECRET), `the password leaked:\n${out}`);
});

test('a database index out of range is reported as such and not retried', { skip: skip ?? false }, async () => {
  const server = await redisOn();
  const w = spawnWorker(server.url(99), null);
  const { code } = await w.exited;
  assert.notEqual(code, 0);
  assert.match(w.output(), /Cannot connect to redis:\/\/127\.0\.0\.1:\d+\/99: database 99 cannot be selected \(ERR DB index is out of range\)/);
  assert.doesNotMatch(w.output(), /Trying again/);
});

test('an outage is one line when it starts and one when it ends (also with the producer connection open): no ioredis stack traces, no command arguments', { skip: skip ?? false }, async () => {
  let server = await redisOn();
  const port = server.port;
  const w = spawnWorker(server.url(0), server.url(1));
  await until('ready.', () => w.output().includes(' ready.'), 20_000, w.output);
  // A task that retried: the worker's app has opened its own producer connection
  // (retries and callbacks are published through it) beside the consumer's.
  const producer = createApp('outage-producer', { brokerUrl: server.url(0), resultBackend: server.url(1) });
  producer.logger = pino({ level: 'silent' });
  assert.equal(await producer.sendTask('tasks.retry_once', ['retried']).then((r) => r.get({ timeout: 15_000 })), 'retried');
  await producer.close();
  const before = w.output().length;
  await stopRedis(server);
  await until('outage line', () => /Connection to broker .* lost/.test(w.output().slice(before)), 10_000, w.output);
  await new Promise((r) => setTimeout(r, 3000)); // an outage of a few seconds (many reconnect attempts)
  server = await redisOn(port);
  await until('recovery line', () => /Connected to broker .* again after/.test(w.output().slice(before)), 15_000, w.output);
  await new Promise((r) => setTimeout(r, 1000)); // let any straggling lines arrive
  const during = w.output().slice(before);
  assert.equal(count(during, /Connection to broker redis:\/\/127\.0\.0\.1:\d+\/0 lost: Connection (refused|reset by peer|closed by peer)/), 1, during);
  assert.equal(count(during, /Connected to broker .* again after/), 1, during);
  assert.ok(count(during, /Connection to result backend .* lost/) <= 1, during);
  assert.ok(count(during, /Connected to result backend .* again after/) <= 1, during);
  assert.equal(count(during, /Unhandled error event/), 0, during);
  assert.equal(count(during, /"level":(40|50)/), count(during, /lost: /), `only the outage line is a warning or error:\n${during}`);
  assert.doesNotMatch(during, /"args"/);
  w.child.kill('SIGTERM');
  assert.equal((await w.exited).code, 0, w.output());
});

test('a password that stops working is reported once per connection and never printed (banner, logs, ioredis command args)', { skip: skip ?? false }, async () => {
  const first = 'first-Pw1';
  const server = await redisOn(undefined, ['--requirepass', first]);
  const w = spawnWorker(`${server.url(0)}?password=${first}`, `${server.url(1)}?password=${first}`);
  await until('ready.', () => w.output().includes(' ready.'), 20_000, w.output);
  assert.match(w.output(), /\.> transport:\s+redis:\/\/127\.0\.0\.1:\d+\/0\?password=\*\*\*\*/);
  const admin = new Redis({ host: '127.0.0.1', port: server.port, password: first });
  await admin.config('SET', 'requirepass', 'second-Pw2');
  await admin.client('KILL', 'TYPE', 'normal'); // every worker connection logs in again, with the old password
  admin.disconnect();
  await until('outage line', () => /lost: WRONGPASS/.test(w.output()), 10_000, w.output);
  await new Promise((r) => setTimeout(r, 3000)); // ~30 failed reconnects and beats
  const out = w.output();
  assert.ok(!out.includes(first), `the password leaked:\n${out}`);
  assert.doesNotMatch(out, /"args"|"command"/);
  assert.doesNotMatch(out, /Unhandled error event/);
  // One line for the broker's outage; its first error may be the server dropping the
  // connection rather than the refused login, which then shows in the same outage.
  assert.equal(count(out, /Connection to broker .* lost: /), 1, out);
  assert.match(out, /lost: WRONGPASS|refused by Redis: WRONGPASS/, out);
  assert.ok(count(out, /Broker heartbeat refused by Redis: WRONGPASS/) <= 1, out);
  console.log(`# warning/error lines in ~3 s of a wrong password: ${count(out, /"level":(40|50)/)}`);
  // Groups: broker, result backend, heartbeat, events channel, and the one background mingle
  // when the password changes while it runs: each may report once, none once per attempt.
  assert.ok(count(out, /Could not send events/) <= 1 && count(out, /mingle: could not sync/) <= 1, out);
  assert.ok(count(out, /"level":(40|50)/) <= 5, `one line per connection group, not one per attempt:\n${out}`);
  w.child.kill('SIGTERM');
  await w.exited;
});

test('a broker that stays away past brokerConnectionMaxRetries makes a running worker exit non-zero', { skip: skip ?? false }, async () => {
  const server = await redisOn();
  const w = spawnWorker(server.url(0), server.url(1), { CELERIAC_TEST_MAX_RETRIES: '1' }); // gives up 2 s into an outage
  await until('ready.', () => w.output().includes(' ready.'), 20_000, w.output);
  const down = Date.now();
  await stopRedis(server);
  const timeout = new Promise<null>((resolve) => setTimeout(() => resolve(null), 20_000).unref());
  const exit = await Promise.race([w.exited, timeout]);
  assert.ok(exit, `the worker kept running with the broker away past the retries:\n${w.output()}`);
  assert.notEqual(exit.code, 0);
  assert.ok(exit.at - down >= 1500, `gave up after ${exit.at - down} ms, before the 2 s retry`);
  assert.match(w.output(), /Cannot connect to redis:\/\/127\.0\.0\.1:\d+\/0: Connection refused\. Gave up after 1 retries \(brokerConnectionMaxRetries\)/);
});

test('SIGTERM with Redis down exits within brokerConnectionTimeout; a second SIGTERM exits at once', { skip: skip ?? false }, async () => {
  for (const signals of [1, 2]) {
    const server = await redisOn();
    const w = spawnWorker(server.url(0), server.url(1));
    await until('ready.', () => w.output().includes(' ready.'), 20_000, w.output);
    await stopRedis(server);
    await until('outage line', () => /Connection to broker .* lost/.test(w.output()), 10_000, w.output);
    const sentAt = Date.now();
    w.child.kill('SIGTERM');
    let secondAt = sentAt;
    if (signals === 2) {
      await new Promise((r) => setTimeout(r, 200));
      secondAt = Date.now();
      w.child.kill('SIGTERM');
    }
    const { code, at } = await w.exited;
    const tookMs = at - secondAt;
    console.log(`# ${signals} SIGTERM(s) with Redis down: exited ${tookMs} ms after the last one (code ${code})`);
    if (signals === 1) {
      assert.ok(tookMs < 4000 + 1500, `exit took ${tookMs} ms (brokerConnectionTimeout is 4 s)`);
      assert.doesNotMatch(w.output(), /Error during shutdown/);
    } else {
      assert.ok(tookMs < 2000, `second SIGTERM: exit took ${tookMs} ms`);
    }
  }
});

test('delay() while Redis is down fails within the retry policy with BrokerUnavailable naming the masked URL; close() does not throw', { skip: skip ?? false }, async () => {
  const port = await freePort();
  const lines: string[] = [];
  const app = createApp('producer-down', { brokerUrl: `redis://127.0.0.1:${port}/0?password=${SECRET}` });
  app.logger = pino({ level: 'debug' }, new Writable({ write: (chunk, _e, done) => (lines.push(String(chunk)), done()) }));
  const add = app.task('tasks.add', (x: number, y: number) => x + y);
  const started = Date.now();
  const err = await add.delay(1, 2).then(
    () => assert.fail('delay() resolved with no broker'),
    (e: unknown) => e,
  );
  const tookMs = Date.now() - started;
  console.log(`# delay() with Redis down rejected after ${tookMs} ms`);
  assert.ok(err instanceof BrokerUnavailable, String(err));
  assert.match(err.message, /^Cannot publish to redis:\/\/127\.0\.0\.1:\d+\/0\?password=\*\*\*\*: the broker is unreachable/);
  assert.match(err.message, /Connection refused/);
  assert.equal(err.attempts, 4);
  assert.ok(tookMs < 3000, `took ${tookMs} ms`);
  assert.ok(tookMs >= 400, `took ${tookMs} ms: the policy sleeps 0 + 0.2 + 0.2 s at least`);
  await app.close();
  await app.close();
  const logged = lines.join('');
  assert.ok(!logged.includes(SECRET) && !err.message.includes(SECRET));
  assert.equal(count(logged, /lost: Connection refused/), 1, logged);

  const noRetry = createApp('producer-noretry', { brokerUrl: `redis://127.0.0.1:${port}/0`, taskPublishRetry: false });
  noRetry.logger = pino({ level: 'silent' });
  await assert.rejects(noRetry.sendTask('tasks.add', [1, 2]), (e: unknown) => e instanceof BrokerUnavailable && e.attempts === 1);
  await noRetry.close();
});

test('app.close() never throws for a connection that never opened', async () => {
  const app = createApp('never', { brokerUrl: 'sentinel://:x@127.0.0.1:1', resultBackend: 'redis://127.0.0.1:1/1' });
  app.logger = pino({ level: 'silent' });
  await assert.rejects(app.getBroker(), /needs the name of the master group .* master_name transport option/);
  await app.getBackend();
  await app.close();
});

test('Worker.stop({ cold: true }) with Redis down returns at once', { skip: skip ?? false }, async () => {
  const server = await redisOn();
  const app = createApp('cold-inproc', { brokerUrl: server.url(0), resultBackend: server.url(1), workerHeartbeatInterval: 0.5 });
  const worker = new Worker(app, { logger: pino({ level: 'silent' }) });
  await worker.start();
  await stopRedis(server);
  const started = Date.now();
  await worker.stop({ cold: true });
  await app.close();
  const tookMs = Date.now() - started;
  console.log(`# cold Worker.stop() with Redis down took ${tookMs} ms`);
  assert.ok(tookMs < 2000, `took ${tookMs} ms (brokerConnectionTimeout is 4 s: a cold stop must not wait it out)`);
  // Nothing of the stopped worker reconnects when Redis comes back (no client left retrying).
  const back = await redisOn(server.port);
  const admin = new Redis({ host: '127.0.0.1', port: back.port });
  try {
    await new Promise((r) => setTimeout(r, 3000)); // longer than ioredis's longest reconnect delay (2 s)
    const clients = String(await admin.client('LIST')).trim().split('\n');
    assert.equal(clients.length, 1, `connections from the stopped worker:\n${clients.join('\n')}`);
  } finally {
    admin.disconnect();
  }
});
