/**
 * `gracefulShutdown(server)`: the order a web process stops in. End the SSE
 * streams (they would hold `server.close()` open), stop accepting and let
 * in-flight requests finish, close idle keep-alive sockets (and, past the
 * timeout, every socket), stop the embedded worker (running tasks finish), then
 * close the app's broker and result backend connections.
 */
import type { Server } from 'node:http';
import type { Celeriac } from '@celeriac/core';
import { pluginStates } from './plugin.js';

/** Options of `gracefulShutdown`. */
export interface ShutdownOptions {
  /** After this many ms, open connections are cut (default 10,000). */
  timeoutMs?: number;
  /** Also close this app (default: every app a `queuePlugin` bound). */
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
  const apps = new Set<Celeriac>(options.app ? [options.app] : []);
  for (const state of pluginStates) {
    apps.add(state.app);
    const worker = await state.worker.catch(() => null);
    await worker?.stop();
  }
  for (const app of apps) await app.close();
  pluginStates.clear();
}
