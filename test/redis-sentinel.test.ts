/**
 * Redis Sentinel (`sentinel://` broker and result backend, as kombu and Celery read
 * them): parsing and errors without a server, then against a real topology started
 * here (master + 2 replicas + 3 sentinels, quorum 2; see helpers/redis-sentinel.ts):
 * tasks through sentinel://, a `SENTINEL FAILOVER` and a killed master that the
 * worker and producer follow, the replica wait (WAIT) that makes a resolved publish
 * survive a failover, the fault test (2,000 tasks published and consumed with acks
 * late while the master is killed: every resolved publish runs), and Python
 * Celery 5.2 on the same sentinels in both directions.
 */
import assert from 'node:assert/strict';
import { loadavg } from 'node:os';
import { Writable } from 'node:stream';
import { after, before, describe, test } from 'node:test';
import { Redis } from 'ioredis';
import { createApp, fromObject, Worker, type Celeriac } from '../packages/core/src/index.ts';
import { createBroker, waitForBroker } from '../packages/core/src/brokers/index.ts';
import { createBackend } from '../packages/core/src/backends/index.ts';
import { maskUrl } from '../packages/core/src/mask-url.ts';
import { censor, maskUrlPassword } from '../packages/core/src/cli/report.ts';
import { resolveRedisConnection } from '../packages/core/src/redis-connection.ts';
import { RedisConnectError } from '../packages/core/src/redis-probe.ts';
import { pino } from 'pino';
import { pythonCeleryMissing, runPythonProducer, startPythonWorker, type InteropEnv, type PeerProcess } from './helpers/python-celery.ts';
import { MASTER_NAME, MASTER_PASSWORD, SENTINEL_PASSWORD, sentinelMissing, startSentinelTopology, until, type SentinelTopology } from './helpers/redis-sentinel.ts';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const silent = pino({ level: 'silent' });
const noWait = { retry: false, maxRetries: 1, timeoutMs: 3000, log: silent };

