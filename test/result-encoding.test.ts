/**
 * One result that cannot be encoded must not take the other results of its write
 * batch down with it: it is stored as FAILURE `EncodeError` (kombu's exception,
 * readable by Python Celery) for that task alone; every good result is stored and
 * no task runs twice. Real redis-server, in-process worker at concurrency 50.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { after, before, describe, test } from 'node:test';
import { Redis } from 'ioredis';
import { pino } from 'pino';
import { createApp, RemoteTaskError, States, Worker, type AsyncResult, type TaskContext } from '../packages/core/src/index.ts';
import { pythonCeleryMissing, PY_DIR } from './helpers/python-celery.ts';
import { missing, REDIS_SERVER, SYSTEM_PYTHON, startRedis, type RedisServer } from './helpers/services.ts';

const skip = missing(REDIS_SERVER, 'apt-get install redis-server');
const GOOD = 1000;
const BAD_EVERY = 20; // one bad task after every 20 good ones: 50 bad ones, spread over many batches

type BadKind = 'set' | 'bigint-cycle' | 'circular';
const BAD_KINDS: BadKind[] = ['set', 'bigint-cycle', 'circular'];

function badValue(kind: BadKind): unknown {
  if (kind === 'set') return new Set([1, 2, 3]);
  if (kind === 'bigint-cycle') {
    const node: Record<string, unknown> = { big: 10n ** 30n };
    node.next = { big: 2n ** 70n, next: node };
    return node;
  }
  const self: Record<string, unknown> = { name: 'loop' };
  self.self = self;
  return self;
}

describe('unencodable results', { skip: skip ?? false }, () => {
  let server: RedisServer;
  let raw: Redis;
  const app = createApp('encoding');
  const runs = new Map<string, number>();
  const errors: string[] = [];
  const count = (id: string) => runs.set(id, (runs.get(id) ?? 0) + 1);
  /** onFailure / onSuccess calls per task id: an EncodeError is the task's failure, as in Celery's tracer. */
  const hooks = new Map<string, string>();
  const hookOptions = {
    onFailure: (err: unknown, id: string) => void hooks.set(id, `failure:${(err as Error).name}`),
    onSuccess: (_: unknown, id: string) => void hooks.set(id, 'success'),
  };
  const goodEarly = app.task('enc.good', function (this: TaskContext, n: number) {
    count(this.id);
    return n * 2;
  });
  const badEarly = app.task('enc.bad', function (this: TaskContext, kind: BadKind) {
    count(this.id);
    return badValue(kind);
  }, hookOptions);
  const goodLate = app.task('enc.goodLate', function (this: TaskContext, n: number) {
    count(this.id);
    return n * 2;
  }, { acksLate: true });
  const badLate = app.task('enc.badLate', function (this: TaskContext, kind: BadKind) {
    count(this.id);
    return badValue(kind);
  }, { acksLate: true, ...hookOptions });
  let worker: Worker;

  before(async () => {
    server = await startRedis();
    raw = new Redis(server.url(1));
    app.configure({ brokerUrl: server.url(0), resultBackend: server.url(1), workerHeartbeatInterval: 1 });
    const logger = pino({ level: 'error' }, { write: (line: string) => void errors.push(JSON.parse(line).msg) });
    worker = new Worker(app, { concurrency: 50, logger });
    await worker.start();
  });
  after(async () => {
    await worker.stop();
    await app.close();
    raw.disconnect();
    await server.stop();
  });

  async function runMix(good: typeof goodEarly, bad: typeof badEarly): Promise<void> {
    runs.clear();
    hooks.clear();
    errors.length = 0;
    const failedBefore = worker.stats.failed;
    const succeededBefore = worker.stats.succeeded;
    const goods: AsyncResult<number>[] = [];
    const bads: { kind: BadKind; result: AsyncResult<unknown> }[] = [];
    for (let i = 0; i < GOOD; i++) {
      goods.push(await good.delay(i));
      if (i % BAD_EVERY === BAD_EVERY - 1) {
        const kind = BAD_KINDS[bads.length % BAD_KINDS.length]!;
        bads.push({ kind, result: await bad.delay(kind) });
      }
    }
    // Every result must be ready well within this; a lost one times out here.
    const deadline = Date.now() + 20_000;
    const stored = async (r: AsyncResult<unknown>) => {
      while (Date.now() < deadline) {
        const doc = await r.state;
        if (doc === States.SUCCESS || doc === States.FAILURE) return doc;
        await new Promise((res) => setTimeout(res, 50));
      }
      return null;
    };
    const goodStates = await Promise.all(goods.map(stored));
    const lost = goodStates.filter((s) => s !== States.SUCCESS).length;
    assert.equal(lost, 0, `${lost} of ${GOOD} good results were not stored as SUCCESS (errors: ${errors.slice(0, 3).join(' | ')})`);
    assert.deepEqual(await Promise.all(goods.map((r) => r.get({ timeout: 1000 }))), goods.map((_, i) => i * 2));
    for (const { kind, result } of bads) {
      await assert.rejects(result.get({ timeout: 5000 }), (err: unknown) => {
        assert.ok(err instanceof RemoteTaskError, `${kind}: ${String(err)}`);
        assert.equal(err.excType, 'EncodeError', kind);
        assert.equal(err.excModule, 'kombu.exceptions', kind);
        return true;
      });
    }
    // Nothing ran twice (late acks used to re-run a whole failed batch every 5 s).
    await worker.whenIdle();
    const all = [...goods, ...bads.map((b) => b.result)];
    const twice = all.filter((r) => runs.get(r.id) !== 1).length;
    assert.equal(twice, 0, `${twice} tasks did not run exactly once`);
    assert.equal(runs.size, all.length);
    // The failure is the task's: logged naming it, counted, onFailure called.
    for (const { result } of bads) {
      assert.ok(errors.some((m) => m.includes(result.id) && /raised unexpected: EncodeError/.test(m)), `no failure logged for ${result.id}`);
      assert.equal(hooks.get(result.id), 'failure:EncodeError', `hooks of ${result.id}`);
    }
    assert.equal(worker.stats.failed - failedBefore, bads.length);
    assert.equal(worker.stats.succeeded - succeededBefore, GOOD);
  }

  test('early acks: every good result stored, each bad one FAILURE EncodeError, nothing ran twice', async () => {
    await runMix(goodEarly, badEarly);
  });

  test('late acks: every good result stored, each bad one FAILURE EncodeError, nothing ran twice', async () => {
    await runMix(goodLate, badLate);
  });

  test('Python Celery reads the stored EncodeError as kombu.exceptions.EncodeError', { skip: pythonCeleryMissing() ?? false }, async () => {
    const r = await badEarly.delay('set');
    await assert.rejects(r.get({ timeout: 5000 }), (err: unknown) => err instanceof RemoteTaskError && err.excType === 'EncodeError');
    const script = [
      'import json, sys',
      'from celery import Celery',
      `app = Celery(backend=${JSON.stringify(server.url(1))})`,
      'result = app.AsyncResult(sys.argv[1])',
      'exc = result.result',
      'print(json.dumps({"state": result.state, "type": type(exc).__name__, "module": type(exc).__module__, "str": str(exc)}))',
    ].join('\n');
    const py = spawnSync(SYSTEM_PYTHON, ['-c', script, r.id], { cwd: PY_DIR, encoding: 'utf8', timeout: 30_000 });
    assert.equal(py.status, 0, py.stderr);
    const seen = JSON.parse(py.stdout.trim().split('\n').pop()!) as { state: string; type: string; module: string; str: string };
    assert.equal(seen.state, 'FAILURE');
    assert.equal(seen.type, 'EncodeError');
    assert.equal(seen.module, 'kombu.exceptions');
    assert.match(seen.str, /Set/);
  });
});
