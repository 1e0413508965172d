/**
 * The docs say what the code does: docs/configuration.md lists every setting of
 * `Settings` with its real default, and every environment / Celery / old name it
 * gives is one `fromObject` maps to that setting. README and docs link only inside
 * the repository.
 */
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { defaultSettings, fromObject, type Settings } from '../packages/core/src/index.ts';

const REPO = join(dirname(fileURLToPath(import.meta.url)), '..');
const CONFIG_DOC = readFileSync(join(REPO, 'docs/configuration.md'), 'utf8');

interface Row {
  key: keyof Settings;
  celeryNames: string[];
  envNames: string[];
  oldNames: string[];
  defaultText: string;
}

/** Rows of the settings tables: | `key` | Celery name | environment | old name | default | meaning |. */
function settingRows(): Row[] {
  const rows: Row[] = [];
  for (const line of CONFIG_DOC.split('\n')) {
    if (!line.startsWith('| `')) continue;
    const cells = line.split(' | ').map((c) => c.replace(/^\| |\s*\|$/g, ''));
    if (cells.length < 6) continue;
    const names = (cell: string) => [...cell.matchAll(/`([A-Za-z0-9_]+)`/g)].map((m) => m[1]!);
    rows.push({
      key: names(cells[0]!)[0] as keyof Settings,
      celeryNames: names(cells[1]!),
      envNames: names(cells[2]!),
      oldNames: names(cells[3]!),
      defaultText: cells[4]!,
    });
  }
  return rows;
}

/** A value of the setting's type, written as the environment would give it. */
function asEnvString(value: unknown): string {
  if (value === null) return '';
  if (Array.isArray(value)) return value.join(',');
  if (typeof value === 'object') return JSON.stringify(value);
  return String(value);
}

test('docs/configuration.md lists every setting once', () => {
  const documented = settingRows().map((r) => r.key);
  const actual = Object.keys(defaultSettings()) as (keyof Settings)[];
  assert.deepEqual([...documented].sort(), [...actual].sort(), 'docs/configuration.md must have one table row per Settings field (a new setting needs a row: name, Celery name, environment, old name, default, meaning)');
  assert.equal(new Set(documented).size, documented.length, 'a setting is listed twice');
});

test('every Celery, environment and old name in docs/configuration.md maps to its setting', () => {
  const defaults = defaultSettings();
  for (const row of settingRows()) {
    const value = asEnvString(defaults[row.key]);
    for (const env of row.envNames) {
      const got = fromObject({ [env]: value }, { namespace: 'CELERY', onUnknown: 'throw' });
      assert.ok(row.key in got, `${env} (environment) does not set ${row.key}`);
    }
    for (const name of [...row.celeryNames, ...row.oldNames]) {
      const got = fromObject({ [name]: value }, { onUnknown: 'throw' });
      assert.ok(row.key in got, `${name} does not set ${row.key}`);
    }
  }
});

test('the defaults in docs/configuration.md are the code defaults', () => {
  const defaults = defaultSettings() as unknown as Record<string, unknown>;
  for (const row of settingRows()) {
    const value = defaults[row.key];
    const text = row.defaultText;
    if (value === null) assert.match(text, /^none/, `${row.key}: default is none`);
    else if (typeof value === 'number' && row.key === 'workerConcurrency') assert.match(text, /CPUs/);
    else if (typeof value === 'number' && row.key === 'maxMessageSize') assert.equal(value, 16 * 1024 * 1024, text);
    else if (typeof value === 'number' || typeof value === 'boolean') assert.ok(text.startsWith(`\`${value}\``), `${row.key}: docs say ${text}, code says ${value}`);
    else if (typeof value === 'string') assert.ok(text.startsWith(`\`${value}\``), `${row.key}: docs say ${text}, code says ${value}`);
    else if (Array.isArray(value)) assert.ok(text.startsWith(`\`${JSON.stringify(value).replaceAll('"', "'")}\``), `${row.key}: docs say ${text}`);
    else if (Object.keys(value as object).length === 0) assert.ok(text.startsWith('`{}`'), `${row.key}: docs say ${text}`);
    else for (const [k, v] of Object.entries(value as object)) assert.ok(text.includes(`${k}: ${v}`), `${row.key}: docs say ${text}, code has ${k}: ${v}`);
  }
});

test('docs/architecture.md names every source file of packages/core/src', () => {
  const architecture = readFileSync(join(REPO, 'docs/architecture.md'), 'utf8');
  const src = join(REPO, 'packages/core/src');
  const files = (readdirSync(src, { recursive: true }) as string[]).filter((f) => /\.[cm]?ts$/.test(f));
  const unnamed = files.filter((f) => !architecture.includes(`\`${f}\``) && !architecture.includes(`\`${f.split('/').pop()}\``));
  assert.deepEqual(unnamed, [], 'add each file, with the job it does, to the packages/core/src table of docs/architecture.md');
});

test('README.md and docs/*.md link only to files inside the repository', () => {
  const pages = ['README.md', ...readdirSync(join(REPO, 'docs')).filter((f) => f.endsWith('.md')).map((f) => `docs/${f}`)];
  const broken: string[] = [];
  for (const page of pages) {
    const text = readFileSync(join(REPO, page), 'utf8');
    for (const [, target] of text.matchAll(/\]\(([^)#\s]+)(?:#[^)]*)?\)/g)) {
      if (/^[a-z]+:/.test(target!)) continue; // absolute URLs
      const resolved = join(REPO, dirname(page), target!);
      if (!resolved.startsWith(REPO + '/') || !existsSync(resolved)) broken.push(`${page} → ${target}`);
    }
    assert.doesNotMatch(text, /\.\.\/shared|\/work\/shared/, `${page} points at the reference shelf outside the repo`);
  }
  assert.deepEqual(broken, []);
});

test('README: the Express, Fastify and NestJS sections each show their adapter in under 15 lines of code, and the Flask/Celery mapping is there', () => {
  const readme = readFileSync(join(REPO, 'README.md'), 'utf8');
  for (const heading of ['Express', 'Fastify', 'NestJS']) {
    const start = readme.indexOf(`\n## ${heading}\n`);
    assert.ok(start >= 0, `README has a "## ${heading}" section`);
    const end = readme.indexOf('\n## ', start + 1);
    const section = readme.slice(start, end < 0 ? undefined : end);
    const blocks = [...section.matchAll(/```ts\n([\s\S]*?)```/g)].map((m) => m[1]!.trimEnd().split('\n').length);
    assert.ok(blocks.length >= 1, `the ${heading} section has a code block`);
    assert.ok(blocks.every((n) => n < 15), `the ${heading} section's code blocks have ${blocks.join(', ')} lines; keep each under 15`);
  }
  for (const pair of ['celery_init_app', 'queuePlugin', '@shared_task', '@Task()', 'celery -A proj worker', 'nest start worker']) assert.ok(readme.includes(pair), `README maps ${pair}`);
});