describe('sentinel:// settings (no server)', () => {
  test('kombu/Celery URL list: sentinels in order (26379 by default), the first URL gives the master password and db; sentinel_kwargs the sentinels\' password', () => {
    const url = 'sentinel://:m%40pw@10.0.0.1:26380/3;sentinel://10.0.0.2;sentinel://[::1]:26390';
    const s = resolveRedisConnection(url, {}, { master_name: 'mymaster', sentinel_kwargs: { password: 'spw', socket_timeout: 0.5 } });
    assert.deepEqual(s.sentinel, {
      sentinels: [{ host: '10.0.0.1', port: 26380 }, { host: '10.0.0.2', port: 26379 }, { host: '::1', port: 26390 }],
      masterName: 'mymaster',
      sentinelPassword: 'spw',
      sentinelCommandTimeoutMs: 500,
    });
    assert.equal(s.password, 'm@pw');
    assert.equal(s.db, 3);
    assert.equal(s.displayUrl, 'sentinel://:****@10.0.0.1:26380/3;sentinel://10.0.0.2;sentinel://[::1]:26390');
    // camelCase works the same (what fromObject makes of broker_transport_options).
    assert.equal(resolveRedisConnection('sentinel://h', {}, { masterName: 'm2' }).sentinel?.masterName, 'm2');
  });

  test('fromObject maps broker_transport_options / result_backend_transport_options, and both reach the connection', () => {
    const settings = fromObject({
      broker_url: 'sentinel://:pw@h1:26379;sentinel://h2:26379',
      broker_transport_options: { master_name: 'brokers', sentinel_kwargs: { password: 'sp' } },
      result_backend: 'sentinel://h1:26379/1',
      result_backend_transport_options: { master_name: 'results' },
    });
    const broker = resolveRedisConnection(settings.brokerUrl!, {}, settings.brokerTransportOptions);
    assert.equal(broker.sentinel?.masterName, 'brokers');
    assert.equal(broker.sentinel?.sentinelPassword, 'sp');
    assert.equal(broker.password, 'pw');
    const backend = resolveRedisConnection(settings.resultBackend!, {}, settings.resultBackendTransportOptions);
    assert.equal(backend.sentinel?.masterName, 'results');
    assert.equal(backend.db, 1);
  });

  test('a missing master_name is a start-up error naming the option and the fix; sentinel:// is no longer an unknown scheme', async () => {
    const err = (fn: () => unknown) => {
      try {
        fn();
      } catch (e) {
        return (e as Error).message;
      }
      assert.fail('expected an error');
    };
    const message = err(() => resolveRedisConnection('sentinel://:secret@h1:26379;sentinel://h2'));
    assert.match(message, /master_name transport option/);
    assert.match(message, /masterName: 'mymaster'/);
    assert.match(message, /sentinel monitor <name>/);
    assert.doesNotMatch(message, /secret/);
    await assert.rejects(createBroker('sentinel://h1:26379', {}), /master_name/);
    await assert.rejects(createBackend('sentinel://h1:26379', { resultExpires: 60 }), /master_name/);
  });

  test('bad Sentinel input is refused with the fix: other schemes in the list, unknown sentinel_kwargs, min_other_sentinels, redis.sentinels', () => {
    assert.throws(() => resolveRedisConnection('sentinel://h1;redis://h2:6379', {}, { masterName: 'm' }), /must be sentinel:\/\/host:port.*List the sentinels/);
    assert.throws(() => resolveRedisConnection('sentinel://h1', {}, { masterName: 'm', sentinel_kwargs: { ssl: true } }), /"ssl".*use password, username and socket_timeout/);
    assert.throws(() => resolveRedisConnection('sentinel://h1', {}, { masterName: 'm', min_other_sentinels: 1 }), /min_other_sentinels=1 is not supported/);
    assert.throws(() => resolveRedisConnection('redis://h1', { sentinels: [{ host: 'h', port: 1 }] } as never), /sentinel:\/\/host1:26379;sentinel:\/\/host2:26379/);
    assert.throws(() => resolveRedisConnection('sentinel://h1/x', {}, { masterName: 'm' }), /database .* non-negative integer/);
  });

  test('maskUrl hides every password of a sentinel list (userinfo and ?password=)', () => {
    assert.equal(maskUrl('sentinel://:pw@h1:26379/0;sentinel://:pw@h2:26380'), 'sentinel://:****@h1:26379/0;sentinel://:****@h2:26380');
    assert.equal(maskUrl('sentinel://user:p%40ss@h1;sentinel://h2'), 'sentinel://user:****@h1;sentinel://h2');
    assert.equal(maskUrl('sentinel://h1:26379?password=secret;sentinel://h2'), 'sentinel://h1:26379?password=****;sentinel://h2');
  });

  test('celeriac report masks every password of a sentinel list and the sentinels\' password in the transport options', () => {
    assert.equal(maskUrlPassword('sentinel://:pw@h1:26379/0;sentinel://:pw@h2:26380/0'), 'sentinel://:********@h1:26379/0;sentinel://:********@h2:26380/0');
    assert.deepEqual(censor('brokerTransportOptions', { masterName: 'm', sentinelKwargs: { password: 'spw' } }), { masterName: 'm', sentinelKwargs: { password: '********' } });
  });

  test('waitForReplicas: on (1) by default with sentinel://, off with redis://, validated', async () => {
    const { replicaWaitFrom } = await import('../packages/core/src/redis-replication.ts');
    assert.deepEqual(replicaWaitFrom({}, true, 'u'), { replicas: 1, timeoutMs: 1000 });
    assert.equal(replicaWaitFrom({}, false, 'u'), null);
    assert.equal(replicaWaitFrom({ wait_for_replicas: 0 }, true, 'u'), null);
    assert.deepEqual(replicaWaitFrom({ waitForReplicas: 2, waitForReplicasTimeoutMs: 50 }, false, 'u'), { replicas: 2, timeoutMs: 50 });
    assert.throws(() => replicaWaitFrom({ waitForReplicas: -1 }, true, 'u'), /waitForReplicas .* whole number/);
  });
});

const skip = sentinelMissing();
const pySkip = skip ?? pythonCeleryMissing();

