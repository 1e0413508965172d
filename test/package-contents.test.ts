/**
 * What `npm pack` would publish for each workspace package: README and LICENSE in
 * every tarball, source maps whose sources ship too, the CLI's bin, and
 * dependency ranges a user's install can resolve (no exact pins between siblings,
 * the web frameworks as peer dependencies). Needs a build (`npm test` builds first).
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, normalize, relative } from 'node:path';
import { before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';

const REPO = join(dirname(fileURLToPath(import.meta.url)), '..');

interface PackResult {
  name: string;
  version: string;
  entryCount: number;
  files: { path: string }[];
}

interface PackageJson {
  name: string;
  version: string;
  main?: string;
  types?: string;
  bin?: Record<string, string>;
  license?: string;
  exports?: Record<string, string | Record<string, string | Record<string, string>>>;
  dependencies?: Record<string, string>;
  peerDependencies?: Record<string, string>;
  peerDependenciesMeta?: Record<string, { optional?: boolean }>;
}

const PACKAGES = ['core', 'express', 'fastify', 'nest'] as const;
/** The framework each adapter plugs into: peer dependencies a user installs themselves. */
const FRAMEWORK_PEERS: Record<string, string[]> = {
  express: ['express'],
  fastify: ['fastify'],
  nest: ['@nestjs/common', '@nestjs/core', 'reflect-metadata', 'rxjs'],
};

const packs = new Map<string, { dir: string; manifest: PackageJson; files: Set<string>; entryCount: number }>();

