/**
 * The Lua scripts are files (src/brokers/redis-lua/, src/backends/redis-lua/): the build must
 * copy them next to the compiled JavaScript, and `npm pack` must ship them, or the
 * published package fails on its first Redis command. Needs a build (`npm test` builds first).
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { scripts as sourceScripts } from '../packages/core/src/brokers/redis-scripts.ts';

const CORE = join(dirname(fileURLToPath(import.meta.url)), '..', 'packages', 'core');
const LUA_DIRS = ['brokers/redis-lua', 'backends/redis-lua'];

function luaFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? luaFiles(join(dir, e.name)) : e.name.endsWith('.lua') ? [join(dir, e.name)] : []));
}

test('every Lua script ships in the @celeriac/core tarball, under dist/esm/ and dist/cjs/', () => {
  const out = execFileSync('npm', ['pack', '--dry-run', '--json'], { cwd: CORE, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  const shipped = new Set((JSON.parse(out) as { files: { path: string }[] }[])[0]!.files.map((f) => f.path));
  const expected = LUA_DIRS.flatMap((dir) => {
    const src = join(CORE, 'src', dir);
    return luaFiles(src).flatMap((f) => ['esm', 'cjs'].map((format) => `dist/${format}/${dir}/${relative(src, f).split('\\').join('/')}`));
  });
  assert.ok(expected.length >= 22, `found ${expected.length / 2} .lua files`);
  assert.ok(expected.includes('dist/cjs/backends/redis-lua/storeResults-0.lua'), 'the result backend scripts are counted');
  assert.deepEqual(expected.filter((f) => !shipped.has(f)), [], 'Lua files missing from the tarball');
});

test('the compiled scripts of both builds load their Lua from dist, identical to the sources', async () => {
  for (const format of ['esm', 'cjs']) await sameScripts(format);
});

async function sameScripts(format: string): Promise<void> {
  const dist = (await import(pathToFileURL(join(CORE, 'dist', format, 'brokers', 'redis-scripts.js')).href)) as { scripts: Record<string, { lua: string; sha: string }> };
  assert.deepEqual(Object.keys(dist.scripts).sort(), Object.keys(sourceScripts).sort());
  for (const [name, script] of Object.entries(sourceScripts)) {
    assert.equal(dist.scripts[name]!.sha, script.sha, `${name}: dist and src differ (rebuild)`);
    assert.doesNotMatch(script.lua, /--- @include/, `${name}: includes expanded`);
  }
}
