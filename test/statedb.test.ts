/**
 * `--statedb` (Celery's worker persistent state): revoked ids written to the file
 * when they change survive a restart of the worker process — even a SIGKILL — with
 * no broker storage to fall back on (Celeriac's `_celeriac.revoked` key is deleted
 * between the runs), and a worker restarted without the file runs the task.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { createApp, type Celeriac } from '../packages/core/src/index.ts';
import { loadState, nodeFormat } from '../packages/core/src/control/state-db.ts';
import { interopEnv, redisClient, startCeleriacWorker, type InteropEnv } from './helpers/python-celery.ts';
import { missing, REDIS_SERVER, startRedis, type RedisServer } from './helpers/services.ts';
import { waitFor } from './helpers/worker-process.ts';

describe('nodeFormat and the state file', () => {
  test('%n / %h / %p / %d / %i / %I / %% expand as Celery\'s node_format', () => {
    assert.equal(nodeFormat('/var/run/celeriac/%n.state', 'w1@box.example.com'), '/var/run/celeriac/w1.state');
    assert.equal(nodeFormat('%p|%h|%d|%i|%I|%%', 'w1@box.example.com'), 'w1@box.example.com|box.example.com|example.com|0||%');
  });

  test('a file that is not ours is refused with a message naming the fix; an absent file is an empty state', () => {
    const dir = mkdtempSync(join(tmpdir(), 'celeriac-statedb-'));
    try {
      assert.deepEqual(loadState(join(dir, 'absent.state')), { clock: 0, revoked: [] });
      const shelve = join(dir, 'python.state');
      writeFileSync(shelve, Buffer.from([0x00, 0x06, 0x15, 0x61]));
      assert.throws(() => loadState(shelve), /is not a Celeriac state file .*give this worker its own file/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

const skip = missing(REDIS_SERVER, 'apt-get install redis-server');

describe('--statedb across worker restarts', { skip: skip ?? false }, () => {
  let redis: RedisServer | undefined;
  let env: InteropEnv;
  let app: Celeriac;
  const dir = mkdtempSync(join(tmpdir(), 'celeriac-statedb-'));
  const node = 'sdb@statedb';
  const file = join(dir, 'sdb.state');

  before(async () => {
    if (skip) return;
    redis = await startRedis();
    env = interopEnv(redis);
    app = createApp('statedb-client', { brokerUrl: env.INTEROP_BROKER_URL, resultBackend: env.INTEROP_BACKEND_URL });
  });

  after(async () => {
    await app?.close();
    await redis?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  /** Forget what the broker keeps about revokes: only the state file can know now. */
  async function forgetBrokerRevokes(): Promise<void> {
    const r = redisClient(env.INTEROP_BROKER_URL);
    try {
      await r.del('_celeriac.revoked');
    } finally {
      r.disconnect();
    }
  }

  const start = (withStateDb: boolean) =>
    startCeleriacWorker({
      app: 'test/apps/control-app.ts',
      env,
      hostname: node,
      queues: ['sdb'],
      extraArgs: ['--without-mingle', ...(withStateDb ? ['--statedb', join(dir, '%n.state')] : [])],
    });

  test('a revoke written to the file survives SIGKILL and a restart: the task sent meanwhile is discarded (REVOKED); without the file it runs', async () => {
    const first = await start(true);
    const id = randomUUID();
    const other = randomUUID();
    try {
      assert.deepEqual(await app.control.revoke(id, { reply: true, destination: [node], timeout: 2_000 }), [{ [node]: { ok: `tasks ${id} flagged as revoked` } }]);
      await waitFor(() => existsSync(file) && readFileSync(file, 'utf8').includes(id), 5_000, 'the id in the state file');
    } finally {
      first.child.kill('SIGKILL');
      await first.stop();
    }
    await forgetBrokerRevokes();
    const revoked = await app.sendTask('ctl.add', [1, 1], {}, { taskId: id, queue: 'sdb' });
    const second = await start(true);
    try {
      assert.match(second.output(), /statedb: 1 revoked id\(s\) loaded from .*sdb\.state/);
      await assert.rejects(revoked.get({ timeout: 10_000 }), (err: Error) => err.name === 'TaskRevokedError');
      assert.equal(await revoked.state, 'REVOKED');
      assert.match(second.output(), new RegExp(`Discarding revoked task: ctl\\.add\\[${id}\\]`));
      assert.deepEqual(await app.control.revoke(other, { reply: true, destination: [node], timeout: 2_000 }), [{ [node]: { ok: `tasks ${other} flagged as revoked` } }]);
      await waitFor(() => readFileSync(file, 'utf8').includes(other), 5_000, 'the second id in the state file');
    } finally {
      await second.stop();
    }
    // The file kept both (written again at the warm shutdown).
    assert.deepEqual(loadState(file).revoked.map(([i]) => i), [id, other]);
    // The same again without --statedb: nothing remembers the revoke, and the task runs.
    await forgetBrokerRevokes();
    const again = await app.sendTask('ctl.add', [2, 2], {}, { taskId: other, queue: 'sdb' });
    const third = await start(false);
    try {
      assert.equal(await again.get({ timeout: 10_000 }), 4);
    } finally {
      await third.stop();
    }
  });
});
