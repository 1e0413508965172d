/**
 * The in-process worker a web adapter runs next to the web server: by default on
 * `memory://` (so an example works with zero servers), on any other broker only
 * when asked for with `worker: 'embedded'` (the web process otherwise only
 * produces; run `celeriac worker` separately).
 */
import type { Celeriac } from '../app.js';
import { Worker, type WorkerOptions } from '../worker/worker.js';

/**
 * Whether the web process runs a worker: `undefined` (default) = only on
 * `memory://`; `false` = never; `true` or `'embedded'` = always.
 */
export type EmbeddedWorkerMode = boolean | 'embedded' | undefined;

/** Options of `startEmbeddedWorker`: the mode and the worker's own options. */
export interface EmbeddedWorkerOptions extends WorkerOptions {
  /** See `EmbeddedWorkerMode`. */
  worker?: EmbeddedWorkerMode;
}

/** A running embedded worker. */
export interface EmbeddedWorker {
  readonly worker: Worker;
  /** Warm-stop the worker (running tasks finish); idempotent. */
  stop(): Promise<void>;
}

const RUNNING = Symbol.for('celeriac.embedded-worker');

/** Whether `mode` asks for an in-process worker on the app's broker. */
export function wantsEmbeddedWorker(app: Celeriac, mode: EmbeddedWorkerMode): boolean {
  if (mode === false) return false;
  if (mode === true || mode === 'embedded') return true;
  return app.settings.brokerUrl.startsWith('memory://');
}

/**
 * Start the app's in-process worker when `options.worker` asks for one (see
 * `EmbeddedWorkerMode`); resolves with it, or null when none is wanted. One per
 * app: a second call returns the running one. Logs at `warn` unless `logLevel`
 * says otherwise.
 */
export async function startEmbeddedWorker(app: Celeriac, options: EmbeddedWorkerOptions = {}): Promise<EmbeddedWorker | null> {
  const { worker: mode, ...workerOptions } = options;
  if (!wantsEmbeddedWorker(app, mode)) return null;
  const holder = app as unknown as { [RUNNING]?: Promise<EmbeddedWorker> };
  const running = holder[RUNNING];
  if (running) return running;
  const starting = (async () => {
    const worker = new Worker(app, { logLevel: 'warn', ...workerOptions });
    await worker.start();
    let stopping: Promise<void> | undefined;
    return {
      worker,
      stop: () =>
        (stopping ??= worker.stop().finally(() => {
          if (holder[RUNNING] === starting) delete holder[RUNNING];
        })),
    };
  })();
  Object.defineProperty(holder, RUNNING, { value: starting, configurable: true, writable: true });
  starting.catch(() => {
    if (holder[RUNNING] === starting) delete holder[RUNNING];
  });
  return starting;
}
