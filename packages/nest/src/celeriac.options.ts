import type { BindConfig, Celeriac, EmbeddedWorkerMode, TaskProducerOptions, WorkerOptions } from '@celeriac/core';

/** Options of `CeleriacModule.forRoot()` (and what `forRootAsync()`'s factory returns). */
export interface CeleriacModuleOptions {
  /**
   * The process's app, declared in a tasks module that the web app and the worker
   * both import (`export const celeriac = createApp('proj')`). Default: a new app
   * named `name`.
   */
  app?: Celeriac;
  /** Name of the app created when `app` is not given. Default `'celeriac'`. */
  name?: string;
  /**
   * The settings to bind the app to (see `bindApp`): Celeriac settings
   * (`{ brokerUrl }`), a config with a `celeriac` section, or `CELERY_*` /
   * `CELERIAC_*` keys (e.g. `configService.get(...)` results or `process.env`).
   * Default: none (the app's own settings; `memory://` when it has none).
   */
  config?: BindConfig;
  /**
   * Consume tasks in this process: `true` / `'embedded'` always (a worker
   * entrypoint), `false` never (a web app that only sends). Default: only on
   * `memory://`, so an app works with zero servers.
   */
  worker?: EmbeddedWorkerMode;
  /** Options of the worker this module runs (queues, concurrency, log level...). */
  workerOptions?: WorkerOptions;
  /**
   * Do not start consuming in `onApplicationBootstrap`: the application calls
   * `app.get(CeleriacWorker).start()` itself when it is ready. Tasks are still
   * discovered and registered at start-up.
   */
  manualRegistration?: boolean;
  /** Extra message headers per send, from the request context (see `createTaskProducer`). */
  headers?: TaskProducerOptions['headers'];
  /**
   * The request id of an HTTP request. Default: the `X-Request-Id` header, else the
   * framework's id (Fastify's `request.id`), else a new UUID.
   */
  requestId?: (request: unknown) => string | undefined;
}
