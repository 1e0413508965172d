/**
 * `queuePlugin(config)`: the Express middleware that binds the process's Celeriac
 * app to the web app's config (Flask's `celery_init_app`), starts the embedded
 * worker on `memory://`, runs each request in a request context (id and W3C trace
 * context) and gives it `req.tasks`, a producer carrying that context.
 */
import { randomUUID } from 'node:crypto';
import type { NextFunction, Request, RequestHandler, Response } from 'express';
import {
  bindApp,
  ConfigurationError,
  createTaskProducer,
  currentApp,
  isCeleriacApp,
  requestContextFromHeaders,
  runWithRequestContext,
  SseStreams,
  startEmbeddedWorker,
  useApp,
  type AppUse,
  type BindConfig,
  type Celeriac,
  type EmbeddedWorker,
  type EmbeddedWorkerMode,
  type RequestContext,
  type TaskProducer,
  type TaskProducerOptions,
  type WorkerOptions,
} from '@celeriac/core';

/** What `queuePlugin` takes besides the Celeriac settings. */
export interface QueuePluginOptions {
  /** The app to bind. Default: the process's app (`currentApp()`: the first `createApp` of the tasks module). */
  app?: Celeriac;
  /**
   * Run a worker in the web process: by default only on `memory://` (zero servers);
   * `false` never; `'embedded'` on any broker. Otherwise run `celeriac worker` apart.
   */
  worker?: EmbeddedWorkerMode;
  /** Options of the embedded worker (concurrency, queues, logLevel...). */
  workerOptions?: WorkerOptions;
  /** The request id: default `req.id` when a middleware set one, else `X-Request-Id`, else a new UUID (sent back as `X-Request-Id`). */
  requestId?: (req: Request) => string | undefined;
  /** Extra task message headers from the request context (e.g. a tenant id). */
  headers?: TaskProducerOptions['headers'];
  /** Show remote tracebacks in the status and SSE routes (default false). */
  tracebacks?: boolean;
}

/**
 * `queuePlugin`'s config: Celeriac settings (`{ brokerUrl, resultBackend }`), a
 * `celeriac` section or `CELERY_*` / `CELERIAC_*` keys (see `bindApp`), plus the
 * adapter's own options.
 */
export type QueuePluginConfig = QueuePluginOptions & BindConfig;

/** The producer of one request: `req.tasks.delay(add, 2, 2)`, `req.tasks.send('py.tasks.resize', [id])`. */
export type RequestTasks = Omit<TaskProducer, 'contextHeaders'>;

/** What the plugin keeps for the routes and the shutdown helper. */
export interface QueueState {
  readonly app: Celeriac;
  readonly streams: SseStreams;
  readonly tracebacks: boolean;
  /** This plugin's hold on the app's embedded worker, once started (null when the web process only produces). */
  readonly worker: Promise<EmbeddedWorker | null>;
  /** This plugin's use of the app's connections (the last use released closes them). */
  readonly use: AppUse;
}

const STATE = Symbol.for('celeriac.express.state');
const TASKS = Symbol('celeriac.express.tasks');

/**
 * Every plugin instance of this process, for `gracefulShutdown`; on `globalThis` so
 * that the ESM and the CommonJS build of this package (or two copies) share it.
 */
export const pluginStates: Set<QueueState> = ((globalThis as unknown as Record<symbol, Set<QueueState> | undefined>)[Symbol.for('celeriac.express.plugins')] ??= new Set<QueueState>());

/** The plugin state of the request's Express app (set by `queuePlugin`), or undefined. */
export function queueStateOf(req: Request): QueueState | undefined {
  return (req as unknown as { [STATE]?: QueueState })[STATE];
}

function pickOptions(config: QueuePluginConfig): { options: QueuePluginOptions; settings: BindConfig } {
  const { app, worker, workerOptions, requestId, headers, tracebacks, ...settings } = config;
  return { options: { app, worker, workerOptions, requestId, headers, tracebacks }, settings };
}

