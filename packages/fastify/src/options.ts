import { defaultSettings, fromObject, type Celeriac, type Settings, type WorkerOptions } from '@celeriac/core';
import type { FastifyInstance, FastifyRequest } from 'fastify';

/**
 * Options of `celeriacPlugin`: the Celeriac settings for the web process, plus what
 * the adapter itself needs. Settings may be camelCase (`brokerUrl`), Celery's names
 * (`broker_url`), `CELERY_*` / `CELERIAC_*` keys, or a `celeriac` section; they are
 * merged over `fastify.config` when `@fastify/env` decorated it.
 */
export interface CeleriacPluginOptions extends Partial<Settings> {
  /**
   * The app your tasks module declared (`createApp('proj')`). Default: the one app
   * declared in this process, so importing the tasks module is enough.
   */
  app?: Celeriac;
  /**
   * Run a worker inside the web process. Default: only on `memory://` (where a
   * separate worker cannot see the messages). `false`: never (the web process only
   * produces); `'embedded'` or `true`: also with a real broker.
   */
  worker?: boolean | 'embedded';
  /** Options of the embedded worker (concurrency, queues, log level...). */
  workerOptions?: WorkerOptions;
  /**
   * Extra task headers taken from the request (a tenant id, a user id...). Added to
   * every task sent through `request.tasks`, next to the request id and trace context.
   */
  headers?: (request: FastifyRequest) => Record<string, unknown>;
  /** Any other key is a setting (Celery's names, `CELERY_*` / `CELERIAC_*`, a `celeriac` section). */
  [setting: string]: unknown;
}

/** Keys of the options that belong to the adapter or to Fastify's `register`, never settings. */
const ADAPTER_KEYS = new Set(['app', 'worker', 'workerOptions', 'headers', 'prefix', 'logLevel', 'logSerializers']);

/** camelCase setting names (`brokerUrl`...), to catch a misspelt option early. */
let settingNames: Set<string> | undefined;

/**
 * The settings part of the plugin options. A camelCase key that is neither an
 * adapter option nor a setting is a typo: it throws, naming the key.
 */
export function settingsFromOptions(options: CeleriacPluginOptions): Record<string, unknown> {
  settingNames ??= new Set(Object.keys(defaultSettings()));
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(options)) {
    if (ADAPTER_KEYS.has(key) || value === undefined) continue;
    if (/^[a-z][a-zA-Z0-9]*$/.test(key) && /[A-Z]/.test(key) && !settingNames.has(key)) {
      throw new TypeError(
        `celeriacPlugin: unknown option ${JSON.stringify(key)}. Options are the Celeriac settings (brokerUrl, resultBackend... see docs/configuration.md) plus app, worker, workerOptions and headers.`,
      );
    }
    out[key] = value;
  }
  return out;
}

const CELERY_KEY = /^(CELERY|CELERIAC)_[A-Z0-9_]+$/;

/**
 * The settings in what `@fastify/env` (or anything else) decorated as
 * `fastify.config`: its `CELERY_*` keys, then its `CELERIAC_*` keys (Celery's
 * names, mapped by `fromObject`), then a `celeriac` section of camelCase settings.
 * The rest of the app's config (PORT, DATABASE_URL...) is not ours and is left out.
 */
export function fastifyConfig(fastify: FastifyInstance): Partial<Settings> {
  if (!fastify.hasDecorator('config')) return {};
  const config = (fastify as unknown as { config: unknown }).config;
  if (typeof config !== 'object' || config === null) return {};
  const celery: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(config)) if (CELERY_KEY.test(key) && value !== undefined) celery[key] = value;
  const section = (config as { celeriac?: unknown }).celeriac;
  return {
    ...fromObject(celery, { namespace: 'CELERY' }),
    ...fromObject(celery, { namespace: 'CELERIAC' }),
    ...(typeof section === 'object' && section !== null ? (section as Partial<Settings>) : {}),
  };
}

/** Whether the web process should run the embedded worker for this broker. */
export function wantsEmbeddedWorker(option: CeleriacPluginOptions['worker'], brokerUrl: string): boolean {
  if (option === false) return false;
  if (option === true || option === 'embedded') return true;
  if (option !== undefined) throw new TypeError(`celeriacPlugin: worker must be true, false or 'embedded', got ${JSON.stringify(option)}.`);
  return brokerUrl.toLowerCase().startsWith('memory:');
}
