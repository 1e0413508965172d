import { defaultSettings, settingsFromConfig, type Celeriac, type EmbeddedWorkerMode, type Settings, type WorkerOptions } from '@celeriac/core';
import type { FastifyInstance, FastifyRequest } from 'fastify';

/**
 * Options of `celeriacPlugin`: the Celeriac settings for the web process, plus what
 * the adapter itself needs. Settings may be camelCase (`brokerUrl`), `CELERY_*` /
 * `CELERIAC_*` keys or a `celeriac` section (see `bindApp`); they are merged over
 * `fastify.config` when `@fastify/env` (or anything else) decorated it.
 */
export interface CeleriacPluginOptions extends Partial<Settings> {
  /**
   * The app your tasks module declared (`createApp('proj')`). Default: the one app
   * declared in this process, so importing the tasks module first is enough.
   */
  app?: Celeriac;
  /**
   * Run a worker inside the web process. Default: only on `memory://` (where a
   * separate worker cannot see the messages). `false`: never (the web process only
   * produces); `'embedded'` or `true`: also with a real broker.
   */
  worker?: EmbeddedWorkerMode;
  /** Options of the embedded worker (concurrency, queues, log level...). */
  workerOptions?: WorkerOptions;
  /**
   * Extra task headers from the request (a tenant id...), added to every task sent
   * while handling it, next to the request id and trace context.
   */
  headers?: (request: FastifyRequest) => Record<string, string | undefined> | undefined;
  /** `CELERY_*` / `CELERIAC_*` keys and a `celeriac` section are settings too. */
  [setting: string]: unknown;
}

/** Keys of the options that belong to the adapter or to Fastify's `register`, never settings. */
const ADAPTER_KEYS = new Set(['app', 'worker', 'workerOptions', 'headers', 'prefix', 'logLevel', 'logSerializers']);
const SETTING_KEYS = new Set(Object.keys(defaultSettings()));

/**
 * The settings the plugin binds the app with: `fastify.config`'s Celery keys
 * (`CELERY_*`, `CELERIAC_*`, a `celeriac` section; its other keys such as PORT are
 * ignored), then the plugin options over them. A camelCase option that is neither an
 * adapter option nor a setting is a typo: it throws, naming the key.
 */
export function pluginSettings(fastify: FastifyInstance, options: CeleriacPluginOptions): Partial<Settings> {
  const own: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(options)) {
    if (ADAPTER_KEYS.has(key) || value === undefined) continue;
    if (/^[a-z][a-zA-Z0-9]*$/.test(key) && key !== 'celeriac' && !SETTING_KEYS.has(key)) {
      throw new TypeError(
        `celeriacPlugin: unknown option ${JSON.stringify(key)}. Options are the Celeriac settings (brokerUrl, resultBackend... see docs/configuration.md) plus app, worker, workerOptions and headers.`,
      );
    }
    own[key] = value;
  }
  const decorated = fastify.hasDecorator('config') ? (fastify as unknown as { config: unknown }).config : undefined;
  const fromFastifyConfig = typeof decorated === 'object' && decorated !== null ? settingsFromConfig(decorated as Record<string, unknown>) : {};
  return { ...fromFastifyConfig, ...settingsFromConfig(own) };
}

/** Checks the `worker` option (the core treats unknown values as the default). */
export function workerMode(option: unknown): EmbeddedWorkerMode {
  if (option === undefined || option === true || option === false || option === 'embedded') return option;
  throw new TypeError(`celeriacPlugin: worker must be true, false or 'embedded', got ${JSON.stringify(option)}.`);
}
