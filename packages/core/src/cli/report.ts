/**
 * `celeriac report`, shaped like `celery report`: versions of Celeriac, Node and
 * the libraries it runs on, the platform, the app, then every setting that
 * differs from its default, with secrets masked by Celery's own rule (a name
 * matching API|TOKEN|KEY|SECRET|PASS|SIGNATURE|DATABASE, and URL passwords).
 */
import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { arch, platform, release } from 'node:os';
import { dirname, join } from 'node:path';
import { appFor, type ConnectionFlags } from './load-app.js';
import type { Celeriac } from '../app.js';
import { defaultSettings } from '../config.js';

const MASK = '********';
/** Celery's `HIDDEN_SETTINGS` (celery/app/utils.py). */
const HIDDEN = /API|TOKEN|KEY|SECRET|PASS|PROFANITIES_LIST|SIGNATURE|DATABASE/i;

/**
 * A URL with its password replaced by `mask` (unparseable values are masked by
 * pattern); each URL of a `;` list (`sentinel://:pw@h1;sentinel://:pw@h2`, as
 * Celery's SentinelBackend sanitizes each chunk).
 */
export function maskUrlPassword(url: string, mask = MASK): string {
  if (url.includes(';')) return url.split(';').map((chunk) => maskUrlPassword(chunk, mask)).join(';');
  return url.replace(/^([a-z][a-z0-9+.-]*:\/\/[^:@/]*):[^@/]*@/i, `$1:${mask}@`);
}

/** A setting's value as `celery report` shows it: hidden names masked, URLs sanitized, objects masked inside. */
export function censor(key: string, value: unknown): unknown {
  if (value && typeof value === 'object' && !Array.isArray(value)) {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, censor(k, v)]));
  }
  if (HIDDEN.test(key)) return MASK;
  if (typeof value === 'string' && /url|backend/i.test(key)) return maskUrlPassword(value);
  return value;
}

const require = createRequire(import.meta.url);

/** The installed version of a dependency (its package.json, found upwards from its entry point), or `?`. */
function versionOf(name: string): string {
  try {
    let dir = dirname(require.resolve(name));
    for (let depth = 0; depth < 6; depth++, dir = dirname(dir)) {
      const file = join(dir, 'package.json');
      if (!existsSync(file)) continue;
      const pkg = JSON.parse(readFileSync(file, 'utf8')) as { name?: string; version?: string };
      if (pkg.name === name) return pkg.version ?? '?';
    }
  } catch {
    // not resolvable from here
  }
  return '?';
}

const scheme = (url: string | null) => (url ? (/^([a-z][a-z0-9+.-]*):/i.exec(url)?.[1] ?? url) : 'disabled');

/** The report text for an app. */
export function reportText(app: Celeriac, version: string, appSource: string): string {
  const s = app.settings;
  const defaults = defaultSettings() as unknown as Record<string, unknown>;
  const changed = Object.entries(s).filter(([k, v]) => JSON.stringify(v) !== JSON.stringify(defaults[k]));
  const results = app.resultBackendUrl;
  const lines = [
    `software -> celeriac:${version} node:${process.version}`,
    `            ioredis:${versionOf('ioredis')} pino:${versionOf('pino')} commander:${versionOf('commander')}`,
    `platform -> system:${platform()} arch:${arch()}`,
    `            kernel version:${release()}`,
    `app      -> ${app.name} (${appSource}) tasks:${app.taskNames.length}`,
    `settings -> transport:${scheme(s.brokerUrl)} results:${results ? maskUrlPassword(results, '**') : 'disabled'}`,
    '',
    ...changed.map(([k, v]) => `${k}: ${JSON.stringify(censor(k, v))}`),
    '',
  ];
  return lines.join('\n');
}

/** `celeriac report`: print the report (connects to nothing). */
export async function reportCommand(flags: ConnectionFlags, version: string): Promise<void> {
  const app = await appFor(flags);
  process.stdout.write(reportText(app, version, flags.app ?? 'no -A'));
}
