/**
 * Remote control (kombu's pidbox) and events over a real RabbitMQ, against real
 * Python Celery 5.2, both ways: the pidbox queues and exchanges we declare are the
 * ones Python declares (same names, types and arguments), Python's `celery
 * inspect` / `control` / `status` / `events --dump` see a Celeriac worker, and
 * `celeriac inspect` / `status`, `app.control` and `app.events.receiver()` see a
 * Python worker. Results go to Redis.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { createApp, type Celeriac, type CeleryEvent } from '../packages/core/src/index.ts';
import { runCli, startCli } from './helpers/cli.ts';
import { pythonCeleryMissing, runCeleryCli, startCeleriacWorker, startCeleryCli, startPythonWorker, type InteropEnv, type PeerProcess } from './helpers/python-celery.ts';
import { rabbitmqMissing, startRabbitMQ, type RabbitServer } from './helpers/rabbitmq.ts';
import { missing, REDIS_SERVER, startRedis, type RedisServer } from './helpers/services.ts';
import { waitFor } from './helpers/worker-process.ts';

const skip = rabbitmqMissing() ?? missing(REDIS_SERVER, 'apt-get install redis-server') ?? pythonCeleryMissing();
const tsNode = 'ts@amqpctl';
const pyNode = 'py@amqpctl';

let rabbit: RabbitServer | undefined;
let redis: RedisServer | undefined;
let env: InteropEnv;
let tsWorker: PeerProcess | undefined;
let pyWorker: PeerProcess | undefined;
let app: Celeriac;

/** The last line of a `--json` run, parsed. */
const lastJson = (stdout: string): unknown => JSON.parse(stdout.trim().split('\n').pop()!);

/** `rabbitmqctl list_<what>` rows as whitespace-split columns, by first column. */
async function listRows(what: 'queues' | 'exchanges', columns: string[]): Promise<Map<string, string>> {
  const out = await rabbit!.ctl([`list_${what}`, '-q', '--no-table-headers', ...columns]);
  const rows = new Map<string, string>();
  for (const line of out.trim().split('\n')) {
    const [name, ...rest] = line.trim().split(/\t/);
    if (name) rows.set(name, rest.join('\t'));
  }
  return rows;
}

