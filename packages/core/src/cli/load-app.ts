import { spawnSync } from 'node:child_process';
import { existsSync, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import { isAbsolute, join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { createApp, type Celeriac } from '../app.js';
import { isCeleriacApp } from '../process-state.js';
import { bindApp } from '../web/bind-app.js';
import type { Settings } from '../config.js';
import { ConfigurationError } from '../errors.js';

const CANDIDATE_EXPORTS = ['default', 'app', 'celeriac', 'celery'];
// Like Celery's `-A proj` trying `proj.celery`: a folder is looked into for celeriac.* or index.*.
const EXTENSIONS = ['', '.js', '.mjs', '.cjs', '.ts', '.mts', '/celeriac.js', '/celeriac.ts', '/index.js', '/index.ts'];

/** Where an `-A` module was found: a file, or a package resolved from the working directory. */
interface Located {
  url: string;
  path: string;
}

function resolveModulePath(spec: string, cwd: string): string | null {
  const base = isAbsolute(spec) ? spec : resolve(cwd, spec);
  for (const ext of EXTENSIONS) {
    const candidate = base.replace(/\/$/, '') + ext;
    if (existsSync(candidate) && statSync(candidate).isFile()) return candidate;
  }
  return null;
}

const isBareName = (spec: string) => !/^[./]/.test(spec) && !isAbsolute(spec) && !/\.[cm]?[jt]s$/.test(spec);

function locate(modulePart: string, cwd: string): Located {
  const path = resolveModulePath(modulePart, cwd);
  if (path) return { url: pathToFileURL(path).href, path };
  if (isBareName(modulePart)) {
    try {
      const found = createRequire(join(cwd, 'noop.js')).resolve(modulePart);
      return { url: pathToFileURL(found).href, path: found };
    } catch {
      // not an installed package either: reported below
    }
  }
  throw new ConfigurationError(
    `-A ${modulePart}: no module at ${modulePart} (resolved from ${cwd}): no such file, nor with .js/.mjs/.cjs/.ts/.mts, ` +
      `nor a folder holding celeriac.* or index.*${isBareName(modulePart) ? ', nor an installed package of that name' : ''}. Check the path, relative to where you run celeriac.`,
  );
}

/** The first stack frame in the user's code (not node internals, not node_modules). */
function userFrame(stack: string): string | null {
  for (const line of stack.split('\n')) {
    const m = /^\s+at (?:.*\()?((?:file:\/\/)?\/[^()]*?:\d+:\d+)\)?$/.exec(line);
    if (m && !m[1]!.includes('/node_modules/')) return m[1]!.replace(/^file:\/\//, '');
  }
  return null;
}

/** Where a syntax error is, from `node --check` (import() does not say, for ES modules). */
function syntaxErrorLocation(path: string): string | null {
  if (!/\.[cm]?js$/.test(path)) return null;
  const check = spawnSync(process.execPath, ['--check', path], { encoding: 'utf8', timeout: 10_000 });
  if (check.status === 0) return null;
  return check.stderr.split('\n\nSyntaxError')[0]?.trim() || null;
}

function loadFailure(spec: string, located: Located, err: unknown): ConfigurationError {
  if (err instanceof ConfigurationError) return err;
  const error = err instanceof Error ? err : new Error(String(err));
  const lines = (error.stack ?? `${error.name}: ${error.message}`).split('\n');
  const ours = lines.findIndex((line) => /\/cli\/load-app\.[jt]s:\d+/.test(line)); // frames from here down are the loader's
  const stack = (ours === -1 ? lines : lines.slice(0, ours)).filter((line) => !/\(node:internal\/|^\s+at node:internal\//.test(line)).join('\n');
  const where = userFrame(stack);
  const syntax = error instanceof SyntaxError && !where ? syntaxErrorLocation(located.path) : null;
  const at = where ? `, at ${where}` : syntax ? `, at ${syntax.split('\n')[0]}` : '';
  return new ConfigurationError(`-A ${spec}: ${located.path} threw while loading${at}:\n${syntax ? syntax + '\n\n' : ''}${stack}`);
}

/** Whether a value looks like an app of a copy of @celeriac/core too old to carry the brand. */
const isForeignApp = (v: unknown) => !!v && typeof v === 'object' && !isCeleriacApp(v) && v.constructor?.name === 'Celeriac';

function pickApp(mod: Record<string, unknown>, spec: string, modulePart: string, attribute: string | undefined, path: string): Celeriac {
  const names = Object.keys(mod);
  const listed = names.length > 0 ? names.join(', ') : 'none';
  if (attribute) {
    if (!(attribute in mod)) throw new ConfigurationError(`-A ${spec}: ${path} has no export ${JSON.stringify(attribute)} (its exports: ${listed}).`);
    const found = mod[attribute];
    if (isCeleriacApp(found)) return found;
    if (isForeignApp(found)) throw foreignCopy(spec);
    throw new ConfigurationError(`-A ${spec}: export ${JSON.stringify(attribute)} is not a Celeriac app (createApp(...)).`);
  }
  for (const name of CANDIDATE_EXPORTS) if (isCeleriacApp(mod[name])) return mod[name];
  const apps = names.filter((n) => isCeleriacApp(mod[n]));
  if (apps.length === 1) return mod[apps[0]!] as Celeriac;
  if (apps.length > 1) {
    throw new ConfigurationError(`-A ${spec}: ${path} exports ${apps.length} Celeriac apps (${apps.join(', ')}); name one: -A ${modulePart}:${apps[0]}.`);
  }
  if (names.some((n) => isForeignApp(mod[n]))) throw foreignCopy(spec);
  throw new ConfigurationError(
    `-A ${spec}: ${path} exports no Celeriac app (its exports: ${listed}): export an app created with createApp ` +
      `(export const app = createApp('proj')), or name it with -A ${modulePart}:<export>.`,
  );
}

function foreignCopy(spec: string): ConfigurationError {
  return new ConfigurationError(
    `-A ${spec}: the app was created by another copy of @celeriac/core than this celeriac command runs from; ` +
      `run the project's own command (npx --no-install celeriac ...) so both are the same copy.`,
  );
}

/**
 * Load the app like Celery's `-A`: `path/to/module[:attribute]`. Without an
 * attribute the module's `default`, `app`, `celeriac` or `celery` export is used,
 * or the only exported Celeriac instance. TypeScript modules load through `tsx`
 * when it is installed. Errors say what happened: no such module (and where it
 * was looked for), the module threw (where, with its stack), or no app exported.
 */
export async function loadApp(spec: string, cwd: string = process.cwd()): Promise<Celeriac> {
  const [modulePart, attribute] = spec.includes(':') && !/^[A-Za-z]:\\/.test(spec) ? (spec.split(':', 2) as [string, string]) : [spec, undefined];
  const located = locate(modulePart, cwd);
  if (/\.[mc]?ts$/.test(located.path)) await registerTsx(located.path);
  let mod: Record<string, unknown>;
  try {
    mod = (await import(located.url)) as Record<string, unknown>;
  } catch (err) {
    throw loadFailure(spec, located, err);
  }
  return pickApp(mod, spec, modulePart, attribute, located.path);
}

async function registerTsx(path: string): Promise<void> {
  try {
    const api = (await import('tsx/esm/api' as string)) as { register: () => void };
    api.register();
  } catch {
    throw new ConfigurationError(`${path} is TypeScript: install tsx (npm i -D tsx) or point -A at the compiled .js file.`);
  }
}

/** Flags shared by every command (given before or after the command name). */
export interface ConnectionFlags {
  app?: string;
  broker?: string;
  /** `--result-backend` (Celery's name) or `--backend`. */
  resultBackend?: string;
  backend?: string;
}

/** Settings given on the command line or in the environment (`CELERIAC_BROKER_URL` / `CELERY_BROKER_URL`, `..._RESULT_BACKEND`). */
export function overridesFrom(flags: ConnectionFlags): Partial<Settings> {
  const out: Partial<Settings> = {};
  const broker = flags.broker ?? process.env.CELERIAC_BROKER_URL ?? process.env.CELERY_BROKER_URL;
  const backend = flags.resultBackend ?? flags.backend ?? process.env.CELERIAC_RESULT_BACKEND ?? process.env.CELERY_RESULT_BACKEND;
  if (broker) out.brokerUrl = broker;
  if (backend) out.resultBackend = backend;
  return out;
}

/** The app from `-A`, or a bare one for commands that only need connections. */
export async function appFor(flags: ConnectionFlags): Promise<Celeriac> {
  const app = flags.app ? await loadApp(flags.app) : createApp('celeriac');
  const overrides = overridesFrom(flags);
  // The worker binds the app the web process binds too (bindApp): a module that
  // already bound it to another broker fails here with both URLs named.
  return Object.keys(overrides).length > 0 ? bindApp(app, overrides, 'the celeriac command (-b / CELERY_BROKER_URL)') : app;
}
