/**
 * The test harness itself: with CI set (`CI=true`, `CI=1`, as CI systems set it)
 * a missing server binary fails the run instead of skipping tests.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { test } from 'node:test';
import { REPO_ROOT } from './helpers/python-celery.ts';

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
