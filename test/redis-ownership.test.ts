/**
 * Owned settlement on Redis, with real worker processes paused and killed by PID:
 * a worker that lost a message while frozen must not settle it for its new holder.
 */
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { missing, REDIS_SERVER } from './helpers/services.ts';
import { useRedisWorkers } from './helpers/redis-workers.ts';
import { logLines, waitFor } from './helpers/worker-process.ts';

const skip = missing(REDIS_SERVER, 'apt-get install redis-server');
const tmp = mkdtempSync(join(tmpdir(), 'celeriac-owner-'));
const workers = useRedisWorkers(skip); // stops paused workers too (SIGCONT first)
const { producer } = workers;

test('a worker paused past its TTL cannot ack the message its successor holds: after the successor is killed, the message still runs', { skip: skip ?? false }, async () => {
  const startlog = join(tmp, 'owner-start.log');
  const env = { CELERIAC_TEST_STARTLOG: startlog, CELERIAC_TEST_HEARTBEAT: '0.2' }; // TTL 1 s
  const a = await workers.startWorker({ env, args: ['-n', 'a@owner'] });
  await producer.sendTask('tasks.slow', [5000, 'owned']);
  await waitFor(() => logLines(startlog).length === 1, 10_000, 'A started the task');
  a.signal('SIGSTOP');
  const b = await workers.startWorker({ env, args: ['-n', 'b@owner'] });
  await waitFor(() => logLines(startlog).some((l) => l === `owned ${b.pid}`), 15_000, 'B took the message after A expired');
  a.signal('SIGCONT');
  // A finishes its (overdue) run and tries to ack: either the ack lands on B's entry
  // (unacked emptied) or it is skipped as stale (and logged).
  await waitFor(async () => (await workers.client.hlen('unacked')) === 0 || /no longer holds/.test(a.output()), 10_000, "A's late ack");
  // Under heavy load B may itself lapse and take the message back before it is killed;
  // what matters is that A (the survivor) runs it after B is gone.
  const runsBeforeKill = logLines(startlog).length;
  b.signal('SIGKILL');
  await b.exited;
  await waitFor(() => logLines(startlog).slice(runsBeforeKill).includes(`owned ${a.pid}`), 15_000, 'A (the survivor) restored and ran the message after B was killed');
  assert.match(a.output(), /no longer holds/);
  a.signal('SIGTERM');
  await a.exited;
});
