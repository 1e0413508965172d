/**
 * `gracefulShutdown(server)`: the order a web process stops in. End the SSE
 * streams (they would hold `server.close()` open), stop accepting and let
 * in-flight requests finish, close idle keep-alive sockets (and, past the
 * timeout, every socket), release the embedded worker (the last user of the app
 * in this process stops it; running tasks finish), then release the app's
 * connections (the last user closes them: a Nest module or a Fastify instance
 * on the same app keeps them open until it closes too).
 */
import type { Server } from 'node:http';
import type { Celeriac } from '@celeriac/core';
import { pluginStates } from './plugin.js';

/** Options of `gracefulShutdown`. */
export interface ShutdownOptions {
  /** After this many ms, open connections are cut (default 10,000). */
  timeoutMs?: number;
  /** Also close this app, whoever else uses it (default: only release the apps `queuePlugin` bound). */
  app?: Celeriac;
}

/**
 * Stop `server` and Celeriac in order; resolves when done.
 *
 * ```ts
 * process.once('SIGTERM', () => void gracefulShutdown(server).then(() => process.exit(0)));
 * ```
 */
export async function gracefulShutdown(server: Server, options: ShutdownOptions = {}): Promise<void> {
  const timeoutMs = options.timeoutMs ?? 10_000;
  for (const state of pluginStates) state.streams.closeAll();
  const closed = new Promise<void>((resolve) => server.close(() => resolve()));
  server.closeIdleConnections?.();
  const cut = setTimeout(() => server.closeAllConnections?.(), timeoutMs);
  cut.unref();
  await closed;
  clearTimeout(cut);
  const states = [...pluginStates];
  pluginStates.clear();
  for (const state of states) {
    const worker = await state.worker.catch(() => null);
    await worker?.stop();
  }
  for (const state of states) await state.use.release();
  await options.app?.close();
}