describe('Redis Sentinel topology: master + 2 replicas + 3 sentinels (quorum 2)', { skip: skip ?? false }, () => {
  let topo: SentinelTopology;
  const apps: Celeriac[] = [];
  const workers: Worker[] = [];
  const peers: PeerProcess[] = [];
  const probe = new Set<Redis>();

  before(async () => {
    topo = await startSentinelTopology();
  });
  after(async () => {
    for (const p of peers) await p.stop(5000);
    for (const w of workers) await w.stop({ cold: true }).catch(() => undefined);
    for (const a of apps) await a.close().catch(() => undefined);
    for (const c of probe) c.disconnect();
    await topo?.stop();
  });

  const sentinelApp = (name: string, extra: Parameters<typeof createApp>[1] = {}) => {
    const app = createApp(name, {
      brokerUrl: topo.url(0),
      resultBackend: topo.url(1),
      brokerTransportOptions: { ...topo.transportOptions() },
      resultBackendTransportOptions: { ...topo.transportOptions() },
      ...extra,
    });
    apps.push(app);
    return app;
  };
  const masterClient = async (db = 0) => {
    const node = await topo.master();
    const c = new Redis({ port: node.port, host: '127.0.0.1', password: MASTER_PASSWORD, db, maxRetriesPerRequest: 1 });
    c.on('error', () => undefined);
    probe.add(c);
    return c;
  };

  test('start-up errors against real sentinels: unknown master name, wrong sentinel password (not retried, with the fix)', async () => {
    await assert.rejects(waitForBroker(topo.url(0), { master_name: 'nosuchmaster', sentinel_kwargs: { password: SENTINEL_PASSWORD } }, noWait), (err: unknown) => {
      assert.ok(err instanceof RedisConnectError);
      assert.equal(err.retryable, false);
      assert.match(err.message, /know no master named "nosuchmaster"/);
      assert.match(err.message, /Set master_name \(masterName\)/);
      assert.doesNotMatch(err.message, new RegExp(MASTER_PASSWORD));
      return true;
    });
    await assert.rejects(waitForBroker(topo.url(0), { master_name: MASTER_NAME, sentinel_kwargs: { password: 'wrong' } }, noWait), (err: unknown) => {
      assert.ok(err instanceof RedisConnectError);
      assert.equal(err.retryable, false);
      assert.match(err.message, /sentinel refused the login .*WRONGPASS|invalid/i);
      assert.match(err.message, /sentinel_kwargs: \{ password/);
      return true;
    });
    // Right options: the probe finds the master through the sentinels and logs in with the URL's password.
    await waitForBroker(topo.url(0), topo.transportOptions(), noWait);
  });

  test('tasks sent and run through sentinel:// for broker and result backend; the data is on the master the sentinels name', async () => {
    const app = sentinelApp('sentinel-basic');
    app.task('sentinel.add', (a: number, b: number) => a + b);
    const worker = new Worker(app, { concurrency: 2, logLevel: 'error' });
    workers.push(worker);
    await worker.start();
    const results = await Promise.all([1, 2, 3].map((i) => app.sendTask('sentinel.add', [i, 10])));
    assert.deepEqual(await Promise.all(results.map((r) => r.get({ timeout: 20_000 }))), [11, 12, 13]);
    const stored = await (await masterClient(1)).get(`celery-task-meta-${results[0]!.id}`);
    assert.match(stored ?? '', /"status": "SUCCESS"/);
    await worker.stop();
    workers.splice(workers.indexOf(worker), 1);
  });

  test('SENTINEL FAILOVER, then the master killed by PID: the worker (and its heartbeat thread) and the producer follow the new master and go on', async () => {
    const app = sentinelApp('sentinel-follow');
    app.task('sentinel.mul', (a: number, b: number) => a * b);
    const logLines: string[] = [];
    const logStream = new Writable({ write: (chunk, _enc, done) => (logLines.push(...String(chunk).split('\n').filter(Boolean)), done()) });
    const worker = new Worker(app, { concurrency: 2, logger: pino({ level: 'info' }, logStream) });
    workers.push(worker);
    await worker.start();
    const run = async (a: number) => (await app.sendTask('sentinel.mul', [a, 3], {}, { retryPolicy: { maxRetries: 100, intervalStart: 0.1, intervalStep: 0.1, intervalMax: 0.5 } })).get({ timeout: 60_000 });
    assert.equal(await run(1), 3);
    // The consumer's liveness entry (beaten by the heartbeat thread over its own raw socket) must move to the new master.
    const beatsOnMaster = async (since: number) =>
      until('a heartbeat on the new master', async () => {
        const c = await masterClient(0);
        const scores = (await c.zrange('_celeriac.consumers', 0, -1, 'WITHSCORES')).filter((_, i) => i % 2 === 1).map(Number);
        return scores.some((s) => s > since) ? true : undefined;
      });

    const manual = await topo.failover();
    assert.notEqual(manual.to, manual.from);
    assert.equal(await run(2), 6);
    const afterFailover = Date.now() + 10_000; // ttl = 5 beats of 2 s: a newer beat scores later than this
    await beatsOnMaster(afterFailover);

    const killed = await topo.killMaster();
    assert.notEqual(killed.to, killed.from);
    assert.equal(await run(4), 12);
    await beatsOnMaster(Date.now() + 10_000);
    // The killed node comes back empty; the sentinels make it a replica of the new master.
    await topo.nodes.find((n) => n.port === killed.from)!.restart();
    await topo.settled(2);
    assert.equal(await run(5), 15);
    // The beats came from the heartbeat thread all along (it never died and left the loop beating).
    assert.deepEqual(logLines.filter((l) => /Heartbeat: .*beating from the event loop/.test(l)), []);
    assert.ok(logLines.some((l) => /Connection to broker sentinel:\/\/:\*\*\*\*@.* lost/.test(l)), 'the outage was reported, masked');
    assert.ok(!logLines.some((l) => l.includes(MASTER_PASSWORD) || l.includes(SENTINEL_PASSWORD)), 'no password in the logs');
    await worker.stop();
    workers.splice(workers.indexOf(worker), 1);
  });

  test('replica wait: with the replicas stopped a publish does not resolve (ReplicationWaitError), with waitForReplicas 0 it does; the cost of WAIT', async () => {
    const waiting = sentinelApp('sentinel-wait', { taskDefaultQueue: 'wait-q' });
    const unsafe = sentinelApp('sentinel-nowait', { taskDefaultQueue: 'wait-q', brokerTransportOptions: { ...topo.transportOptions(), waitForReplicas: 0 } });
    // Cost, both on the same topology now (ratio within one run; no bound asserted).
    const timed = async (app: Celeriac, n: number) => {
      const cpu = process.cpuUsage();
      const t = performance.now();
      for (let i = 0; i < n; i += 50) await Promise.all(Array.from({ length: 50 }, (_, k) => app.sendTask('sentinel.none', [i + k])));
      const used = process.cpuUsage(cpu);
      return { ms: performance.now() - t, cpuUsPerTask: (used.user + used.system) / n };
    };
    await timed(waiting, 100);
    await timed(unsafe, 100); // warm both
    const ratios: string[] = [];
    const cpu: string[] = [];
    for (let round = 0; round < 3; round++) {
      const withWait = await timed(waiting, 1000);
      const without = await timed(unsafe, 1000);
      ratios.push(`${withWait.ms.toFixed(0)}/${without.ms.toFixed(0)} ms = ×${(withWait.ms / without.ms).toFixed(2)}`);
      cpu.push(`${withWait.cpuUsPerTask.toFixed(0)}/${without.cpuUsPerTask.toFixed(0)}`);
    }
    console.log(
      `replica wait cost, 3 alternating rounds of 1000 publishes (50 in flight), with WAIT 1 / without: ${ratios.join(', ')}; ` +
        `CPU µs/task ${cpu.join(', ')}; load ${loadavg()[0]!.toFixed(1)}`,
    );

    const replicas = (await Promise.all(topo.nodes.map(async (n) => ((await topo.masterPort()) === n.port ? null : n)))).filter((n) => n !== null);
    for (const r of replicas) process.kill(r.pid()!, 'SIGSTOP');
    try {
      const started = Date.now();
      await assert.rejects(waiting.sendTask('sentinel.none', ['waited'], {}, { retry: false }), (err: Error) => {
        assert.match(err.message, /0 of 1 replica\(s\) acknowledged it within 1000 ms \(WAIT\)/);
        return true;
      });
      assert.ok(Date.now() - started >= 900, 'the publish waited for the replica');
      // A batch (one MULTI/EXEC) waits the same way.
      await assert.rejects(waiting.sendMany([{ name: 'sentinel.none', args: [1], options: { retry: false } }, { name: 'sentinel.none', args: [2] }]), /0 of 1 replica\(s\)/);
      await unsafe.sendTask('sentinel.none', ['unwaited'], {}, { retry: false }); // resolves: on the master only
    } finally {
      for (const r of replicas) process.kill(r.pid()!, 'SIGCONT');
    }
    await topo.settled(2);
    const c = await masterClient(0);
    await c.del('wait-q');
  });

  for (const fault of ['killed master', 'SENTINEL FAILOVER'] as const) {
    test(`fault test, ${fault}: 2,000 tasks published and consumed (acks late) during the failover; every resolved publish runs`, async () => {
      const N = 2000;
      const queue = `fault-${fault === 'killed master' ? 'kill' : 'manual'}`;
      const app = sentinelApp(`sentinel-fault-${queue}`, { resultBackend: null, taskAcksLate: true, taskDefaultQueue: queue });
      const runs = new Map<number, number>();
      app.task('fault.run', async (i: number) => {
        runs.set(i, (runs.get(i) ?? 0) + 1);
        await sleep(1);
      });
      const worker = new Worker(app, { concurrency: 8, logLevel: 'error' });
      workers.push(worker);
      await worker.start();
      const resolved = new Set<number>();
      const failed: number[] = [];
      const policy = { maxRetries: 200, intervalStart: 0.1, intervalStep: 0.1, intervalMax: 0.5 };
      const producing = (async () => {
        for (let i = 0; i < N; i += 10) {
          await Promise.all(
            Array.from({ length: 10 }, async (_, k) => {
              try {
                await app.sendTask('fault.run', [i + k], {}, { retryPolicy: policy });
                resolved.add(i + k);
              } catch {
                failed.push(i + k);
              }
            }),
          );
        }
      })();
      await until('a quarter of the publishes to resolve and a task to run', async () => (resolved.size >= N / 4 && runs.size > 0 ? true : undefined), 60_000);
      const atFault = resolved.size;
      const switched = fault === 'killed master' ? await topo.killMaster() : await topo.failover();
      const afterFault = resolved.size;
      await producing;
      const deadline = Date.now() + 120_000;
      const missing = () => [...resolved].filter((i) => !runs.has(i));
      while (missing().length > 0 && Date.now() < deadline) await sleep(100);
      const lost = missing();
      const twice = [...runs.values()].filter((n) => n > 1).length;
      console.log(
        `sentinel fault test (${fault}, master ${switched.from} → ${switched.to}): ${resolved.size}/${N} publishes resolved ` +
          `(${atFault} before the fault, ${afterFault - atFault} while it happened), ${failed.length} failed after retries; ` +
          `${runs.size} distinct tasks ran, ${twice} ran more than once, ${lost.length} resolved tasks never ran`,
      );
      assert.deepEqual(lost.slice(0, 20), [], `${lost.length} resolved tasks never ran`);
      assert.equal(failed.length, 0, 'every publish got through once the new master was there');
      assert.equal(resolved.size, N);
      await worker.stop();
      workers.splice(workers.indexOf(worker), 1);
      if (fault === 'killed master') await topo.nodes.find((n) => n.port === switched.from)!.restart();
      await topo.settled(2);
    });
  }

  describe('Python Celery 5.2 over the same sentinels', { skip: pySkip ?? false }, () => {
    const env = () => {
      const e = { INTEROP_BROKER_URL: topo.url(0), INTEROP_BACKEND_URL: topo.url(1), INTEROP_RECORD_URL: '', SENTINEL_MASTER: MASTER_NAME, SENTINEL_PASSWORD };
      return e as InteropEnv;
    };

    test('a Python producer (sentinel:// + master_name) sends a task our worker runs; Python reads the result through Sentinel', async () => {
      const app = sentinelApp('sentinel-py-in');
      app.task('ts.sentinel_square', (x: number) => x * x);
      const worker = new Worker(app, { concurrency: 2, logLevel: 'error' });
      workers.push(worker);
      await worker.start();
      const out = await runPythonProducer<{ id: string; result: number }>('send', env(), ['12'], 60_000, 'sentinel_peer.py');
      assert.equal(out.result, 144);
      await worker.stop();
      workers.splice(workers.indexOf(worker), 1);
    });

    test('our producer sends a task a Python worker (kombu sentinel transport) runs; we read its result through Sentinel', async () => {
      const py = await startPythonWorker({ env: env(), module: 'sentinel_peer', hostname: 'py@sentinel' });
      peers.push(py);
      const app = sentinelApp('sentinel-py-out');
      const result = await app.sendTask('py.sentinel_double', [21]);
      assert.deepEqual(await result.get({ timeout: 30_000 }), { doubled: 42, by: 'py' });
    });
  });
});