describe('remote control and events with Python Celery 5.2 over RabbitMQ', { skip: skip ?? false }, () => {
  before(async () => {
    if (skip) return;
    [rabbit, redis] = await Promise.all([startRabbitMQ(), startRedis()]);
    env = { INTEROP_BROKER_URL: rabbit.url, INTEROP_BACKEND_URL: redis.url(1), INTEROP_RECORD_URL: redis.url(2) };
    [tsWorker, pyWorker] = await Promise.all([
      startCeleriacWorker({ app: 'test/apps/control-app.ts', env, hostname: tsNode, concurrency: 1, queues: ['ts'], extraArgs: ['-E'] }),
      startPythonWorker({ env, hostname: pyNode, queues: ['py'], extraArgs: ['-E'] }),
    ]);
    app = createApp('amqp-control-client', { brokerUrl: env.INTEROP_BROKER_URL, resultBackend: env.INTEROP_BACKEND_URL });
  });

  after(async () => {
    await app?.close();
    await Promise.all([tsWorker?.stop(), pyWorker?.stop()]);
    await Promise.all([rabbit?.stop(), redis?.stop()]);
  });

  test('our pidbox queue and exchanges are declared exactly as Python\'s (type, durability, auto-delete, x-message-ttl, x-expires)', async () => {
    const queues = await listRows('queues', ['name', 'durable', 'auto_delete', 'exclusive', 'arguments']);
    const ours = queues.get(`${tsNode}.celery.pidbox`);
    const theirs = queues.get(`${pyNode}.celery.pidbox`);
    assert.ok(ours, `our pidbox queue is missing: ${JSON.stringify([...queues.keys()])}`);
    assert.ok(theirs, `Python's pidbox queue is missing: ${JSON.stringify([...queues.keys()])}`);
    assert.equal(ours, theirs);
    assert.match(ours, /^false\ttrue\tfalse\t/); // non-durable, auto-delete, not exclusive
    assert.match(ours, /"x-message-ttl",300000/);
    assert.match(ours, /"x-expires",10000/);
    const exchanges = await listRows('exchanges', ['name', 'type', 'durable', 'auto_delete']);
    assert.equal(exchanges.get('celery.pidbox'), 'fanout\tfalse\tfalse');
    assert.equal(exchanges.get('celeryev'), 'topic\ttrue\tfalse');
  });

  test('Python `celery inspect ping` and `celery status` see the Celeriac worker; `celeriac inspect ping` and `celeriac status` see the Python one', async () => {
    const ping = await runCeleryCli(env, ['inspect', 'ping', '-d', tsNode, '--json']);
    assert.equal(ping.code, 0, ping.stderr);
    assert.deepEqual(lastJson(ping.stdout), { [tsNode]: { ok: 'pong' } });
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
    assert.match(ourStatus.stdout, new RegExp(`${pyNode}: OK`));
    assert.match(ourStatus.stdout, /2 nodes online/);
    // The liveness probe: a node that does not answer gives a non-zero exit.
    const absent = await runCli(['inspect', 'ping', '-d', 'gone@nowhere', '-t', '0.5', '-b', env.INTEROP_BROKER_URL]);
    assert.equal(absent.code, 69);
    assert.match(absent.stderr, /No nodes replied within time constraint/);
  });

  test('a revoke from Python (`celery control revoke`) discards our queued task (REVOKED); Python `celery inspect active / stats` read our worker', async () => {
    const running = await app.sendTask('ctl.sleep', [25_000], {}, { queue: 'ts' });
    const queuedId = randomUUID();
    const queued = await app.sendTask('ctl.add', [1, 1], {}, { taskId: queuedId, queue: 'ts' });
    await waitFor(async () => {
      const r = (await app.control.inspect({ destination: [tsNode], timeout: 500 }).reserved()) as Record<string, { id: string }[]> | null;
      return !!r?.[tsNode]?.some((t) => t.id === queuedId);
    }, 10_000, 'the add task reserved behind the sleep (concurrency 1)');
    const revoke = await runCeleryCli(env, ['control', 'revoke', queuedId, '-d', tsNode, '--json']);
    assert.equal(revoke.code, 0, revoke.stderr);
    assert.deepEqual(lastJson(revoke.stdout), [{ [tsNode]: { ok: `tasks ${queuedId} flagged as revoked` } }]);
    const active = await runCeleryCli(env, ['inspect', 'active', '-d', tsNode, '--json']);
    assert.equal(active.code, 0, active.stderr);
    const list = (lastJson(active.stdout) as Record<string, { id: string; name: string }[]>)[tsNode]!;
    assert.deepEqual(list.map((t) => [t.id, t.name]), [[running.id, 'ctl.sleep']]);
    const stats = await runCeleryCli(env, ['inspect', 'stats', '-d', tsNode, '--json']);
    assert.equal(stats.code, 0, stats.stderr);
    const s = (lastJson(stats.stdout) as Record<string, { pool: Record<string, unknown>; broker: Record<string, unknown>; pid: number }>)[tsNode]!;
    assert.equal(s.pool['max-concurrency'], 1);
    assert.equal(s.broker.transport, 'amqp');
    assert.equal(s.pid, tsWorker!.pid);
    // The sleep must still be running when the revoke landed, or this proves nothing.
    assert.equal(await running.state, 'PENDING', 'the sleep finished before the revoke: the add was not queued any more');
    assert.equal(await running.get({ timeout: 60_000 }), 25_000);
    await assert.rejects(queued.get({ timeout: 10_000 }), (err: Error) => err.name === 'TaskRevokedError');
    assert.equal(await queued.state, 'REVOKED');
    assert.match(tsWorker!.output(), new RegExp(`Discarding revoked task: ctl\\.add\\[${queuedId}\\]`));
  });

  test('a revoke from us (app.control.revoke) discards the Python worker\'s waiting task (REVOKED); inspect registered reads it', async () => {
    // Held by the Python worker for its countdown: reserved there when the revoke arrives.
    const queuedId = randomUUID();
    const queued = await app.sendTask('tasks.add', [2, 2], {}, { taskId: queuedId, queue: 'py', countdown: 4 });
    await waitFor(async () => {
      const r = (await app.control.inspect({ destination: [pyNode], timeout: 500 }).scheduled()) as Record<string, { request: { id: string } }[]> | null;
      return !!r?.[pyNode]?.some((t) => t.request.id === queuedId);
    }, 10_000, 'the add task scheduled on the Python worker').catch((err: Error) => assert.fail(`${err.message}\n${pyWorker!.output().slice(-3000)}`));
    const replies = await app.control.revoke(queuedId, { reply: true, destination: [pyNode], timeout: 2_000 });
    assert.deepEqual(replies, [{ [pyNode]: { ok: `tasks ${queuedId} flagged as revoked` } }]);
    await assert.rejects(queued.get({ timeout: 15_000 }), (err: Error) => err.name === 'TaskRevokedError');
    assert.equal(await queued.state, 'REVOKED');
    assert.match(pyWorker!.output(), new RegExp(`Discarding revoked task: tasks\\.add\\[${queuedId}\\]`));
    const registered = (await app.control.inspect({ destination: [pyNode], timeout: 2_000 }).registered()) as Record<string, string[]>;
    assert.ok(registered[pyNode]!.includes('tasks.add'), JSON.stringify(registered));
    // The reply queue is gone once the call returned (auto-delete + deleted on close).
    const queues = await listRows('queues', ['name']);
    assert.deepEqual([...queues.keys()].filter((q) => q.endsWith('.reply.celery.pidbox')), []);
  });

  test('Python `celery events --dump` reads our worker\'s events from the celeryev topic exchange (task received/succeeded, heartbeat)', async () => {
    const dump = startCeleryCli(env, ['events', '--dump']);
    try {
      await waitFor(() => /Dumping events|-> evdump/i.test(dump.output()), 20_000, 'celery events --dump to start');
      // Its queue exists once it consumes: wait for it, or the first events go nowhere.
      await waitFor(async () => [...(await listRows('queues', ['name'])).keys()].some((q) => q.startsWith('celeryev.')), 10_000, 'the dump\'s celeryev queue');
      const r = await app.sendTask('ctl.add', [20, 22], {}, { queue: 'ts' });
      assert.equal(await r.get({ timeout: 10_000 }), 42);
      await waitFor(() => new RegExp(`^${tsNode} \\[[^\\]]+\\] task succeeded: ctl\\.add\\(${r.id}\\) args=\\(20, 22\\) kwargs=\\{\\} .*result=42`, 'm').test(dump.output()), 10_000, `task-succeeded in the dump:\n${dump.output().slice(-2000)}`);
      assert.match(dump.output(), new RegExp(`^${tsNode} \\[[^\\]]+\\] task received: ctl\\.add\\(${r.id}\\)`, 'm'));
      await waitFor(() => new RegExp(`^${tsNode} \\[[^\\]]+\\] heartbeat: active=\\d+, .*freq=2(\\.0)?,`, 'm').test(dump.output()), 10_000, 'worker-heartbeat in the dump');
    } finally {
      await dump.stop();
    }
  });

  test('integer headers reach Python as py-amqp reads them: a task with time limits 300/600 s (amqplib would write short ints, read by py-amqp as strings)', async () => {
    const r = await app.sendTask('tasks.add', [300, 600], {}, { queue: 'py', timeLimit: 600, softTimeLimit: 300 });
    assert.equal(await r.get({ timeout: 10_000 }), 900);
    assert.doesNotMatch(pyWorker!.output(), /Unrecoverable error/);
  });

  test('pool_grow / pool_shrink / autoscale from either side: Python `celery control pool_grow 2`, `celeriac control pool_shrink 2`, Celery\'s replies', async () => {
    const grow = await runCeleryCli(env, ['control', 'pool_grow', '2', '-d', tsNode, '--json']);
    assert.equal(grow.code, 0, grow.stderr);
    assert.deepEqual(lastJson(grow.stdout), [{ [tsNode]: { ok: 'pool will grow' } }]);
    const stats = (await app.control.inspect({ destination: [tsNode], timeout: 2_000 }).stats()) as Record<string, { pool: Record<string, unknown>; prefetch_count: number }>;
    assert.equal(stats[tsNode]!.pool['max-concurrency'], 3);
    assert.equal(stats[tsNode]!.prefetch_count, 12);
    const shrink = await runCli(['control', 'pool_shrink', '2', '-d', tsNode, '--json', '-b', env.INTEROP_BROKER_URL]);
    assert.equal(shrink.code, 0, shrink.stderr);
    assert.deepEqual(JSON.parse(shrink.stdout), { [tsNode]: { ok: 'pool will shrink' } });
    const scale = await runCli(['control', 'autoscale', '4', '2', '-d', tsNode, '--json', '-b', env.INTEROP_BROKER_URL]);
    assert.deepEqual(JSON.parse(scale.stdout), { [tsNode]: { error: "ValueError('Autoscale not enabled')" } });
    const after = (await app.control.inspect({ destination: [tsNode], timeout: 2_000 }).stats()) as Record<string, { pool: Record<string, unknown> }>;
    assert.equal(after[tsNode]!.pool['max-concurrency'], 1);
  });

  test('our receiver reads the Python worker\'s events (its own celeryev.<uuid> queue, bound with #)', async () => {
    const receiver = app.events.receiver();
    const seen: CeleryEvent[] = [];
    receiver.on('*', (e) => seen.push(e));
    await receiver.start();
    try {
      const r = await app.sendTask('tasks.add', [4, 5], {}, { queue: 'py' });
      assert.equal(await r.get({ timeout: 10_000 }), 9);
      await waitFor(() => seen.some((e) => e.type === 'task-succeeded' && e.uuid === r.id), 10_000, 'task-succeeded from Python');
      const succeeded = seen.find((e) => e.type === 'task-succeeded' && e.uuid === r.id)!;
      assert.equal(succeeded.hostname, pyNode);
      assert.equal(succeeded.result, '9');
      assert.ok(seen.some((e) => e.type === 'task-received' && e.uuid === r.id && e.name === 'tasks.add'));
      assert.equal(receiver.state.tasks.get(r.id)!.state, 'SUCCESS');
      assert.equal(receiver.state.tasks.get(r.id)!.worker, pyNode);
      // And ours, on the same stream.
      const t = await app.sendTask('ctl.add', [1, 2], {}, { queue: 'ts' });
      assert.equal(await t.get({ timeout: 10_000 }), 3);
      await waitFor(() => seen.some((e) => e.type === 'task-succeeded' && e.uuid === t.id && e.hostname === tsNode), 10_000, 'our task-succeeded');
      const queues = [...(await listRows('queues', ['name'])).keys()];
      assert.ok(queues.some((q) => /^celeryev\.[0-9a-f-]{36}$/.test(q)), JSON.stringify(queues));
    } finally {
      await receiver.stop();
    }
  });

  test('`celeriac events --dump` over RabbitMQ prints both workers\' task events as JSON lines', async () => {
    const events = startCli(['events', '--dump', '-b', env.INTEROP_BROKER_URL]);
    try {
      await events.waitFor(/celeriac events: listening on amqp:/, 30_000);
      const [ours, theirs] = await Promise.all([app.sendTask('ctl.add', [5, 6], {}, { queue: 'ts' }), app.sendTask('tasks.add', [7, 8], {}, { queue: 'py' })]);
      assert.deepEqual(await Promise.all([ours.get({ timeout: 10_000 }), theirs.get({ timeout: 10_000 })]), [11, 15]);
      await events.waitFor(new RegExp(`"uuid":"${ours.id}".*"type":"task-succeeded"`), 10_000);
      await events.waitFor(new RegExp(`"uuid":"${theirs.id}".*"type":"task-succeeded"`), 10_000);
      const lines = events.stdout().trim().split('\n').map((l) => JSON.parse(l) as CeleryEvent);
      assert.equal(lines.find((e) => e.uuid === ours.id && e.type === 'task-succeeded')!.hostname, tsNode);
      assert.equal(lines.find((e) => e.uuid === theirs.id && e.type === 'task-succeeded')!.hostname, pyNode);
    } finally {
      await events.stop();
    }
  });

  test('after a RabbitMQ restart the worker\'s mailbox is consumed again: it answers ping (ours and Python\'s) without a restart of its own', async () => {
    await rabbit!.restart();
    await waitFor(async () => {
      const replies = await app.control.ping({ destination: [tsNode], timeout: 1_000 }).catch(() => []);
      return replies.length === 1;
    }, 60_000, 'our worker answering ping after the broker restart');
    const ping = await runCeleryCli(env, ['inspect', 'ping', '-d', tsNode, '--json']);
    assert.equal(ping.code, 0, ping.stderr);
    assert.deepEqual(lastJson(ping.stdout), { [tsNode]: { ok: 'pong' } });
  });
});
