/**
 * The test harness itself: with CI set (`CI=true`, `CI=1`, as CI systems set it)
 * a missing server binary fails the run instead of skipping tests; and
 * `assertBrokerDrained` sees everything a worker may leave behind.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { test } from 'node:test';
import { Redis } from 'ioredis';
import { assertBrokerDrained, REPO_ROOT } from './helpers/python-celery.ts';
import { missing, REDIS_SERVER, startRedis } from './helpers/services.ts';

const skip = missing(REDIS_SERVER, 'apt-get install redis-server');

/** What `missing()` does for an absent binary in a fresh process with this CI value. */
function missingWith(ci: string | undefined): 'threw' | 'skipped' {
  const env = { ...process.env };
  if (ci === undefined) delete env.CI;
  else env.CI = ci;
  const probe = `import('./test/helpers/services.ts').then((m) => {
    try { m.missing('/nonexistent/celeriac-test-binary', 'probe'); process.stdout.write('skipped'); }
    catch { process.stdout.write('threw'); }
  });`;
  const run = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', probe], { cwd: REPO_ROOT, env, encoding: 'utf8', timeout: 30_000 });
  assert.equal(run.status, 0, run.stderr);
  return run.stdout.trim() as 'threw' | 'skipped';
}

test('CI=true and CI=1 forbid skips; no CI (or CI=false / CI=0) skips loudly', () => {
  assert.equal(missingWith('true'), 'threw');
  assert.equal(missingWith('1'), 'threw');
  assert.equal(missingWith('TRUE'), 'threw');
  assert.equal(missingWith(undefined), 'skipped');
  assert.equal(missingWith('false'), 'skipped');
  assert.equal(missingWith('0'), 'skipped');
});

test('assertBrokerDrained fails on Celeriac-held keys, and on registered consumers once workers have stopped', { skip: skip ?? false }, async () => {
  const server = await startRedis();
  const raw = new Redis(server.url(0));
  try {
    await assertBrokerDrained(server.url(0), { timeoutMs: 200, workersStopped: true });
    for (const [key, fill] of [
      ['_celeriac.eta', () => raw.zadd('_celeriac.eta', Date.now() + 60_000, '["parked"]')],
      ['_celeriac.owned.c1', () => raw.sadd('_celeriac.owned.c1', 'tag-1')],
      ['_celeriac.inflight.c1', () => raw.lpush('_celeriac.inflight.c1', '{"body":""}')],
    ] as const) {
      await fill();
      await assert.rejects(assertBrokerDrained(server.url(0), { timeoutMs: 200 }), new RegExp(`celeriacHeld.*${key.replace(/\./g, '\\.')}`));
      await raw.del(key);
    }
    await raw.zadd('_celeriac.consumers', Date.now() + 10_000, 'c1');
    await assertBrokerDrained(server.url(0), { timeoutMs: 200 }); // a live worker is registered: fine
    await assert.rejects(assertBrokerDrained(server.url(0), { timeoutMs: 200, workersStopped: true }), /"consumers":1/);
  } finally {
    raw.disconnect();
    await server.stop();
  }
});
