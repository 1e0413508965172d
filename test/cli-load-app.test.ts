import assert from 'node:assert/strict';
import { test } from 'node:test';
import { loadApp } from '../packages/core/src/cli/load-app.ts';

test('-A module, module:export, and a folder holding celeriac.ts (like Celery’s proj.celery)', async () => {
  assert.equal((await loadApp('test/apps/worker-app.ts')).name, 'worker-app');
  assert.equal((await loadApp('test/apps/worker-app.ts:app')).name, 'worker-app');
  assert.equal((await loadApp('test/apps/worker-app')).name, 'worker-app');
  const proj = await loadApp('test/apps/proj');
  assert.equal(proj.name, 'proj');
  assert.deepEqual(proj.taskNames, ['proj.ping']);
});

test('-A errors name the problem and the fix', async () => {
  await assert.rejects(loadApp('test/apps/worker-app.ts:add'), /export "add" is not a Celeriac app/);
  await assert.rejects(loadApp('test/apps/does-not-exist'), /Cannot load app module "test\/apps\/does-not-exist"/);
});
