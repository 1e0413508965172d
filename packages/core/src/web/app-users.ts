/**
 * Who uses an app's connections in this process. Several adapters or modules may
 * bind the same app (an Express server and a Nest module, two Fastify instances):
 * each takes a use when it binds and releases it when it closes; only the last
 * release closes the app's broker and result backend connections, so one closing
 * does not cut the connections from under the others.
 */
import type { Celeriac } from '../app.js';

/** One user's claim on an app's connections. */
export interface AppUse {
  /** Release it (idempotent); the last release closes the app. Resolves with true when it closed the app. */
  release(): Promise<boolean>;
}

/** On the app under a registered symbol: every copy of the package counts together. */
const USERS = Symbol.for('celeriac.web.app-users');

/** Take a use of `app`'s connections; release it when done with them. */
export function useApp(app: Celeriac): AppUse {
  const holder = app as unknown as { [USERS]?: { count: number } };
  if (!holder[USERS]) Object.defineProperty(holder, USERS, { value: { count: 0 }, configurable: true });
  const users = holder[USERS]!;
  users.count++;
  let released: Promise<boolean> | undefined;
  return {
    release: () =>
      (released ??= (async () => {
        users.count--;
        if (users.count > 0) return false;
        await app.close();
        return true;
      })()),
  };
}

/** How many uses of `app` are not released. */
export function appUsers(app: Celeriac): number {
  return (app as unknown as { [USERS]?: { count: number } })[USERS]?.count ?? 0;
}
