/**
 * Consumer heartbeats from a worker thread.
 *
 * Other workers restore a consumer's unacked messages when its heartbeat lapses.
 * Beating from the main thread would let one synchronous, CPU-bound task (an
 * image resize, a big JSON parse) stall the beats past their TTL, so the message
 * would be restored and run twice. A thread with its own connection keeps beating
 * as long as the process lives; a killed process stops beating at once. The
 * thread only proves liveness; promotion and restores (`Broker.maintain`) stay on
 * the main connection.
 *
 * The thread also watches the loop (`loop-watch.ts`): when it makes no progress for
 * `workerHangTimeout`, beating alone would let a hung worker hold its messages
 * forever, so the thread gives back what the loop has not started and settles the
 * started ones by the acks-late rules (see `ConsumerHeartbeats`).
 *
 * Start-up is timed inside the thread, not on the loop: a task blocking the loop
 * right at start-up must not make the worker kill a healthy thread.
 */
import { existsSync, writeSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { moduleRoot } from '../module-root.cjs';
import { isatty } from 'node:tty';
import { performance } from 'node:perf_hooks';
import { parentPort, receiveMessageOnPort, Worker as Thread } from 'node:worker_threads';
import { celeryLine } from '../log-format.js';
import type { Logger } from '../logger.js';
import type { ThreadResultTarget } from '../backends/backend.js';
import { resolveRedisConnection, type RedisConnectionSettings } from '../redis-connection.js';
import { LostAction, LoopState, LoopWatcher, type LostTask, type LoopWatchMemory, type OverflowEnd, type OverflowStart, type StartedMessage } from './loop-watch.js';

/** The thread gives up (and says so) if it is not beating this long after it began. */
export const THREAD_START_TIMEOUT_MS = 10_000;

/** What the thread needs to open its own connection, beat, and watch the loop. */
export interface HeartbeatThreadOptions {
  brokerUrl: string;
  /** `broker_transport_options`: its `redis` options (password, TLS CA...) and Sentinel options apply to the thread's connection too. */
  transportOptions?: Record<string, unknown>;
  consumerId: string;
  intervalMs: number;
  ttlMs: number;
  /** The loop's progress and started messages; null = no hang watch. */
  watch: LoopWatchMemory | null;
  /** A stall this long (ms) is a hang. */
  hangTimeoutMs: number;
  /** Where to store FAILURE (WorkerLostError) for the started tasks a hang settles; null: nowhere. */
  lostResults: ThreadResultTarget | null;
}

/** The running thread, from the main thread's side. */
export interface HeartbeatThread {
  /** Pass a started message that did not fit the shared slots. */
  send(record: OverflowStart | OverflowEnd): void;
  /** Stop beating and close the thread's connection. */
  stop(): Promise<void>;
}

interface ThreadData extends Omit<HeartbeatThreadOptions, 'transportOptions'> {
  /** The broker's connection, resolved by the same factory as its ioredis clients. */
  connection: RedisConnectionSettings;
  /** This module, imported by the thread (`.ts` under tsx in development). */
  moduleUrl: string;
  /** tsx's register API, when the main thread runs TypeScript sources. */
  tsxApiUrl: string | null;
  startTimeoutMs: number;
}

type ThreadMessage =
  | { type: 'ready' }
  | { type: 'error'; fatal: boolean; message: string; kind?: 'socket' | 'reply' }
  | { type: 'recovered' }
  | { type: 'stopped' };
type MainMessage = 'stop' | OverflowStart | OverflowEnd;

/**
 * The thread's entry: time the start-up here (the loop may be blocked), load this
 * module (through tsx in development) and beat.
 */
const THREAD_BOOTSTRAP = `
const { workerData, parentPort } = require('node:worker_threads');
const fail = (message) => {
  parentPort.postMessage({ type: 'error', fatal: true, message });
  process.exit(1);
};
globalThis.__celeriacStartTimer = setTimeout(() => fail('heartbeat thread did not start within ' + workerData.startTimeoutMs / 1000 + ' s'), workerData.startTimeoutMs);
(async () => {
  if (workerData.tsxApiUrl) {
    const api = await import(workerData.tsxApiUrl);
    (api.register ?? api.default.register)();
  }
  await (await import(workerData.moduleUrl)).runHeartbeatThread(workerData);
})().catch((err) => fail(String((err && err.stack) || err)));
`;

/**
 * The URL of this module as built (ESM or CommonJS), for the thread to load, and
 * tsx's loader when running from the TypeScript sources.
 */
function threadModule(): { moduleUrl: string; tsxApiUrl: string | null } {
  const compiled = join(moduleRoot, 'worker', 'heartbeat-thread.js');
  if (existsSync(compiled)) return { moduleUrl: pathToFileURL(compiled).href, tsxApiUrl: null };
  const source = join(moduleRoot, 'worker', 'heartbeat-thread.ts');
  // require.resolve picks tsx's CommonJS entry (index.cjs), which cannot register the ESM
  // loader from a thread (ERR_MODULE_NOT_FOUND for its own esm/index.mjs): take the ESM one beside it.
  const cjsApi = createRequire(source).resolve('tsx/esm/api');
  const esmApi = cjsApi.replace(/\.cjs$/, '.mjs');
  return { moduleUrl: pathToFileURL(source).href, tsxApiUrl: pathToFileURL(existsSync(esmApi) ? esmApi : cjsApi).href };
}

/**
 * Start beating from a thread. Resolves once the thread reports it is beating, rejects
 * with its reason if it cannot start (it times its own start-up); `onDied` runs with a
 * reason if it dies later.
 */
export function startHeartbeatThread(options: HeartbeatThreadOptions, log: Logger, onDied: (why: string) => void): Promise<HeartbeatThread> {
  const { moduleUrl, tsxApiUrl } = threadModule();
  const redisOptions = options.transportOptions?.redis as Parameters<typeof resolveRedisConnection>[1];
  const connection = resolveRedisConnection(options.brokerUrl, redisOptions, options.transportOptions);
  const { transportOptions: _, ...rest } = options;
  const data: ThreadData = { ...rest, connection, moduleUrl, tsxApiUrl, startTimeoutMs: THREAD_START_TIMEOUT_MS };
  // A small heap: the thread only sends one pipeline every few seconds.
  const thread = new Thread(THREAD_BOOTSTRAP, { eval: true, workerData: data, resourceLimits: { maxYoungGenerationSizeMb: 1, maxOldGenerationSizeMb: 32 } });
  thread.unref();
  let stopped: (() => void) | undefined;
  return new Promise((resolve, reject) => {
    let ready = false;
    let stopping = false;
    let lastError = 'it exited';
    const fail = (why: string) => {
      lastError = why;
      if (!ready) reject(new Error(why));
      void thread.terminate();
    };
    thread.on('error', (err) => fail(err.message));
    thread.on('exit', () => {
      if (!ready) reject(new Error(`heartbeat thread exited before it started: ${lastError}`));
      else if (!stopping) onDied(lastError);
    });
    thread.on('message', (m: ThreadMessage) => {
      if (m.type === 'ready') {
        ready = true;
        resolve({
          send: (record) => thread.postMessage(record satisfies MainMessage),
          stop: () =>
            new Promise<void>((done) => {
              stopping = true;
              const timer = setTimeout(() => void thread.terminate().finally(done), 2000);
              stopped = () => (clearTimeout(timer), void thread.terminate().finally(done));
              thread.postMessage('stop' satisfies MainMessage);
            }),
        });
      } else if (m.type === 'stopped') stopped?.();
      else if (m.type === 'recovered') log.info('Broker heartbeats from the heartbeat thread work again');
      else if (m.fatal) fail(m.message);
      else if (m.kind === 'reply') log.error(`Broker heartbeat refused by Redis: ${m.message}; peers may take this worker for dead until it works again`);
      // No connection: the outage is reported once by the worker's own connection.
      else log.debug(`Broker heartbeat failed: ${m.message}; will retry`);
    });
  });
}

/**
 * Log from the thread straight to fd 2 (the thread's own stderr is relayed by the
 * possibly hung event loop): a pino JSON line, or Celery's console form when fd 2 is
 * a terminal (the worker's default `auto` log format).
 */
function logFromThread(level: 'warn' | 'error', msg: string, extra: Record<string, unknown> = {}): void {
  const record = { level: level === 'error' ? 50 : 40, time: Date.now(), pid: process.pid, name: 'celeriac', ...extra, msg };
  try {
    writeSync(2, isatty(2) ? celeryLine(record, { colors: false }) : `${JSON.stringify(record)}\n`);
  } catch {
    // stderr closed: nothing left to tell
  }
}

/** Store FAILURE (WorkerLostError) for the tasks a released hang settled, and say so on stderr. */
async function storeLost(target: ThreadResultTarget, tasks: readonly LostTask[], hangSeconds: number): Promise<void> {
  const { storeLostResults } = await import('./lost-results.js');
  const why =
    `Worker's event loop made no progress for ${hangSeconds} s (workerHangTimeout) while this task ran; its heartbeat thread ` +
    'settled the message as for a lost worker. Find the task that blocks the loop, or raise workerHangTimeout.';
  const ids = tasks.map((t) => t.id);
  try {
    const kept = await storeLostResults(target, tasks, why);
    logFromThread('error', `Stored FAILURE (WorkerLostError) for ${tasks.length - kept} task(s) lost in the hang${kept ? ` (${kept} already had SUCCESS, kept)` : ''}: ${ids.join(', ')}`, { ids });
  } catch (err) {
    logFromThread('error', `Cannot store FAILURE (WorkerLostError) for the task(s) lost in the hang (${(err as Error).message}): ${ids.join(', ')}`, { ids });
  }
}

/** Runs inside the thread: keep the consumer alive (and watch the loop) until told to stop. */
export async function runHeartbeatThread(data: ThreadData): Promise<void> {
  const port = parentPort!;
  const scheme = data.brokerUrl.split(':', 1)[0]!.toLowerCase();
  if (scheme !== 'redis' && scheme !== 'rediss' && scheme !== 'sentinel') throw new Error(`No heartbeat thread for ${scheme}:// brokers`);
  const { startLiveness } = await import('../brokers/redis-liveness.js');
  const liveness = startLiveness({
    url: data.brokerUrl,
    connection: data.connection,
    consumerId: data.consumerId,
    ttlMs: data.ttlMs,
    intervalMs: data.intervalMs,
    onError: (message, kind) => port.postMessage({ type: 'error', fatal: false, message, kind } satisfies ThreadMessage),
    onRecovered: () => port.postMessage({ type: 'recovered' } satisfies ThreadMessage),
  });
  const watcher = data.watch && data.hangTimeoutMs > 0 ? new LoopWatcher(data.watch, () => performance.now()) : null;
  let watchTimer: NodeJS.Timeout | undefined;
  const onMessage = (m: MainMessage) => {
    if (m === 'stop') {
      clearInterval(watchTimer);
      void liveness.stop().finally(() => {
        port.postMessage({ type: 'stopped' } satisfies ThreadMessage);
        port.close();
      });
    } else watcher?.note(m);
  };
  port.on('message', onMessage);
  if (watcher) {
    let started: StartedMessage[] | null = null;
    let releasing = false;
    const hangSeconds = data.hangTimeoutMs / 1000;
    const check = () => {
      if (releasing) return;
      if (watcher.state !== LoopState.Hung) {
        if (watcher.state !== LoopState.Live || watcher.stalledMs() < data.hangTimeoutMs) return;
        // Apply start records still queued before deciding what counts as started.
        for (let m = receiveMessageOnPort(port); m; m = receiveMessageOnPort(port)) onMessage(m.message as MainMessage);
        started = watcher.declareHung();
        if (!started) return;
        logFromThread(
          'error',
          `The event loop has made no progress for ${hangSeconds} s (workerHangTimeout): a task is blocking it. ` +
            `Giving back the messages not started and settling the ${started.length} started one(s) by the acks-late rules ` +
            '(dropped, or requeued when acksLate and rejectOnWorkerLost). Restart this worker, and find the task that blocks ' +
            '(a synchronous loop that never returns?).',
        );
      }
      const settle = started ?? watcher.started();
      releasing = true;
      liveness
        .release(settle.map(({ tag, action }) => ({ tag, requeue: action === LostAction.Requeue })))
        .then((counts) => {
          watcher.markReleased();
          logFromThread('error', `Hung worker released: ${counts.restored} message(s) given back, ${counts.dropped} started dropped, ${counts.requeued} started requeued`, { ...counts });
          const lost = settle.flatMap((s) => (s.task ? [s.task] : []));
          if (data.lostResults && lost.length > 0) void storeLost(data.lostResults, lost, hangSeconds);
        })
        .catch((err: Error) => logFromThread('warn', `Cannot release the hung worker's messages yet (${err.message}); retrying`))
        .finally(() => (releasing = false));
    };
    watchTimer = setInterval(check, Math.max(10, Math.min(1000, data.hangTimeoutMs / 4)));
    watchTimer.unref();
  }
  clearTimeout((globalThis as { __celeriacStartTimer?: NodeJS.Timeout }).__celeriacStartTimer);
  port.postMessage({ type: 'ready' } satisfies ThreadMessage);
}
