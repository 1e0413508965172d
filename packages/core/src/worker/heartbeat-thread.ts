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
 */
import { parentPort, Worker as Thread } from 'node:worker_threads';
import type { Logger } from '../logger.js';
import { resolveRedisConnection, type RedisConnectionSettings } from '../redis-connection.js';

/** What the thread needs to open its own connection and beat. */
export interface HeartbeatThreadOptions {
  brokerUrl: string;
  /** `broker_transport_options`: its `redis` options (password, TLS CA...) apply to the thread's connection too. */
  transportOptions?: Record<string, unknown>;
  consumerId: string;
  intervalMs: number;
  ttlMs: number;
}

/** The running thread, from the main thread's side. */
export interface HeartbeatThread {
  /** Stop beating and close the thread's connection. */
  stop(): Promise<void>;
}

interface ThreadData extends HeartbeatThreadOptions {
  /** The broker's connection, resolved by the same factory as its ioredis clients. */
  connection: RedisConnectionSettings;
  /** This module, imported by the thread (`.ts` under tsx in development). */
  moduleUrl: string;
  /** tsx's register API, when the main thread runs TypeScript sources. */
  tsxApiUrl: string | null;
}

type ThreadMessage =
  | { type: 'ready' }
  | { type: 'error'; fatal: boolean; message: string; kind?: 'socket' | 'reply' }
  | { type: 'recovered' }
  | { type: 'stopped' };

/** The thread's entry: load this module (through tsx in development) and beat. */
const THREAD_BOOTSTRAP = `
const { workerData, parentPort } = require('node:worker_threads');
(async () => {
  if (workerData.tsxApiUrl) (await import(workerData.tsxApiUrl)).register();
  await (await import(workerData.moduleUrl)).runHeartbeatThread(workerData);
})().catch((err) => parentPort.postMessage({ type: 'error', fatal: true, message: String((err && err.stack) || err) }));
`;

/**
 * Start beating from a thread. Rejects if the thread cannot start; `onDied` runs if
 * it dies later (the caller falls back to beating itself in both cases).
 */
export function startHeartbeatThread(options: HeartbeatThreadOptions, log: Logger, onDied: () => void): Promise<HeartbeatThread> {
  const moduleUrl = import.meta.url;
  const tsxApiUrl = moduleUrl.endsWith('.ts') ? import.meta.resolve('tsx/esm/api') : null;
  const redisOptions = options.transportOptions?.redis as Parameters<typeof resolveRedisConnection>[1];
  const connection = resolveRedisConnection(options.brokerUrl, redisOptions);
  const data: ThreadData = { brokerUrl: options.brokerUrl, consumerId: options.consumerId, intervalMs: options.intervalMs, ttlMs: options.ttlMs, connection, moduleUrl, tsxApiUrl };
  // A small heap: the thread only sends one pipeline every few seconds.
  const thread = new Thread(THREAD_BOOTSTRAP, { eval: true, workerData: data, resourceLimits: { maxYoungGenerationSizeMb: 1, maxOldGenerationSizeMb: 32 } });
  thread.unref();
  let stopped: (() => void) | undefined;
  return new Promise((resolve, reject) => {
    const fail = (why: string) => {
      void thread.terminate();
      reject(new Error(why));
    };
    const startTimer = setTimeout(() => fail('heartbeat thread did not start within 10 s'), 10_000);
    let ready = false;
    let stopping = false;
    thread.on('error', (err) => {
      clearTimeout(startTimer);
      if (!ready) return fail(err.message);
      log.error({ err }, 'Heartbeat thread died; beating from the event loop from now on');
    });
    thread.on('exit', () => {
      if (ready && !stopping) onDied();
    });
    thread.on('message', (m: ThreadMessage) => {
      if (m.type === 'ready') {
        clearTimeout(startTimer);
        ready = true;
        resolve({
          stop: () =>
            new Promise<void>((done) => {
              stopping = true;
              const timer = setTimeout(() => void thread.terminate().finally(done), 2000);
              stopped = () => (clearTimeout(timer), void thread.terminate().finally(done));
              thread.postMessage('stop');
            }),
        });
      } else if (m.type === 'stopped') stopped?.();
      else if (m.type === 'recovered') log.info('Broker heartbeats from the heartbeat thread work again');
      else if (m.fatal) (clearTimeout(startTimer), fail(m.message));
      else if (m.kind === 'reply') log.error(`Broker heartbeat refused by Redis: ${m.message}; peers may take this worker for dead until it works again`);
      // No connection: the outage is reported once by the worker's own connection.
      else log.debug(`Broker heartbeat failed: ${m.message}; will retry`);
    });
  });
}

/** Runs inside the thread: keep the consumer alive until told to stop. */
export async function runHeartbeatThread(data: ThreadData): Promise<void> {
  const port = parentPort!;
  const scheme = data.brokerUrl.split(':', 1)[0]!.toLowerCase();
  if (scheme !== 'redis' && scheme !== 'rediss') throw new Error(`No heartbeat thread for ${scheme}:// brokers`);
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
  port.on('message', (m) => {
    if (m !== 'stop') return;
    void liveness.stop().finally(() => {
      port.postMessage({ type: 'stopped' } satisfies ThreadMessage);
      port.close();
    });
  });
  port.postMessage({ type: 'ready' } satisfies ThreadMessage);
}
