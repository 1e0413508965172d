/**
 * A remote `shutdown` (`celery control shutdown`, `app.control.shutdown()`, the
 * dashboard's button) ends a `celeriac worker` process as SIGTERM does: warm stop,
 * exit 0. It used to stop the worker and leave the process running.
 */
import assert from 'node:assert/strict';
import { after, test } from 'node:test';
import { createApp } from '../packages/core/src/index.ts';
import { interopEnv, runCeleryCli, startCeleriacWorker, pythonCeleryMissing, type PeerProcess } from './helpers/python-celery.ts';
import { missing, REDIS_SERVER, startRedis, type RedisServer } from './helpers/services.ts';
import { waitFor } from './helpers/worker-process.ts';

/** The worker's exit code once it exited (a worker still running after 30 s fails the test instead of hanging it). */
async function exitCode(w: PeerProcess): Promise<number | null> {
  await waitFor(() => w.child.exitCode !== null || w.child.signalCode !== null, 30_000, `${w.pid} to exit after the remote shutdown`);
  return w.child.exitCode;
}

const skip = missing(REDIS_SERVER, 'apt-get install redis-server');
let redis: RedisServer | undefined;
const workers: PeerProcess[] = [];

after(async () => {
  await Promise.all(workers.map((w) => w.stop()));
  await redis?.stop();
});

test('app.control.shutdown (and Python\'s celery control shutdown) make the worker process exit 0', { skip: skip ?? false }, async () => {
  redis = await startRedis();
  const env = interopEnv(redis);
  const app = createApp('remote-shutdown', { brokerUrl: env.INTEROP_BROKER_URL });
  try {
    const w1 = await startCeleriacWorker({ app: 'test/apps/control-app.ts', env, hostname: 'stop1@test' });
    workers.push(w1);
    await app.control.shutdown({ destination: ['stop1@test'] });
    assert.equal(await exitCode(w1), 0);
    assert.match(w1.output(), /Got shutdown from remote[\s\S]*Warm shutdown \(remote shutdown\)/);
  } finally {
    await app.close();
  }
  if (pythonCeleryMissing()) return;
  const w2 = await startCeleriacWorker({ app: 'test/apps/control-app.ts', env, hostname: 'stop2@test' });
  workers.push(w2);
  const cli = await runCeleryCli(env, ['control', 'shutdown', '-d', 'stop2@test']);
  assert.equal(cli.code, 0, cli.stderr);
  assert.equal(await exitCode(w2), 0);
});