before(() => {
  for (const pkg of PACKAGES) {
    for (const format of ['esm', 'cjs']) {
      assert.ok(existsSync(join(REPO, 'packages', pkg, 'dist', format, 'index.js')), `packages/${pkg}/dist/${format} is missing: run npm run build`);
    }
  }
  const out = execFileSync('npm', ['pack', '--dry-run', '--json', '--workspaces'], { cwd: REPO, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  const results = JSON.parse(out) as PackResult[];
  for (const pkg of PACKAGES) {
    const dir = join(REPO, 'packages', pkg);
    const manifest = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as PackageJson;
    const result = results.find((r) => r.name === manifest.name);
    assert.ok(result, `npm pack listed no ${manifest.name}`);
    packs.set(pkg, { dir, manifest, files: new Set(result.files.map((f) => f.path)), entryCount: result.entryCount });
  }
});

for (const pkg of PACKAGES) {
  describe(`@celeriac/${pkg} tarball`, () => {
    test('ships README.md, LICENSE (MIT) and package.json', () => {
      const { files, manifest, dir } = packs.get(pkg)!;
      for (const name of ['README.md', 'LICENSE', 'package.json']) assert.ok(files.has(name), `${name} missing from ${manifest.name}`);
      assert.equal(manifest.license, 'MIT');
      assert.match(readFileSync(join(dir, 'LICENSE'), 'utf8'), /^MIT License/);
    });

    test('ships only the build, its sources and the bin (no tests, no build info)', () => {
      const { files } = packs.get(pkg)!;
      const stray = [...files].filter((f) => !/^(dist|src|bin)\/|^(README\.md|LICENSE|package\.json)$/.test(f) || /\.tsbuildinfo$|\.test\./.test(f));
      assert.deepEqual(stray, []);
    });

    test('every source map points at files inside the tarball', () => {
      const { files, dir, manifest } = packs.get(pkg)!;
      const maps = [...files].filter((f) => f.endsWith('.map'));
      assert.ok(maps.length > 0, 'the build emits source maps');
      const dangling: string[] = [];
      for (const mapPath of maps) {
        const map = JSON.parse(readFileSync(join(dir, mapPath), 'utf8')) as { sources: string[]; sourceRoot?: string };
        for (const source of map.sources) {
          const target = normalize(join(dirname(mapPath), map.sourceRoot ?? '', source));
          if (!files.has(target)) dangling.push(`${mapPath} → ${target}`);
        }
      }
      assert.deepEqual(dangling, [], `${manifest.name}: source maps reference files not in the tarball`);
    });

    test('ESM and CommonJS builds: exports conditions with types for each (module-sync before require), dist/cjs marked CommonJS', () => {
      const { files, manifest } = packs.get(pkg)!;
      const root = manifest.exports?.['.'] as Record<string, Record<string, string>>;
      assert.deepEqual(Object.keys(root), ['module-sync', 'import', 'require'], 'condition order: module-sync, import, require');
      for (const [condition, format] of [['module-sync', 'esm'], ['import', 'esm'], ['require', 'cjs']] as const) {
        assert.deepEqual(root[condition], { types: `./dist/${format}/index.d.ts`, default: `./dist/${format}/index.js` }, condition);
      }
      assert.ok(files.has('dist/cjs/package.json'), 'dist/cjs/package.json is packed');
      const dir = packs.get(pkg)!.dir;
      assert.deepEqual(JSON.parse(readFileSync(join(dir, 'dist/cjs/package.json'), 'utf8')), { type: 'commonjs' });
      assert.match(readFileSync(join(dir, 'dist/cjs/index.js'), 'utf8'), /^"use strict";/, 'dist/cjs holds CommonJS');
      assert.equal(manifest.main, 'dist/cjs/index.js');
    });

    test('main, types, exports and bin targets are in the tarball', () => {
      const { files, manifest } = packs.get(pkg)!;
      const leaves = (v: unknown): string[] => (typeof v === 'string' ? [v] : v && typeof v === 'object' ? Object.values(v).flatMap(leaves) : []);
      const targets = [manifest.main, manifest.types, ...leaves(manifest.exports), ...Object.values(manifest.bin ?? {})];
      for (const t of targets.filter((x): x is string => !!x)) {
        assert.ok(files.has(relative('.', normalize(t))), `${manifest.name}: ${t} is declared but not packed`);
      }
    });
  });
}

test('@celeriac/core ships the celeriac bin, committed rather than built', () => {
  const { files, manifest } = packs.get('core')!;
  assert.equal(manifest.bin?.celeriac, 'bin/celeriac.js');
  assert.ok(files.has('bin/celeriac.js'));
  assert.ok(files.has('dist/esm/cli/main.js'), 'the bin imports dist/esm/cli/main.js');
  const tracked = execFileSync('git', ['ls-files', 'packages/core/bin/celeriac.js'], { cwd: REPO, encoding: 'utf8' }).trim();
  assert.equal(tracked, 'packages/core/bin/celeriac.js', 'the bin is committed, so npm ci links it before any build');
});

test('@celeriac/core ships every non-TypeScript file of src/ next to the compiled code (the Lua scripts)', () => {
  const { files, dir } = packs.get('core')!;
  const assets = (readdirSync(join(dir, 'src'), { recursive: true }) as string[]).filter((f) => !/\.[cm]?ts$/.test(f) && statSync(join(dir, 'src', f)).isFile());
  assert.ok(assets.some((f) => f.endsWith('.lua')), 'the Redis transport keeps its Lua scripts in src/');
  const missingFromDist = assets.flatMap((f) => ['esm', 'cjs'].map((format) => `dist/${format}/${f}`)).filter((f) => !files.has(f));
  assert.deepEqual(missingFromDist, [], 'assets loaded at run time from dist/esm/ and dist/cjs/ but not packed there');
});

test('adapters depend on a caret range of @celeriac/core and peer on their framework', () => {
  const core = packs.get('core')!.manifest;
  for (const pkg of ['express', 'fastify', 'nest']) {
    const { manifest } = packs.get(pkg)!;
    assert.equal(manifest.dependencies?.['@celeriac/core'], `^${core.version}`, `${manifest.name} pins @celeriac/core exactly`);
    for (const peer of FRAMEWORK_PEERS[pkg]!) {
      assert.match(manifest.peerDependencies?.[peer] ?? '', /^\^\d/, `${manifest.name} has no peer dependency on ${peer}`);
    }
  }
});
