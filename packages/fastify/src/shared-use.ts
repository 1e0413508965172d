import type { Celeriac } from '@celeriac/core';

/** Per app: how many Fastify instances use it, and how many of them hold the embedded worker. */
interface Users {
  instances: number;
  workerHolders: number;
}

// On the app itself under a registered symbol, so the ESM and CommonJS builds of
// this package count together (as the core keeps its own process-wide state).
const USERS = Symbol.for('celeriac.fastify.users');

function usersOf(app: Celeriac): Users {
  const holder = app as unknown as { [USERS]?: Users };
  if (!holder[USERS]) Object.defineProperty(holder, USERS, { value: { instances: 0, workerHolders: 0 }, configurable: true });
  return holder[USERS]!;
}

/**
 * Several Fastify instances may share the process's one app (tests building an
 * instance each, an API and an admin server...). The embedded worker is one per app
 * and the connections are the app's, so only the last instance to close stops the
 * worker, and only the last one closes the connections.
 */
export const sharedUse = {
  /** An instance registered the plugin on `app`. */
  open(app: Celeriac): void {
    usersOf(app).instances++;
  },
  /** An instance got the embedded worker. */
  holdWorker(app: Celeriac): void {
    usersOf(app).workerHolders++;
  },
  /** An instance that held the worker closes: true when it was the last holder. */
  releaseWorker(app: Celeriac): boolean {
    const users = usersOf(app);
    users.workerHolders = Math.max(0, users.workerHolders - 1);
    return users.workerHolders === 0;
  },
  /** An instance closes: true when it was the last one using `app`. */
  close(app: Celeriac): boolean {
    const users = usersOf(app);
    users.instances = Math.max(0, users.instances - 1);
    return users.instances === 0;
  },
};
