/**
 * Every Redis client of a worker — broker, result backend and the heartbeat
 * thread's socket — connects with the same settings: a password given as
 * `?password=` or in the `redis` transport option, and `rediss://` with a CA
 * file against a real TLS redis-server (certificates made with openssl here).
 * The heartbeat thread proving liveness is checked in Redis: the consumer's
 * deadline in `_celeriac.consumers` keeps moving past several TTLs, so peers
 * never take the worker for dead.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { after, before, test } from 'node:test';
import { Redis } from 'ioredis';
import { pino } from 'pino';
import { createApp, Worker, type Settings } from '../packages/core/src/index.ts';
import { freePort, missing, REDIS_SERVER, startRedis, type RedisServer } from './helpers/services.ts';

const skipRedis = missing(REDIS_SERVER, 'apt-get install redis-server');
const OPENSSL = '/usr/bin/openssl';
const skipTls = skipRedis ?? (existsSync(OPENSSL) ? null : missing(OPENSSL, 'apt-get install openssl'));
const PASSWORD = 'pa55:w/rd';
const INTERVAL_S = 0.2; // TTL = 5 intervals = 1 s

let secured: RedisServer;
let tlsServer: RedisServer;
let tlsPort = 0;
const certDir = mkdtempSync(join(tmpdir(), 'celeriac-certs-'));
const caFile = join(certDir, 'ca.crt');

function makeCertificates(): void {
  const ssl = (...args: string[]) => execFileSync(OPENSSL, args, { cwd: certDir, stdio: 'pipe' });
  ssl('req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'ca.key', '-out', 'ca.crt', '-days', '1', '-subj', '/CN=Celeriac test CA');
  ssl('req', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'server.key', '-out', 'server.csr', '-subj', '/CN=127.0.0.1');
  writeFileSync(join(certDir, 'san.ext'), 'subjectAltName=IP:127.0.0.1\n');
  ssl('x509', '-req', '-in', 'server.csr', '-CA', 'ca.crt', '-CAkey', 'ca.key', '-CAcreateserial', '-out', 'server.crt', '-days', '1', '-extfile', 'san.ext');
}

before(async () => {
  if (skipRedis) return;
  secured = await startRedis(undefined, ['--requirepass', PASSWORD]);
  if (skipTls) return;
  makeCertificates();
  tlsPort = await freePort();
  const file = (name: string) => join(certDir, name);
  tlsServer = await startRedis(undefined, [
    '--tls-port', String(tlsPort), '--tls-cert-file', file('server.crt'), '--tls-key-file', file('server.key'),
    '--tls-ca-cert-file', file('ca.crt'), '--tls-auth-clients', 'no',
  ]);
});

after(async () => {
  if (skipRedis) return;
  await secured.stop();
  await tlsServer?.stop();
  rmSync(certDir, { recursive: true, force: true });
});

/** A logger whose lines land in `lines`. */
function capturingLogger(lines: string[]) {
  const stream = new Writable({
    write(chunk, _enc, done) {
      lines.push(...String(chunk).split('\n').filter(Boolean));
      done();
    },
  });
  return pino({ level: 'debug' }, stream);
}

/**
 * Run a worker (with its heartbeat thread) with `config`; a task goes through the
 * broker and its result through the backend; the consumer stays alive in Redis
 * (read through `inspect`) for 3 TTLs.
 */
