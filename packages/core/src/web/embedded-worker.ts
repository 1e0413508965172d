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

/**
 * One user's hold on the app's embedded worker. Every adapter or module that
 * binds the same app in a process (Express and Nest side by side, several Fastify
 * instances, a test building an app per case) shares one worker; each gets its
 * own hold, and the worker stops when the last hold is released.
 */
export interface EmbeddedWorker {
  readonly worker: Worker;
  /** How many holds on this worker are not released yet (this one included until `stop()`). */
  readonly holders: number;
  /**
   * Release this hold (idempotent). The last release warm-stops the worker
   * (running tasks finish); resolves with true then, false while others still hold it.
   */
  stop(): Promise<boolean>;
}

/** What every copy of the package keeps on the app: the one worker and its count of holds. */
interface SharedWorker {
  readonly starting: Promise<Worker>;
  holders: number;
}

const RUNNING = Symbol.for('celeriac.embedded-worker.shared');

/** Whether `mode` asks for an in-process worker on the app's broker. */
export function wantsEmbeddedWorker(app: Celeriac, mode: EmbeddedWorkerMode): boolean {
  if (mode === false) return false;
  if (mode === true || mode === 'embedded') return true;
  return app.settings.brokerUrl.startsWith('memory://');
}

/**
 * Start the app's in-process worker when `options.worker` asks for one (see
 * `EmbeddedWorkerMode`) and hold it; resolves with the hold, or null when no
 * worker is wanted. One worker per app and process: a later call while it runs
 * returns a new hold on the same worker (its worker options are those of the
 * first call). Logs at `warn` unless `logLevel` says otherwise.
 */
export async function startEmbeddedWorker(app: Celeriac, options: EmbeddedWorkerOptions = {}): Promise<EmbeddedWorker | null> {
  const { worker: mode, ...workerOptions } = options;
  if (!wantsEmbeddedWorker(app, mode)) return null;
  const holder = app as unknown as { [RUNNING]?: SharedWorker };
  let shared = holder[RUNNING];
  if (!shared) {
    const worker = new Worker(app, { logLevel: 'warn', ...workerOptions });
    const created: SharedWorker = { starting: worker.start().then(() => worker), holders: 0 };
    Object.defineProperty(holder, RUNNING, { value: created, configurable: true, writable: true });
    created.starting.catch(() => {
      if (holder[RUNNING] === created) delete holder[RUNNING];
    });
    shared = created;
  }
  const held = shared;
  held.holders++;
  let worker: Worker;
  try {
    worker = await held.starting;
  } catch (err) {
    held.holders--;
    throw err;
  }
  let released: Promise<boolean> | undefined;
  return {
    worker,
    get holders() {
      return held.holders;
    },
    stop: () =>
      (released ??= (async () => {
        held.holders--;
        if (held.holders > 0) return false;
        if (holder[RUNNING] === held) delete holder[RUNNING];
        await worker.stop();
        return true;
      })()),
  };
}
