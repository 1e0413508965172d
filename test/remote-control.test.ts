/**
 * Remote control (Celery's pidbox): `app.control` and the worker's mailbox, on
 * memory:// in-process, and on a real redis-server against real Python Celery 5.2
 * — Python's `celery inspect` / `control` / `status` see a Celeriac worker, and
 * Celeriac's `app.control` / `celeriac inspect` see a Python worker, both ways.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { Redis } from 'ioredis';
import { createApp, Worker, type Celeriac } from '../packages/core/src/index.ts';
import { runCli } from './helpers/cli.ts';
import { fixture } from './helpers/fixtures.ts';
import { interopEnv, pythonCeleryMissing, runCeleryCli, startCeleriacWorker, startPythonWorker, type InteropEnv, type PeerProcess } from './helpers/python-celery.ts';
import { missing, REDIS_SERVER, startRedis, type RedisServer } from './helpers/services.ts';
import { waitFor } from './helpers/worker-process.ts';
import { scheduledEta } from '../packages/core/src/control/request-info.ts';

describe('remote control on memory:// (in-process worker)', () => {
  let app: Celeriac;
  let worker: Worker;
  const node = 'w1@control-test';

  before(async () => {
    app = createApp('control-memory', { brokerUrl: 'memory://control-test', workerHeartbeatThread: false });
    app.task('ctl.sleep', async (ms: number) => {
      await new Promise((r) => setTimeout(r, ms));
      return ms;
    });
    app.task('ctl.add', (x: number, y: number) => x + y);
    worker = new Worker(app, { hostname: node, concurrency: 2, logLevel: 'error' });
    await worker.start();
  });

  after(async () => {
    await worker.stop();
    await app.close();
  });

  test('ping: one reply per worker, { ok: "pong" }; a destination nobody has: no reply, inspect gives null', async () => {
    assert.deepEqual(await app.control.ping({ timeout: 300 }), [{ [node]: { ok: 'pong' } }]);
    assert.deepEqual(await app.control.ping({ timeout: 200, destination: ['nobody@nowhere'] }), []);
    assert.equal(await app.control.inspect({ destination: ['nobody@nowhere'], timeout: 200 }).ping(), null);
    assert.deepEqual(await app.control.inspect({ pattern: 'w1@*', timeout: 300 }).ping(), { [node]: { ok: 'pong' } });
    assert.equal(await app.control.inspect({ pattern: 'w2@*', timeout: 200 }).ping(), null);
  });

  test('registered lists the tasks (sorted, built-ins hidden); active shows the running task as Request.info()', async () => {
    assert.deepEqual(await app.control.inspect({ timeout: 300 }).registered(), { [node]: ['ctl.add', 'ctl.sleep'] });
    const r = await app.sendTask('ctl.sleep', [800]);
    await waitFor(async () => {
      const active = (await app.control.inspect({ timeout: 200 }).active()) as Record<string, { id: string }[]> | null;
      return !!active?.[node]?.some((t) => t.id === r.id);
    }, 5_000, 'the sleep task in inspect active');
    const active = (await app.control.inspect({ timeout: 300 }).active()) as Record<string, Record<string, unknown>[]>;
    const info = active[node]!.find((t) => t.id === r.id)!;
    assert.equal(info.name, 'ctl.sleep');
    assert.equal(info.type, 'ctl.sleep');
    assert.deepEqual(info.args, [800]);
    assert.equal(info.hostname, node);
    assert.equal(info.acknowledged, true);
    assert.equal(typeof info.time_start, 'number');
    assert.equal(info.worker_pid, process.pid);
    assert.equal(await r.get({ timeout: 5_000 }), 800);
    const stats = (await app.control.inspect({ timeout: 300 }).stats()) as Record<string, { total: Record<string, number>; pool: Record<string, unknown>; pid: number }>;
    assert.equal(stats[node]!.total['ctl.sleep'], 1);
    assert.equal(stats[node]!.pool['max-concurrency'], 2);
    assert.equal(stats[node]!.pid, process.pid);
  });

  test('registered with task attributes (Celery\'s taskinfoitems): `name [name=name]`; unset attributes are left out (celery t/integration test_registered)', async () => {
    assert.deepEqual(await app.control.inspect({ timeout: 300 }).registered('name'), { [node]: ['ctl.add [name=ctl.add]', 'ctl.sleep [name=ctl.sleep]'] });
    assert.deepEqual(await app.control.inspect({ timeout: 300 }).registered('rate_limit'), { [node]: ['ctl.add', 'ctl.sleep'] });
    // The raw request, as Python's inspect().registered('name', 'ignore_result') sends it.
    const replies = await app.control.broadcast('registered', { arguments: { taskinfoitems: ['name', 'rate_limit'] }, reply: true, timeout: 300 });
    assert.deepEqual(replies, [{ [node]: ['ctl.add [name=ctl.add]', 'ctl.sleep [name=ctl.sleep]'] }]);
  });

  test('scheduled: the eta as Celery writes it, aware isoformat with microseconds (celery t/integration test_scheduled)', async () => {
    const eta = new Date(Date.now() + 60_000);
    const r = await app.sendTask('ctl.add', [1, 2], {}, { eta });
    await waitFor(async () => {
      const s = (await app.control.inspect({ timeout: 200 }).scheduled()) as Record<string, { request: { id: string } }[]> | null;
      return !!s?.[node]?.some((x) => x.request.id === r.id);
    }, 5_000, 'the eta task in inspect scheduled');
    const scheduled = (await app.control.inspect({ timeout: 300 }).scheduled()) as Record<string, { eta: string; priority: number; request: { id: string } }[]>;
    const entry = scheduled[node]!.find((x) => x.request.id === r.id)!;
    const ms = String(eta.getUTCMilliseconds()).padStart(3, '0');
    assert.equal(entry.eta, ms === '000' ? `${eta.toISOString().slice(0, 19)}+00:00` : `${eta.toISOString().slice(0, 19)}.${ms}000+00:00`);
    assert.equal(entry.priority, 6);
    await app.control.revoke(r.id);
  });

  test('scheduledEta keeps a Python eta header as is (microseconds, offset) and formats anything else as aware UTC', () => {
    const date = new Date('2026-12-02T09:19:45.213Z');
    assert.equal(scheduledEta('2026-12-02T09:19:45.213599+00:00', date), '2026-12-02T09:19:45.213599+00:00');
    assert.equal(scheduledEta('2026-12-02T11:19:45.213599+02:00', date), '2026-12-02T11:19:45.213599+02:00');
    // Python's datetime.utcnow() + timedelta(...) goes out naive: Celery makes it aware as UTC.
    assert.equal(scheduledEta('2026-12-02T09:19:45.213599', date), '2026-12-02T09:19:45.213599+00:00');
    assert.equal(scheduledEta('2026-12-02T09:19:45.000000Z', date), '2026-12-02T09:19:45+00:00');
    assert.equal(scheduledEta('2026-12-02T09:19:45.213Z', date), '2026-12-02T09:19:45.213000+00:00');
    assert.equal(scheduledEta(undefined, null), null);
  });

  test('revoke: a task revoked before it arrives is discarded with state REVOKED (TaskRevokedError "revoked") and never runs', async () => {
    const id = randomUUID();
    assert.deepEqual(await app.control.revoke(id), []); // fire-and-forget, as Celery
    await waitFor(async () => ((await app.control.inspect({ timeout: 200 }).revoked()) as Record<string, string[]> | null)?.[node]?.includes(id) ?? false, 3_000, 'the id in inspect revoked');
    const r = await app.sendTask('ctl.add', [1, 2], {}, { taskId: id });
    await assert.rejects(r.get({ timeout: 5_000 }), (err: Error) => err.name === 'TaskRevokedError' && /revoked/.test(err.message));
    assert.equal(await r.state, 'REVOKED');
    // Another id still runs.
    assert.equal(await (await app.sendTask('ctl.add', [2, 3])).get({ timeout: 5_000 }), 5);
  });

  test('an unknown command gets an error reply naming it, and the worker goes on', async () => {
    const replies = await app.control.broadcast('no_such_command', { reply: true, timeout: 300 });
    assert.deepEqual(replies, [{ [node]: { error: 'No such command: no_such_command' } }]);
    assert.deepEqual(await app.control.ping({ timeout: 300 }), [{ [node]: { ok: 'pong' } }]);
  });
});

const skip = missing(REDIS_SERVER, 'apt-get install redis-server') ?? pythonCeleryMissing();

describe('remote control with Python Celery 5.2 on Redis', { skip: skip ?? false }, () => {
  let redis: RedisServer | undefined;
  let env: InteropEnv;
  let tsWorker: PeerProcess | undefined;
  let pyWorker: PeerProcess | undefined;
  let app: Celeriac;
  const tsNode = 'ts@control';
  const pyNode = 'py@control';

  before(async () => {
    if (skip) return;
    redis = await startRedis();
    env = interopEnv(redis);
    [tsWorker, pyWorker] = await Promise.all([
      startCeleriacWorker({ app: 'test/apps/control-app.ts', env, hostname: tsNode, concurrency: 2, queues: ['ts'] }),
      startPythonWorker({ env, hostname: pyNode, queues: ['py'] }),
    ]);
    app = createApp('control-client', { brokerUrl: env.INTEROP_BROKER_URL, resultBackend: env.INTEROP_BACKEND_URL });
  });

  after(async () => {
    await app?.close();
    await Promise.all([tsWorker?.stop(), pyWorker?.stop()]);
    await redis?.stop();
  });

  test('our ping request is Celery 5.2\'s on the wire (capture p01): PUBLISH /0.celery.pidbox, same envelope and body keys', async () => {
    const sub = new Redis(env.INTEROP_BROKER_URL);
    try {
      const got = new Promise<{ channel: string; raw: string }>((resolve) => sub.on('message', (channel: string, raw: string) => resolve({ channel, raw })));
      await sub.subscribe('/0.celery.pidbox');
      await app.control.ping({ timeout: 300 });
      const { channel, raw } = await got;
      const capture = fixture<{ redis_commands: { cmd: string[] }[] }>('pidbox-redis/p01_inspect_ping.json');
      const published = capture.redis_commands.find((c) => c.cmd[0] === 'PUBLISH')!.cmd;
      assert.equal(channel, published[1]);
      const ours = JSON.parse(raw);
      const theirs = JSON.parse(published[2]!);
      assert.deepEqual(Object.keys(ours), Object.keys(theirs));
      assert.deepEqual(Object.keys(ours.headers), Object.keys(theirs.headers));
      assert.deepEqual(Object.keys(ours.properties), Object.keys(theirs.properties));
      assert.deepEqual(ours.properties.delivery_info, theirs.properties.delivery_info);
      const body = JSON.parse(Buffer.from(ours.body, 'base64').toString());
      const theirBody = JSON.parse(Buffer.from(theirs.body, 'base64').toString());
      assert.deepEqual(Object.keys(body), Object.keys(theirBody));
      assert.equal(body.method, 'ping');
      assert.equal(body.reply_to.exchange, 'reply.celery.pidbox');
    } finally {
      sub.disconnect();
    }
  });

  test('Python `celery inspect ping` and `celery status` see the Celeriac worker; `celeriac inspect ping` sees the Python one', async () => {
    const ping = await runCeleryCli(env, ['inspect', 'ping', '-d', tsNode, '--json']);
    assert.equal(ping.code, 0, ping.stderr);
    assert.deepEqual(JSON.parse(ping.stdout.trim().split('\n').pop()!), { [tsNode]: { ok: 'pong' } });
    const status = await runCeleryCli(env, ['status']);
    assert.equal(status.code, 0, status.stderr);
    assert.match(status.stdout, new RegExp(`${tsNode}: OK`));
    assert.match(status.stdout, new RegExp(`${pyNode}: OK`));
    assert.match(status.stdout, /2 nodes online/);
    const ours = await runCli(['inspect', 'ping', '-d', pyNode, '--json', '-b', env.INTEROP_BROKER_URL]);
    assert.equal(ours.code, 0, ours.stderr);
    assert.deepEqual(JSON.parse(ours.stdout), { [pyNode]: { ok: 'pong' } });
    const ourStatus = await runCli(['status', '-b', env.INTEROP_BROKER_URL]);
    assert.equal(ourStatus.code, 0, ourStatus.stderr);
    assert.match(ourStatus.stdout, /2 nodes online/);
  });

  test('`celeriac inspect ping -d <absent node>` exits 69 with Celery\'s message (a liveness probe)', async () => {
    const run = await runCli(['inspect', 'ping', '-d', 'gone@nowhere', '-t', '0.5', '-b', env.INTEROP_BROKER_URL]);
    assert.equal(run.code, 69);
    assert.match(run.stderr, /No nodes replied within time constraint/);
  });

  test('Python `celery inspect stats / active / registered` read the Celeriac worker in Celery\'s shapes', async () => {
    const r = await app.sendTask('ctl.sleep', [8000], {}, { queue: 'ts' });
    await waitFor(async () => {
      const a = (await app.control.inspect({ destination: [tsNode], timeout: 300 }).active()) as Record<string, { id: string }[]> | null;
      return !!a?.[tsNode]?.some((t) => t.id === r.id);
    }, 5_000, 'the task running');
    const active = await runCeleryCli(env, ['inspect', 'active', '-d', tsNode, '--json']);
    assert.equal(active.code, 0, active.stderr);
    const list = JSON.parse(active.stdout.trim().split('\n').pop()!)[tsNode] as Record<string, unknown>[];
    assert.equal(list.length, 1);
    assert.equal(list[0]!.id, r.id);
    assert.equal(list[0]!.name, 'ctl.sleep');
    const stats = await runCeleryCli(env, ['inspect', 'stats', '-d', tsNode, '--json']);
    assert.equal(stats.code, 0, stats.stderr);
    const s = JSON.parse(stats.stdout.trim().split('\n').pop()!)[tsNode];
    assert.equal(s.pool['max-concurrency'], 2);
    assert.equal(typeof s.pid, 'number');
    assert.equal(s.broker.transport, 'redis');
    const registered = await runCeleryCli(env, ['inspect', 'registered', '-d', tsNode, '--json']);
    assert.deepEqual(JSON.parse(registered.stdout.trim().split('\n').pop()!)[tsNode], ['ctl.add', 'ctl.sleep']);
    assert.equal(await r.get({ timeout: 20_000 }), 8000);
  });

  test('a revoke from Python stops our task: `celery control revoke <id>`, then the task is discarded with REVOKED', async () => {
    const id = randomUUID();
    const revoke = await runCeleryCli(env, ['control', 'revoke', id, '-d', tsNode, '--json']);
    assert.equal(revoke.code, 0, revoke.stderr);
    // `celery control --json` prints the reply list (inspect prints one merged object).
    assert.deepEqual(JSON.parse(revoke.stdout.trim().split('\n').pop()!), [{ [tsNode]: { ok: `tasks ${id} flagged as revoked` } }]);
    const r = await app.sendTask('ctl.add', [2, 2], {}, { taskId: id, queue: 'ts' });
    await assert.rejects(r.get({ timeout: 10_000 }), (err: Error) => err.name === 'TaskRevokedError');
    assert.equal(await r.state, 'REVOKED');
    assert.equal(await (await app.sendTask('ctl.add', [2, 2], {}, { queue: 'ts' })).get({ timeout: 10_000 }), 4);
  });

  test('a revoke from us stops theirs: app.control.revoke(id), then the Python worker discards the task with REVOKED', async () => {
    const id = randomUUID();
    const replies = await app.control.revoke(id, { reply: true, destination: [pyNode], timeout: 2_000 });
    assert.deepEqual(replies, [{ [pyNode]: { ok: `tasks ${id} flagged as revoked` } }]);
    const r = await app.sendTask('tasks.add', [2, 2], {}, { taskId: id, queue: 'py' });
    await assert.rejects(r.get({ timeout: 10_000 }), (err: Error) => err.name === 'TaskRevokedError');
    assert.equal(await r.state, 'REVOKED');
    const registered = (await app.control.inspect({ destination: [pyNode], timeout: 2_000 }).registered()) as Record<string, string[]>;
    assert.ok(registered[pyNode]!.includes('tasks.add'), JSON.stringify(registered));
  });
});

describe('revocation that survives: kept in the broker, learnt by workers that start later', { skip: skip ?? false }, () => {
  let redis: RedisServer | undefined;
  let env: InteropEnv;
  let app: Celeriac;

  before(async () => {
    if (skip) return;
    redis = await startRedis();
    env = interopEnv(redis);
    app = createApp('control-offline', { brokerUrl: env.INTEROP_BROKER_URL, resultBackend: env.INTEROP_BACKEND_URL });
  });

  after(async () => {
    await app?.close();
    await redis?.stop();
  });

  test('a task revoked while no worker is online is discarded (REVOKED) by a worker started afterwards', async () => {
    const id = randomUUID();
    // No worker exists: the broadcast reaches nobody (Celery would lose this revoke).
    assert.deepEqual(await app.control.revoke(id), []);
    const r = await app.sendTask('ctl.add', [1, 1], {}, { taskId: id, queue: 'late' });
    const other = await app.sendTask('ctl.add', [1, 2], {}, { queue: 'late' });
    const worker = await startCeleriacWorker({ app: 'test/apps/control-app.ts', env, hostname: 'late@control', queues: ['late'] });
    try {
      await assert.rejects(r.get({ timeout: 10_000 }), (err: Error) => err.name === 'TaskRevokedError');
      assert.equal(await r.state, 'REVOKED');
      assert.equal(await other.get({ timeout: 10_000 }), 3);
      assert.match(worker.output(), new RegExp(`Discarding revoked task: ctl.add\\[${id}\\]`));
    } finally {
      await worker.stop();
    }
  });
});

describe('rate_limit and time_limit by remote control change the running worker', () => {
  test('rate_limit ctl.add 1/s spaces runs ≥ 1 s apart; unknown tasks and bad rates get Celery\'s error replies; time_limit sets the task\'s limits', async () => {
    const app = createApp('control-limits', { brokerUrl: 'memory://control-limits', workerHeartbeatThread: false });
    app.task('lim.add', (x: number, y: number) => x + y);
    const worker = new Worker(app, { hostname: 'lim@test', concurrency: 4, logLevel: 'error' });
    await worker.start();
    try {
      const set = await app.control.broadcast('rate_limit', { arguments: { task_name: 'lim.add', rate_limit: '1/s' }, reply: true, timeout: 500 });
      assert.deepEqual(set, [{ 'lim@test': { ok: 'new rate limit set successfully' } }]);
      assert.deepEqual(await app.control.broadcast('rate_limit', { arguments: { task_name: 'nope', rate_limit: '1/s' }, reply: true, timeout: 500 }), [{ 'lim@test': { error: 'unknown task' } }]);
      const bad = (await app.control.broadcast('rate_limit', { arguments: { task_name: 'lim.add', rate_limit: 'fast' }, reply: true, timeout: 500 })) as { 'lim@test': { error?: string } }[];
      assert.match(bad[0]!['lim@test'].error ?? '', /Invalid rate limit string/);
      const t0 = Date.now();
      const results = await Promise.all([1, 2, 3].map((i) => app.sendTask('lim.add', [i, i])));
      assert.deepEqual(await Promise.all(results.map((r) => r.get({ timeout: 10_000 }))), [2, 4, 6]);
      assert.ok(Date.now() - t0 >= 1_900, `three runs at 1/s take at least ~2 s, took ${Date.now() - t0} ms`);
      const limits = await app.control.broadcast('time_limit', { arguments: { task_name: 'lim.add', soft: 5, hard: 10 }, reply: true, timeout: 500 });
      assert.deepEqual(limits, [{ 'lim@test': { ok: 'time limits set successfully' } }]);
      assert.equal(app.getTask('lim.add').options.timeLimit, 10);
      assert.equal(app.getTask('lim.add').options.softTimeLimit, 5);
    } finally {
      await worker.stop();
      await app.close();
    }
  });
});