async function roundTripAndStayAlive(name: string, config: Partial<Settings>, inspect: Redis): Promise<string[]> {
  const lines: string[] = [];
  const app = createApp(name, { workerHeartbeatInterval: INTERVAL_S, workerHeartbeatThread: true, ...config });
  const add = app.task('auth.add', (x: number, y: number) => x + y);
  const worker = new Worker(app, { concurrency: 2, logger: capturingLogger(lines) });
  await worker.start();
  try {
    assert.equal(await (await add.delay(20, 22)).get({ timeout: 10_000 }), 42);
    // The thread comes up in the background (a second or so under tsx): wait for its first beat.
    const firstBeat = Number(await inspect.zscore('_celeriac.consumers', worker.consumerId));
    const threadDeadline = Date.now() + 15_000;
    while (Number(await inspect.zscore('_celeriac.consumers', worker.consumerId)) <= firstBeat) {
      assert.ok(Date.now() < threadDeadline, 'the heartbeat thread never beat');
      await new Promise((r) => setTimeout(r, 50));
    }
    const watchUntil = Date.now() + 3_000; // 3 TTLs: without working beats the entry lapses
    let checks = 0;
    while (Date.now() < watchUntil) {
      const score = await inspect.zscore('_celeriac.consumers', worker.consumerId);
      assert.ok(score !== null && Number(score) > Date.now(), `consumer ${worker.consumerId} not alive (score ${score}) — peers would restore its messages`);
      checks++;
      await new Promise((r) => setTimeout(r, 100));
    }
    assert.ok(checks >= 10);
  } finally {
    await worker.stop();
    await app.close();
  }
  const joined = lines.join('\n');
  assert.doesNotMatch(joined, /NOAUTH|WRONGPASS|Heartbeat thread died|Cannot start the heartbeat thread/);
  assert.ok(!joined.includes(PASSWORD), 'the password is never logged');
  return lines;
}

test('a password given as ?password= reaches the broker, the backend and the heartbeat thread', { skip: skipRedis ?? false }, async () => {
  const inspect = new Redis({ host: '127.0.0.1', port: secured.port, password: PASSWORD, db: 0 });
  try {
    const q = `?password=${encodeURIComponent(PASSWORD)}`;
    await roundTripAndStayAlive('qpass', { brokerUrl: secured.url(0) + q, resultBackend: secured.url(1) + q }, inspect);
  } finally {
    inspect.disconnect();
  }
});

test('a password given in the redis transport option reaches the broker, the backend and the heartbeat thread', { skip: skipRedis ?? false }, async () => {
  const inspect = new Redis({ host: '127.0.0.1', port: secured.port, password: PASSWORD, db: 2 });
  try {
    await roundTripAndStayAlive(
      'optpass',
      {
        brokerUrl: secured.url(2),
        resultBackend: secured.url(3),
        brokerTransportOptions: { redis: { password: PASSWORD } },
        resultBackendTransportOptions: { redis: { password: PASSWORD } },
      },
      inspect,
    );
  } finally {
    inspect.disconnect();
  }
});

test('rediss:// with a CA file: broker, backend and heartbeat thread all speak TLS to a real TLS redis-server', { skip: skipTls ?? false }, async () => {
  const inspect = new Redis({ host: '127.0.0.1', port: tlsServer.port, db: 0 }); // the plain port, for checking only
  try {
    await roundTripAndStayAlive(
      'tls',
      {
        brokerUrl: `rediss://127.0.0.1:${tlsPort}/0?ssl_ca_certs=${encodeURIComponent(caFile)}&ssl_cert_reqs=required`,
        resultBackend: `rediss://127.0.0.1:${tlsPort}/1`,
        resultBackendTransportOptions: { redis: { tls: { ca: readFileSync(caFile) } } },
      },
      inspect,
    );
  } finally {
    inspect.disconnect();
  }
});

test('rediss:// without the CA is refused at start-up, not retried, with the fix', { skip: skipTls ?? false }, async () => {
  const app = createApp('tls-noca', { brokerUrl: `rediss://127.0.0.1:${tlsPort}/0` });
  const lines: string[] = [];
  await assert.rejects(new Worker(app, { logger: capturingLogger(lines) }).start(), (err: Error) => {
    assert.match(err.message, /^Cannot connect to rediss:\/\/127\.0\.0\.1:\d+\/0: TLS handshake failed .*ssl_ca_certs/);
    return true;
  });
  assert.ok(!lines.some((l) => l.includes('Trying again')), 'a certificate problem is not retried');
  await app.close();
});

