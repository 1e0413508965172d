/**
 * A Celeriac worker dies while blocked waiting for messages, with only a Python
 * Celery worker left: whatever arrived while it was blocked must still be visible
 * to (and run by) the Python worker. Real redis-server and Celery 5.2.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { interopEnv, pythonCeleryMissing, startPythonWorker, type PeerProcess } from './helpers/python-celery.ts';
import { missing, REDIS_SERVER } from './helpers/services.ts';
import { useRedisWorkers } from './helpers/redis-workers.ts';
import { waitFor } from './helpers/worker-process.ts';

const skip = missing(REDIS_SERVER, 'apt-get install redis-server') ?? pythonCeleryMissing();
let py: PeerProcess | undefined;
const workers = useRedisWorkers(skip, { cleanup: async () => py?.stop() });
const { producer } = workers;

test('a message that arrives while a Celeriac worker is blocked, then killed, is run by a Python worker', { skip: skip ?? false }, async () => {
  const ts = await workers.startWorker();
  await waitFor(async () => /cmd=blmove/.test(await workers.client.client('LIST') as string), 10_000, 'the Celeriac worker blocks waiting for messages');
  ts.signal('SIGSTOP');
  const r = await producer.sendTask('tasks.add', [2, 3]); // served by Redis to the blocked (frozen) worker's BLMOVE
  ts.signal('SIGKILL');
  await ts.exited;
  py = await startPythonWorker({ env: interopEnv(workers.redis), hostname: 'py@survivor' });
  assert.equal(await r.get({ timeout: 20_000 }), 5);
  assert.deepEqual(await workers.client.keys('_celeriac.inflight.*'), []);
});
