/**
 * Binding the process's app to a web framework's (or the worker's) config, the
 * way Flask's `celery_init_app(app)` reads `app.config["CELERY"]`: the tasks
 * module declares the app before any config exists; the adapter or the worker
 * entrypoint binds it once. Binding again with another broker URL throws.
 */
import type { Celeriac } from '../app.js';
import { defaultSettings, fromObject, type Settings } from '../config.js';
import { ConfigurationError } from '../errors.js';
import { maskUrl } from '../mask-url.js';

/**
 * What `bindApp` reads: Celeriac settings (`{ brokerUrl }`), a framework config
 * holding a `celeriac` section (camelCase or Celery's snake_case names), or flat
 * `CELERY_*` / `CELERIAC_*` keys (`CELERY_BROKER_URL`, as in a Flask or Django
 * config or `process.env`). Other keys are ignored, so a whole framework config
 * can be passed.
 */
export type BindConfig = Partial<Settings> | Readonly<Record<string, unknown>>;

/** What the app was bound to, kept on the app (shared by every copy of the package). */
interface Binding {
  brokerUrl: string;
  source: string;
}

const BINDING = Symbol.for('celeriac.binding');

const SETTING_KEYS = new Set(Object.keys(defaultSettings()));

/**
 * The settings in a framework config (see `BindConfig`); throws on a bad value
 * or an unknown name inside a `celeriac` section.
 */
export function settingsFromConfig(config: BindConfig | undefined): Partial<Settings> {
  if (!config) return {};
  const out: Record<string, unknown> = {};
  const celery: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(config)) {
    if (value === undefined) continue;
    if (SETTING_KEYS.has(key)) out[key] = value;
    else if (key.startsWith('CELERIAC_')) celery[`CELERY_${key.slice('CELERIAC_'.length)}`] = value;
    else if (key.startsWith('CELERY_') || key === 'BROKER_URL') celery[key] ??= value;
  }
  Object.assign(out, fromObject(celery, { namespace: 'CELERY' }));
  const section = (config as Record<string, unknown>).celeriac;
  if (section !== undefined) {
    if (typeof section !== 'object' || section === null || Array.isArray(section)) {
      throw new ConfigurationError(`The "celeriac" config section must be an object of settings ({ brokerUrl: 'redis://...' }), got ${JSON.stringify(section)}.`);
    }
    const camel: Record<string, unknown> = {};
    const snake: Record<string, unknown> = {};
    for (const [key, value] of Object.entries(section)) (SETTING_KEYS.has(key) ? camel : snake)[key] = value;
    Object.assign(out, fromObject(snake, { onUnknown: 'throw' }), camel);
  }
  return out as Partial<Settings>;
}

/**
 * Bind `app` to `config` (see `BindConfig`) and return it. The first binding
 * configures the app (connections still open lazily, on first use). A later
 * binding with the same broker URL is a no-op; with another broker URL it throws
 * a `ConfigurationError` naming both (masked) URLs and where they came from.
 * `source` names the caller in that message (e.g. `'@celeriac/express'`).
 */
export function bindApp(app: Celeriac, config: BindConfig | undefined, source = 'bindApp()'): Celeriac {
  const settings = settingsFromConfig(config);
  const holder = app as unknown as { [BINDING]?: Binding };
  const previous = holder[BINDING];
  const brokerUrl = settings.brokerUrl ?? app.settings.brokerUrl;
  if (previous) {
    if (previous.brokerUrl === brokerUrl) return app;
    throw new ConfigurationError(
      `App "${app.name}" is already bound to broker ${maskUrl(previous.brokerUrl)} (by ${previous.source}); ${source} asks for ${maskUrl(brokerUrl)}. ` +
        `A process has one app and one broker: give both the same broker URL (CELERY_BROKER_URL / the celeriac.brokerUrl setting), ` +
        `or bind only once (pass the config to the adapter and nowhere else).`,
    );
  }
  app.configure(settings);
  Object.defineProperty(holder, BINDING, { value: { brokerUrl: app.settings.brokerUrl, source } satisfies Binding, configurable: true });
  return app;
}

/** Whether `bindApp` already bound `app`, and to which (masked) broker URL. */
export function boundBrokerUrl(app: Celeriac): string | undefined {
  const binding = (app as unknown as { [BINDING]?: Binding })[BINDING];
  return binding ? maskUrl(binding.brokerUrl) : undefined;
}
