/**
 * Every package loads as ESM and as CommonJS: `@arethetypeswrong/cli` finds no
 * problem in any tarball (types for each condition, CJS/ESM formats as
 * declared), and one process holding both builds of @celeriac/core (an ESM CLI
 * loading a CommonJS tasks module) sees one app and one `currentTask()`.
 * Needs a build (`npm test` builds first).
 */
import assert from 'node:assert/strict';
import { execFile, execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { after, before, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

const REPO = join(dirname(fileURLToPath(import.meta.url)), '..');
const PACKAGES = ['core', 'express', 'fastify', 'nest'] as const;
const ATTW = join(REPO, 'node_modules/.bin/attw');
const run = promisify(execFile);

before(() => {
  for (const pkg of PACKAGES) {
    for (const format of ['esm', 'cjs']) assert.ok(existsSync(join(REPO, 'packages', pkg, 'dist', format, 'index.js')), `packages/${pkg}/dist/${format} is missing: run npm run build`);
  }
});

interface AttwProblem {
  kind: string;
  entrypoint?: string;
  resolutionKind?: string;
}

/** attw's report on one package, packed as npm would publish it. */
async function attw(pkg: string): Promise<{ pkg: string; problems: AttwProblem[]; entrypoints: string[] }> {
  // --pack packs the package, then resolves every entry point under node10, node16
  // (from CJS and from ESM) and bundler resolution. It exits 1 when it finds problems.
  const { stdout } = await run(ATTW, ['--pack', join('packages', pkg), '--format', 'json'], { cwd: REPO, maxBuffer: 64 * 1024 * 1024 }).catch(
    (err: { stdout?: string; stderr?: string }) => ({ stdout: err.stdout ?? '', stderr: err.stderr ?? '' }),
  );
  const report = JSON.parse(stdout) as { analysis: { problems: AttwProblem[]; entrypoints: Record<string, unknown> } };
  return { pkg, problems: report.analysis.problems, entrypoints: Object.keys(report.analysis.entrypoints) };
}

test('@arethetypeswrong/cli finds no problem in any package', { timeout: 180_000 }, async () => {
  const reports = await Promise.all(PACKAGES.map(attw));
  for (const { pkg, problems, entrypoints } of reports) {
    assert.ok(entrypoints.includes('.'), `@celeriac/${pkg}: the root entry point was analysed`);
    assert.deepEqual(
      problems.map((p) => `${p.kind} (${p.entrypoint ?? ''} ${p.resolutionKind ?? ''})`),
      [],
      `attw --pack packages/${pkg}: fix the exports/types of the package`,
    );
  }
});

test('one process, both builds of @celeriac/core: an ESM CLI loads a CommonJS tasks module and sees one app and one currentTask', { timeout: 60_000 }, async () => {
  const dir = join(REPO, 'node_modules', '.celeriac-dual-test');
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  after(() => rmSync(dir, { recursive: true, force: true }));
  const cjsCore = join(REPO, 'packages/core/dist/cjs/index.js');
  const esmCore = join(REPO, 'packages/core/dist/esm/index.js');
  // A CommonJS project's tasks module, as compiled by tsc for Nest 11 / Jest (the CJS build).
  writeFileSync(
    join(dir, 'tasks.cjs'),
    `const { createApp, currentTask } = require(${JSON.stringify(cjsCore)});
const app = createApp('cjs-project', { brokerUrl: 'memory://dual' });
const where = app.task('dual.where', () => currentTask() && currentTask().id);
module.exports = { app, where, currentTask };
`,
  );
  // The ESM side: the CLI's loader and worker from the ESM build.
  writeFileSync(
    join(dir, 'main.mjs'),
    `import { createRequire } from 'node:module';
const esm = await import(${JSON.stringify(esmCore)});
const { loadApp } = await import(${JSON.stringify(join(REPO, 'packages/core/dist/esm/cli/load-app.js'))});
const cjs = createRequire(import.meta.url)(${JSON.stringify(cjsCore)});
const tasks = createRequire(import.meta.url)('./tasks.cjs');
const app = await loadApp(${JSON.stringify(join(dir, 'tasks.cjs'))});
const out = { twoCopies: esm.createApp !== cjs.createApp, sameApp: app === tasks.app, currentApp: esm.currentApp() === tasks.app, brand: esm.isCeleriacApp(tasks.app), instanceOf: tasks.app instanceof esm.Celeriac };
const seen = [];
app.task('dual.both', () => (seen.push(esm.currentTask()?.id, cjs.currentTask()?.id), 'ok'));
const worker = new esm.Worker(app, { concurrency: 1, logLevel: 'silent' });
await worker.start();
const r1 = await tasks.where.delay();
out.cjsTaskSeesItself = (await r1.get({ timeout: 5000 })) === r1.id;
const r2 = await app.getTask('dual.both').delay();
await r2.get({ timeout: 5000 });
out.bothCopiesSeeTheTask = seen[0] === r2.id && seen[1] === r2.id;
await worker.stop();
console.log(JSON.stringify(out));
`,
  );
  const { stdout } = await run(process.execPath, [join(dir, 'main.mjs')], { cwd: dir, timeout: 50_000 });
  assert.deepEqual(JSON.parse(stdout.trim().split('\n').pop()!), {
    twoCopies: true,
    sameApp: true,
    currentApp: true,
    brand: true,
    instanceOf: true,
    cjsTaskSeesItself: true,
    bothCopiesSeeTheTask: true,
  });
});

test('require() of each package: the CommonJS build without require(esm), the ESM build through module-sync where Node has it', () => {
  for (const pkg of PACKAGES) {
    const name = JSON.stringify(`@celeriac/${pkg}`);
    const resolved = (flags: string[]) => execFileSync(process.execPath, [...flags, '-p', `require.resolve(${name})`], { cwd: REPO, encoding: 'utf8' }).trim();
    assert.equal(resolved(['--no-experimental-require-module']), join(REPO, 'packages', pkg, 'dist/cjs/index.js'), `${name} without require(esm)`);
    const exportsCount = execFileSync(process.execPath, ['--no-experimental-require-module', '-p', `Object.keys(require(${name})).length`], { cwd: REPO, encoding: 'utf8' }).trim();
    assert.ok(Number(exportsCount) > 0, `${name} loads as CommonJS with its exports`);
    if (process.features.require_module) assert.equal(resolved([]), join(REPO, 'packages', pkg, 'dist/esm/index.js'), `${name} with require(esm): one copy for import and require`);
  }
});
