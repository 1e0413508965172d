import { existsSync, statSync } from 'node:fs';
import { isAbsolute, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { Celeriac, createApp } from '../app.js';
import type { Settings } from '../config.js';
import { ConfigurationError } from '../errors.js';

const CANDIDATE_EXPORTS = ['default', 'app', 'celeriac', 'celery'];
// Like Celery's `-A proj` trying `proj.celery`: a folder is looked into for celeriac.* or index.*.
const EXTENSIONS = ['', '.js', '.mjs', '.cjs', '.ts', '.mts', '/celeriac.js', '/celeriac.ts', '/index.js', '/index.ts'];

function resolveModulePath(spec: string): string | null {
  const base = isAbsolute(spec) ? spec : resolve(process.cwd(), spec);
  for (const ext of EXTENSIONS) {
    const candidate = base.replace(/\/$/, '') + ext;
    if (existsSync(candidate) && statSync(candidate).isFile()) return candidate;
  }
  return null;
}

/**
 * Load the app like Celery's `-A`: `path/to/module[:attribute]`. Without an
 * attribute the module's `default`, `app`, `celeriac` or `celery` export is used,
 * or the only exported Celeriac instance. TypeScript modules load through `tsx`
 * when it is installed.
 */
export async function loadApp(spec: string): Promise<Celeriac> {
  const [modulePart, attribute] = spec.includes(':') && !/^[A-Za-z]:\\/.test(spec) ? (spec.split(':', 2) as [string, string]) : [spec, undefined];
  const path = resolveModulePath(modulePart);
  let url: string;
  if (path) {
    if (/\.[mc]?ts$/.test(path)) await registerTsx(path);
    url = pathToFileURL(path).href;
  } else {
    url = modulePart; // a package name
  }
  let mod: Record<string, unknown>;
  try {
    mod = (await import(url)) as Record<string, unknown>;
  } catch (err) {
    throw new ConfigurationError(`Cannot load app module ${JSON.stringify(modulePart)} given with -A: ${(err as Error).message}`);
  }
  if (attribute) {
    const found = mod[attribute];
    if (!(found instanceof Celeriac)) throw new ConfigurationError(`-A ${spec}: export ${JSON.stringify(attribute)} is not a Celeriac app (createApp(...)).`);
    return found;
  }
  for (const name of CANDIDATE_EXPORTS) if (mod[name] instanceof Celeriac) return mod[name] as Celeriac;
  const apps = Object.values(mod).filter((v): v is Celeriac => v instanceof Celeriac);
  if (apps.length === 1) return apps[0]!;
  throw new ConfigurationError(
    `-A ${spec}: found ${apps.length} Celeriac apps among the exports; export one as "app" or name it: -A ${modulePart}:<export>.`,
  );
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

/** Settings given on the command line or in the environment (`CELERY_BROKER_URL`, `CELERY_RESULT_BACKEND`). */
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
  return app.configure(overridesFrom(flags));
}
