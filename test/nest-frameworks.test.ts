/**
 * The NestJS adapter's suites, run from `npm test`:
 * - Nest 12, ESM, Vitest: test/nest/*.spec.ts (memory, Redis with a separate worker
 *   process, the status/SSE module on Express and Fastify, examples/nest-app through
 *   `npx nest start`). Vitest's own config sends TypeScript through tsc's transpiler
 *   (decorator metadata).
 * - Nest 11, CommonJS, Jest + ts-jest: test/nest11-cjs, a small project with its own
 *   package.json (Nest 11, Jest), installed here on first run (and again when its
 *   package.json changes), testing the packages' CommonJS builds.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';

const REPO = fileURLToPath(new URL('..', import.meta.url));
const CJS_FIXTURE = join(REPO, 'test/nest11-cjs');

function run(command: string, args: string[], cwd: string, timeoutMs: number): { status: number | null; output: string } {
  const r = spawnSync(command, args, { cwd, encoding: 'utf8', timeout: timeoutMs, env: { ...process.env, FORCE_COLOR: '0' } });
  return { status: r.status, output: `${r.stdout ?? ''}${r.stderr ?? ''}${r.error ? `\n${r.error.message}` : ''}` };
}

test('NestJS 12 (ESM): the Vitest suites under test/nest pass', { timeout: 600_000 }, () => {
  const r = run(process.execPath, [join(REPO, 'node_modules/vitest/vitest.mjs'), 'run', '--config', 'test/nest/vitest.config.ts'], REPO, 590_000);
  process.stdout.write(r.output.split('\n').filter((l) => /✓|×|Test Files|Tests |FAIL|Error/.test(l)).join('\n') + '\n');
  assert.equal(r.status, 0, r.output.slice(-8000));
});

test('NestJS 11 (CommonJS): the Jest + ts-jest suite under test/nest11-cjs passes', { timeout: 600_000 }, () => {
  for (const pkg of ['core', 'nest']) {
    assert.ok(existsSync(join(REPO, `packages/${pkg}/dist/cjs/index.js`)), `packages/${pkg}/dist/cjs is missing: run npm run build (it builds ESM and CommonJS)`);
  }
  const stamp = createHash('sha256').update(readFileSync(join(CJS_FIXTURE, 'package.json'))).digest('hex');
  const stampFile = join(CJS_FIXTURE, 'node_modules/.celeriac-installed');
  if (!existsSync(stampFile) || readFileSync(stampFile, 'utf8') !== stamp) {
    const install = run('npm', ['install', '--no-audit', '--no-fund', '--loglevel=error'], CJS_FIXTURE, 300_000);
    assert.equal(install.status, 0, `npm install in test/nest11-cjs failed:\n${install.output}`);
    writeFileSync(stampFile, stamp);
  }
  const r = run(process.execPath, [join(CJS_FIXTURE, 'node_modules/jest/bin/jest.js'), '--ci'], CJS_FIXTURE, 300_000);
  process.stdout.write(r.output.split('\n').filter((l) => /✓|✕|Tests:|PASS|FAIL/.test(l)).join('\n') + '\n');
  assert.equal(r.status, 0, r.output.slice(-8000));
});
