import assert from 'node:assert/strict';
import { writeFileSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { test } from 'node:test';
import { loadApp } from '../packages/core/src/cli/load-app.ts';
import { runCli } from './helpers/cli.ts';

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
  await assert.rejects(loadApp('test/apps/worker-app.ts:nope'), /worker-app\.ts has no export "nope" \(its exports: add, app, block, slow\)/);
});

test('-A a missing file: "no module at ./x.js (resolved from <cwd>)"', async () => {
  const cwd = process.cwd();
  await assert.rejects(loadApp('./x.js'), (err: Error) => {
    assert.match(err.message, new RegExp(`^-A \\./x\\.js: no module at \\./x\\.js \\(resolved from ${cwd.replace(/[/.]/g, '\\$&')}\\): no such file`));
    return true;
  });
  await assert.rejects(loadApp('no-such-proj'), /no module at no-such-proj \(resolved from .*nor an installed package of that name/);
});

test('-A a module that throws while loading: its file, line and stack', async () => {
  const file = resolve('test/apps/broken-app.ts');
  await assert.rejects(loadApp('test/apps/broken-app.ts'), (err: Error) => {
    const [first, second, ...rest] = err.message.split('\n');
    assert.equal(first, `-A test/apps/broken-app.ts: ${file} threw while loading, at ${file}:5:23:`);
    assert.match(second!, /^SyntaxError: .*JSON/);
    assert.ok(rest.some((l) => l.includes(`${file}:5:23`)), 'the stack is shown');
    assert.ok(!rest.some((l) => l.includes('node:internal') || l.includes('load-app')), 'without node internals or the loader itself');
    return true;
  });
});

test('-A a .mjs file with a syntax error: the line from node --check', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'celeriac-syntax-'));
  const file = join(dir, 'app.mjs');
  writeFileSync(file, "import x from 'node:os';\nexport const app = ;\n");
  await assert.rejects(loadApp(file), (err: Error) => {
    assert.match(err.message, new RegExp(`threw while loading, at ${file.replace(/[/.]/g, '\\$&')}:2:`));
    assert.match(err.message, /export const app = ;\n\s+\^/);
    assert.match(err.message, /SyntaxError: Unexpected token ';'/);
    return true;
  });
});

test('-A a module without an app: what it exports and how to fix it', async () => {
  await assert.rejects(
    loadApp('test/apps/no-app.ts'),
    /no-app\.ts exports no Celeriac app \(its exports: answer, helper\): export an app created with createApp .*or name it with -A test\/apps\/no-app\.ts:<export>\./,
  );
});

test('through the CLI: status 2 and the message, said once', async () => {
  const run = await runCli(['-A', './x.js', 'worker']);
  assert.equal(run.code, 2);
  assert.equal(run.stdout, '');
  assert.match(run.stderr, /^celeriac: error: -A \.\/x\.js: no module at \.\/x\.js \(resolved from /);
  assert.equal(run.stderr.match(/no module at/g)?.length, 1);
});
