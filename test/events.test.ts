/**
 * Monitoring events (Celery's `celeryev`): what a Celeriac worker sends with -E,
 * compared with Celery 5.2's captured events field by field; read back by our
 * receiver's live model, by Python's `celery events --dump`, and Python workers'
 * events read by our receiver.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { createApp, Worker, type Celeriac, type CeleryEvent } from '../packages/core/src/index.ts';
import { fixture } from './helpers/fixtures.ts';
import { interopEnv, pythonCeleryMissing, startCeleriacWorker, startCeleryCli, startPythonWorker, type InteropEnv, type PeerProcess } from './helpers/python-celery.ts';
import { missing, REDIS_SERVER, startRedis, type RedisServer } from './helpers/services.ts';
import { waitFor } from './helpers/worker-process.ts';

interface CapturedEvent {
  redis_channel: string;
  sent_in_batch_list: boolean;
  envelope_headers: Record<string, unknown>;
  event: Record<string, unknown>;
}
const captured = fixture<{ events: Record<string, CapturedEvent> }>('events-redis/by_type.json').events;

describe('task-sent with taskSendSentEvent', () => {
  test('sendMany and delayMany send one task-sent per message, with the fields sendTask sends', async () => {
    const app = createApp('events-sent', { brokerUrl: 'memory://events-sent', workerHeartbeatThread: false, taskSendSentEvent: true });
    const add = app.task('sent.add', (x: number, y: number) => x + y);
    const seen: CeleryEvent[] = [];
    const receiver = app.events.receiver();
    receiver.on('task-sent', (e) => seen.push(e));
    await receiver.start();
    try {
      const one = await app.sendTask('sent.add', [1, 2]);
      const many = await app.sendMany([{ name: 'sent.add', args: [3, 4] }, { name: 'sent.add', args: [5, 6], options: { queue: 'other' } }]);
      const bulk = await add.delayMany([[7, 8]]);
      const ids = [one, ...many, ...bulk].map((r) => r.id);
      // Before: only sendTask sent it; the batch APIs sent none.
      await waitFor(() => ids.every((id) => seen.some((e) => e.uuid === id)), 3_000, 'a task-sent per message');
      const of = (id: string) => seen.find((e) => e.uuid === id)!;
      for (const id of ids.slice(1)) assert.deepEqual(Object.keys(of(id)), Object.keys(of(ids[0]!)), 'same fields as sendTask');
      assert.equal(of(ids[2]!).queue, 'other');
      assert.equal(of(ids[3]!).args, '(7, 8)');
    } finally {
      await receiver.stop();
      await app.close();
    }
  });
});

describe('events on memory:// (in-process worker with -E)', () => {
  let app: Celeriac;
  let worker: Worker;
  const seen: CeleryEvent[] = [];
  const node = 'ev@memory';

  before(async () => {
    app = createApp('events-memory', { brokerUrl: 'memory://events-test', workerHeartbeatThread: false });
    app.task('ev.add', (x: number, y: number) => x + y);
    app.task('ev.fail', () => {
      throw new RangeError('too big');
    });
    const receiver = app.events.receiver();
    receiver.on('*', (e) => seen.push(e));
    await receiver.start();
    worker = new Worker(app, { hostname: node, concurrency: 2, logLevel: 'error', sendEvents: true });
    await worker.start();
    (globalThis as { receiver?: unknown }).receiver = receiver;
  });

  after(async () => {
    await worker.stop();
    await app.close();
  });

  test('a task sends received → started → succeeded with Celery 5.2\'s fields, in Celery\'s order', async () => {
    const r = await app.sendTask('ev.add', [2, 3]);
    assert.equal(await r.get({ timeout: 5_000 }), 5);
    await waitFor(() => seen.some((e) => e.type === 'task-succeeded' && e.uuid === r.id), 3_000, 'task-succeeded');
    const of = (type: string) => seen.find((e) => e.type === type && e.uuid === r.id)!;
    for (const type of ['task-received', 'task-started', 'task-succeeded']) {
      assert.deepEqual(Object.keys(of(type)), Object.keys(captured[type]!.event), `${type} fields`);
    }
    assert.equal(of('task-received').name, 'ev.add');
    assert.equal(of('task-received').args, '(2, 3)');
    assert.equal(of('task-received').kwargs, '{}');
    assert.equal(of('task-received').hostname, node);
    assert.equal(of('task-succeeded').result, '5');
    assert.equal(typeof of('task-succeeded').runtime, 'number');
    const clocks = ['task-received', 'task-started', 'task-succeeded'].map((t) => of(t).clock as number);
    assert.ok(clocks[0]! < clocks[1]! && clocks[1]! < clocks[2]!, `clocks increase: ${clocks}`);
  });

  test('a failing task sends task-failed with the exception repr and traceback; worker-online was sent; the model follows', async () => {
    const r = await app.sendTask('ev.fail');
    await assert.rejects(r.get({ timeout: 5_000 }));
    await waitFor(() => seen.some((e) => e.type === 'task-failed' && e.uuid === r.id), 3_000, 'task-failed');
    const failed = seen.find((e) => e.type === 'task-failed' && e.uuid === r.id)!;
    assert.deepEqual(Object.keys(failed), Object.keys(captured['task-failed']!.event));
    assert.equal(failed.exception, "RangeError('too big')");
    assert.match(String(failed.traceback), /RangeError: too big/);
    const online = seen.find((e) => e.type === 'worker-online' && e.hostname === node)!;
    assert.deepEqual(Object.keys(online), Object.keys(captured['worker-online']!.event));
    assert.equal(online.sw_ident, 'celeriac');
    const state = ((globalThis as { receiver?: { state: import('../packages/core/src/index.ts').EventState } }).receiver)!.state;
    assert.equal(state.tasks.get(r.id)!.state, 'FAILURE');
    assert.equal(state.tasks.get(r.id)!.name, 'ev.fail');
    assert.equal(state.alive(state.workers.get(node)!), true);
  });
});

const skip = missing(REDIS_SERVER, 'apt-get install redis-server') ?? pythonCeleryMissing();

describe('events with Python Celery 5.2 on Redis', { skip: skip ?? false }, () => {
  let redis: RedisServer | undefined;
  let env: InteropEnv;
  let tsWorker: PeerProcess | undefined;
  let pyWorker: PeerProcess | undefined;
  let app: Celeriac;

  before(async () => {
    if (skip) return;
    redis = await startRedis();
    env = interopEnv(redis);
    app = createApp('events-client', { brokerUrl: env.INTEROP_BROKER_URL, resultBackend: env.INTEROP_BACKEND_URL });
  });

  after(async () => {
    await app?.close();
    await Promise.all([tsWorker?.stop(), pyWorker?.stop()]);
    await redis?.stop();
  });

  test('`celery events --dump` (Python) reads our worker\'s events: worker-online/heartbeat and the task\'s received/started/succeeded', async () => {
    const dump = startCeleryCli(env, ['events', '--dump']);
    try {
      await waitFor(() => /Dumping events|-> evdump/i.test(dump.output()), 20_000, 'celery events --dump to start');
      tsWorker = await startCeleriacWorker({ app: 'test/apps/control-app.ts', env, hostname: 'ts@events', concurrency: 2 });
      const r = await app.sendTask('ctl.add', [20, 22]);
      await waitFor(() => dump.output().includes('ts@events'), 20_000, 'the dump to show our worker');
      assert.equal(await r.get({ timeout: 10_000 }), 42);
      // evdump prints worker-online as "started" and worker-heartbeat as "heartbeat" (celery/events/dumper.py).
      await waitFor(() => /^ts@events \[[^\]]+\] started: .*sw_ident=celeriac/m.test(dump.output()), 10_000, `worker-online in the dump:\n${dump.output().slice(-1500)}`);
      await waitFor(() => /^ts@events \[[^\]]+\] heartbeat: active=\d+, .*freq=2(\.0)?,/m.test(dump.output()), 10_000, "worker-heartbeat in the dump");
    } finally {
      await dump.stop();
    }
  });

  test('task events need -E: with it, Python\'s dump shows received/started/succeeded for our task', async () => {
    await tsWorker?.stop();
    const dump = startCeleryCli(env, ['events', '--dump']);
    try {
      await waitFor(() => /Dumping events|-> evdump/i.test(dump.output()), 20_000, 'celery events --dump to start');
      tsWorker = await startCeleriacWorker({ app: 'test/apps/control-app.ts', env, hostname: 'ts2@events', concurrency: 2, extraArgs: ['-E'] });
      const r = await app.sendTask('ctl.add', [1, 2]);
      assert.equal(await r.get({ timeout: 10_000 }), 3);
      await waitFor(() => dump.output().includes(`${r.id}`) && /succeeded/.test(dump.output().slice(dump.output().indexOf(r.id))), 10_000, `task-succeeded for ${r.id} in the dump:\n${dump.output().slice(-2000)}`);
      assert.match(dump.output(), new RegExp(`^ts2@events \\[[^\\]]+\\] task received: ctl\\.add\\(${r.id}\\) args=\\(1, 2\\) kwargs=\\{\\}`, 'm'));
      assert.match(dump.output(), new RegExp(`^ts2@events \\[[^\\]]+\\] task succeeded: ctl\\.add\\(${r.id}\\) args=\\(1, 2\\) kwargs=\\{\\} .*result=3, runtime=`, 'm'));
    } finally {
      await dump.stop();
    }
  });

  test('our receiver reads a Python worker\'s task events (-E): received, started, succeeded with its result', async () => {
    const receiver = app.events.receiver();
    const seen: CeleryEvent[] = [];
    receiver.on('*', (e) => seen.push(e));
    await receiver.start();
    try {
      pyWorker = await startPythonWorker({ env, hostname: 'py@events', queues: ['py'], extraArgs: ['-E'] });
      const r = await app.sendTask('tasks.add', [4, 5], {}, { queue: 'py' });
      assert.equal(await r.get({ timeout: 10_000 }), 9);
      await waitFor(() => seen.some((e) => e.type === 'task-succeeded' && e.uuid === r.id), 10_000, 'task-succeeded from Python');
      const succeeded = seen.find((e) => e.type === 'task-succeeded' && e.uuid === r.id)!;
      assert.equal(succeeded.hostname, 'py@events');
      assert.equal(succeeded.result, '9');
      assert.ok(seen.some((e) => e.type === 'task-received' && e.uuid === r.id && e.name === 'tasks.add'));
      assert.equal(receiver.state.tasks.get(r.id)!.state, 'SUCCESS');
      assert.equal(receiver.state.tasks.get(r.id)!.worker, 'py@events');
    } finally {
      await receiver.stop();
    }
  });
});