function defaultRequestId(req: Request, res: Response): string {
  const own = (req as unknown as { id?: unknown }).id;
  if (typeof own === 'string' && own !== '') return own;
  const header = req.headers['x-request-id'];
  const given = Array.isArray(header) ? header[0] : header;
  if (given && /^[\w.:@/+=-]{1,200}$/.test(given)) return given;
  const made = randomUUID();
  if (!res.headersSent) res.setHeader('X-Request-Id', made);
  return made;
}

/**
 * The Express middleware: `app.use(queuePlugin({ brokerUrl: process.env.REDIS_URL }))`
 * or `app.use(queuePlugin((settings) => settings.celeriac))` to read the Express app's
 * settings (`app.set('celeriac', {...})`) at the first request. Mount it before the
 * routes that use `req.tasks`, and `celeriacErrorHandler()` after them.
 */
export function queuePlugin(config: QueuePluginConfig | ((settings: Record<string, unknown>) => QueuePluginConfig | undefined) = {}): RequestHandler {
  let state: QueueState | undefined;
  let producerOptions: TaskProducerOptions = {};
  let requestIdOf: ((req: Request) => string | undefined) | undefined;
  let producer: TaskProducer | undefined;

  const init = (resolved: QueuePluginConfig): QueueState => {
    const { options, settings } = pickOptions(resolved);
    const app = options.app ?? currentApp();
    if (!isCeleriacApp(app)) {
      throw new ConfigurationError(
        'queuePlugin(): no Celeriac app in this process: import your tasks module (the one calling createApp) before app.use(queuePlugin(...)), or pass { app }.',
      );
    }
    bindApp(app, settings, '@celeriac/express queuePlugin()');
    producerOptions = { headers: options.headers };
    requestIdOf = options.requestId;
    producer = createTaskProducer(app, producerOptions);
    const worker = startEmbeddedWorker(app, { ...options.workerOptions, worker: options.worker });
    worker.catch(() => undefined); // reported on the next request
    const created: QueueState = { app, streams: new SseStreams(), tracebacks: options.tracebacks === true, worker, use: useApp(app) };
    pluginStates.add(created);
    return created;
  };
  if (typeof config !== 'function') state = init(config);

  return function celeriacQueue(req: Request, res: Response, next: NextFunction): void {
    try {
      state ??= init((config as (settings: Record<string, unknown>) => QueuePluginConfig | undefined)(req.app.settings as Record<string, unknown>) ?? {});
    } catch (err) {
      return next(err);
    }
    const current = state;
    current.worker.then(
      () => {
        (req as unknown as Record<symbol, unknown>)[STATE] = current;
        const ctx = requestContextFromHeaders(req.headers, requestIdOf?.(req) ?? defaultRequestId(req, res));
        defineTasks(req, ctx, producer!);
        runWithRequestContext(ctx, () => next());
      },
      (err: unknown) => next(err),
    );
  };
}

/** `req.tasks`: created on first use, bound to this request's context even where AsyncLocalStorage is lost. */
function defineTasks(req: Request, ctx: RequestContext, producer: TaskProducer): void {
  Object.defineProperty(req, 'tasks', {
    configurable: true,
    enumerable: false,
    get(this: Record<symbol, RequestTasks | undefined>): RequestTasks {
      return (this[TASKS] ??= {
        delay: (task, ...args) => runWithRequestContext(ctx, () => producer.delay(task, ...args)),
        applyAsync: (task, args, kwargs, options) => runWithRequestContext(ctx, () => producer.applyAsync(task, args, kwargs, options)),
        send: (name, args, kwargs, options) => runWithRequestContext(ctx, () => producer.send(name, args, kwargs, options)),
        applySignature: (signature, options) => runWithRequestContext(ctx, () => producer.applySignature(signature, options)),
      });
    },
  });
}
