/**
 * Revocation that survives on RabbitMQ: revoked ids kept in the `celeriac.revoked`
 * stream queue (packages/core/src/brokers/amqp-revoked.ts), so a task revoked while
 * no worker is online is discarded by a worker that starts later, expired entries
 * are not applied, a revoke from Python's `celery control revoke` heard by our
 * worker is kept for workers that start after it, a Python worker on the same vhost
 * is not disturbed, and a broker that refuses the stream gives one warning and
 * today's behaviour. Results go to Redis.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { createApp, createBroker, type Celeriac, type ControlChannel } from '../packages/core/src/index.ts';
import { AmqpConnection } from '../packages/core/src/brokers/amqp-connection.ts';
import { AmqpRevokedStream, REVOKED_STREAM } from '../packages/core/src/brokers/amqp-revoked.ts';
import { parseAmqpUrls } from '../packages/core/src/brokers/amqp-url.ts';
import { pythonCeleryMissing, runCeleryCli, startCeleriacWorker, startPythonWorker, type InteropEnv, type PeerProcess } from './helpers/python-celery.ts';
import { rabbitmqMissing, type RabbitServer } from './helpers/rabbitmq.ts';
import { useRabbitMQ } from './helpers/rabbitmq-shared.ts';
import { missing, REDIS_SERVER, startRedis, type RedisServer } from './helpers/services.ts';
import { waitFor } from './helpers/worker-process.ts';

const skip = rabbitmqMissing() ?? missing(REDIS_SERVER, 'apt-get install redis-server') ?? pythonCeleryMissing();

let rabbit: RabbitServer | undefined;
let redis: RedisServer | undefined;
let env: InteropEnv;
let app: Celeriac;
const workers: PeerProcess[] = [];

/** A control channel of its own on `url` (closed by the caller's `close`). */
async function controlChannel(url: string): Promise<{ channel: ControlChannel; close(): Promise<void> }> {
  const broker = await createBroker(url);
  const channel = await broker.openControlChannel!();
  return { channel, close: () => broker.close() };
}

/** Revoked ids the stream holds now, read as a starting worker reads them. */
async function keptIds(): Promise<Map<string, number>> {
  const c = await controlChannel(env.INTEROP_BROKER_URL);
  try {
    return await c.channel.loadRevoked!();
  } finally {
    await c.close();
  }
}

describe('revoked ids kept in a RabbitMQ stream for workers that start later', { skip: skip ?? false }, () => {
  before(async () => {
    if (skip) return;
    [rabbit, redis] = await Promise.all([useRabbitMQ(), startRedis()]);
    env = { INTEROP_BROKER_URL: rabbit.url, INTEROP_BACKEND_URL: redis.url(1), INTEROP_RECORD_URL: redis.url(2) };
    app = createApp('amqp-revoked-client', { brokerUrl: env.INTEROP_BROKER_URL, resultBackend: env.INTEROP_BACKEND_URL });
  });

  after(async () => {
    await app?.close();
    await Promise.all(workers.map((w) => w.stop()));
    await Promise.all([rabbit?.stop(), redis?.stop()]);
  });

  test('a task revoked while no worker is online is discarded (REVOKED, never run) by a worker started later; an expired entry is not applied', async () => {
    const revokedId = randomUUID();
    const expiredId = randomUUID();
    const revoked = await app.sendTask('ctl.add', [1, 1], {}, { taskId: revokedId, queue: 'rq' });
    const expired = await app.sendTask('ctl.add', [2, 3], {}, { taskId: expiredId, queue: 'rq' });
    // No worker consumes 'rq' yet: nobody hears the broadcast, only the stream keeps it.
    assert.deepEqual(await app.control.revoke(revokedId, { reply: true, timeout: 300 }), []);
    const c = await controlChannel(env.INTEROP_BROKER_URL);
    await c.channel.persistRevoked!([expiredId], Date.now() - 1_000);
    await c.close();
    const queues = await rabbit!.ctl(['list_queues', '-q', '--no-table-headers', 'name', 'type', 'durable', 'arguments']);
    const row = queues.split('\n').find((l) => l.startsWith(`${REVOKED_STREAM}\t`));
    assert.ok(row, queues);
    assert.match(row, /\tstream\ttrue\t/);
    assert.match(row, /"x-max-age","10800s"/);

    const worker = await startCeleriacWorker({ app: 'test/apps/control-app.ts', env, hostname: 'ts1@revoked', concurrency: 1, queues: ['rq'] });
    workers.push(worker);
    assert.equal(await expired.get({ timeout: 20_000 }), 5, 'the expired revoke was applied');
    await assert.rejects(revoked.get({ timeout: 20_000 }), (err: Error) => err.name === 'TaskRevokedError');
    assert.equal(await revoked.state, 'REVOKED');
    assert.match(worker.output(), new RegExp(`Discarding revoked task: ctl\\.add\\[${revokedId}\\]`));
    assert.doesNotMatch(worker.output(), new RegExp(`Task ctl\\.add\\[${revokedId}\\] succeeded`));
    assert.match(worker.output(), new RegExp(`Task ctl\\.add\\[${expiredId}\\] succeeded`));
  });

  test('a revoke from Python (`celery control revoke`) heard by our worker is kept: a second worker started after the first stopped discards the task; a Python worker on the vhost runs on', async () => {
    const pyWorker = await startPythonWorker({ env, hostname: 'py@revoked', queues: ['py'] });
    workers.push(pyWorker);
    const id = randomUUID();
    // Queued where no worker consumes yet.
    const later = await app.sendTask('ctl.add', [4, 4], {}, { taskId: id, queue: 'later' });
    const revoke = await runCeleryCli(env, ['control', 'revoke', id, '-d', 'ts1@revoked', '--json']);
    assert.equal(revoke.code, 0, revoke.stderr);
    await waitFor(async () => (await keptIds()).has(id), 20_000, 'the worker keeping the revoke it heard from Python in the stream');
    // Kept with Celery's 3-hour expiry, counted from when our worker heard it.
    const at = (await keptIds()).get(id)!;
    assert.ok(Math.abs(at - Date.now() / 1000) < 120, `revoked at ${at}`);
    await workers[0]!.stop();
    // Only the stream can tell the second worker: the first is gone (no mingle peer), no --statedb.
    const second = await startCeleriacWorker({ app: 'test/apps/control-app.ts', env, hostname: 'ts2@revoked', concurrency: 1, queues: ['later'] });
    workers.push(second);
    await assert.rejects(later.get({ timeout: 20_000 }), (err: Error) => err.name === 'TaskRevokedError');
    assert.equal(await later.state, 'REVOKED');
    assert.match(second.output(), new RegExp(`Discarding revoked task: ctl\\.add\\[${id}\\]`));
    // Python's worker shares the vhost (and heard the broadcast too): its tasks still run.
    const py = await app.sendTask('tasks.add', [20, 22], {}, { queue: 'py' });
    assert.equal(await py.get({ timeout: 20_000 }), 42);
    assert.doesNotMatch(pyWorker.output(), /Unrecoverable error|Traceback/);
  });

  test('the reader catches up through many entries with a small prefetch (acks give it credit), newest expiry wins, expired ids are left out', async () => {
    const connection = new AmqpConnection(parseAmqpUrls(env.INTEROP_BROKER_URL, {}));
    await connection.whenConnected(10_000);
    const stream = new AmqpRevokedStream(connection, 'test', 10_000, { prefetch: 4 });
    try {
      const ids = Array.from({ length: 60 }, () => randomUUID());
      const soon = Date.now() + 60_000;
      for (let i = 0; i < ids.length; i += 3) await stream.persist(ids.slice(i, i + 3), soon);
      const gone = randomUUID();
      await stream.persist([gone], Date.now() + 60_000);
      await stream.persist([gone], Date.now() - 1); // a later entry does not shorten an earlier one
      await stream.persist([randomUUID()], Date.now() - 1);
      const loaded = await stream.load();
      for (const id of ids) assert.ok(loaded.has(id), `${id} missing of ${loaded.size}`);
      assert.ok(loaded.has(gone));
      assert.equal(loaded.get(ids[0]!), (soon - 10_800_000) / 1000);
      for (const [, at] of loaded) assert.ok(at * 1000 + 10_800_000 > Date.now(), 'an expired entry was returned');
    } finally {
      await stream.close();
      await connection.close();
    }
  });

  test('a broker that refuses the stream (here: the name taken by a classic queue, as on RabbitMQ < 3.9): one warning, revoke still works, nothing is kept', async () => {
    const vhost = `celeriac-nostream-${process.pid}`;
    await rabbit!.ctl(['add_vhost', vhost]);
    await rabbit!.ctl(['set_permissions', '-p', vhost, 'guest', '.*', '.*', '.*']);
    const url = `amqp://guest:guest@127.0.0.1:${rabbit!.port}/${vhost}`;
    const warnings: Error[] = [];
    const onWarning = (w: Error) => {
      if ((w as Error & { code?: string }).code === 'CELERIAC_REVOKED_STREAM') warnings.push(w);
    };
    process.on('warning', onWarning);
    const other = createApp('amqp-revoked-nostream', { brokerUrl: url });
    try {
      const connection = new AmqpConnection(parseAmqpUrls(url, {}));
      await connection.whenConnected(10_000);
      const ch = await connection.require().createChannel();
      await ch.assertQueue(REVOKED_STREAM, { durable: true });
      await connection.close();
      assert.deepEqual(await other.control.revoke(randomUUID(), { reply: true, timeout: 200 }), []);
      assert.deepEqual(await other.control.revoke(randomUUID(), { reply: true, timeout: 200 }), []);
      const c = await controlChannel(url);
      assert.deepEqual(await c.channel.loadRevoked!(), new Map());
      await c.close();
      await waitFor(() => warnings.length > 0, 5_000, 'the warning');
      await new Promise((r) => setImmediate(r));
      assert.equal(warnings.length, 1);
      assert.match(warnings[0]!.message, /cannot keep revoked task ids: declaring the stream queue "celeriac\.revoked" was refused .*--statedb/);
    } finally {
      process.off('warning', onWarning);
      await other.close();
      await rabbit!.ctl(['delete_vhost', vhost]);
    }
  });
});
