/**
 * `celeriac dashboard`: serve the live dashboard and Flower's JSON API for every
 * worker on the broker (Python and Celeriac), until interrupted.
 */
import { startDashboardServer } from '../dashboard/server.js';
import { appFor, type ConnectionFlags } from './load-app.js';
import { UsageError } from './options.js';

/** Flags of `celeriac dashboard`. */
export interface DashboardFlags extends ConnectionFlags {
  port?: string;
  address?: string;
  basicAuth?: string;
  readOnly?: boolean;
  /** Stop after this many seconds (tests, scripts). */
  duration?: string;
}

/** Run the dashboard server until SIGINT/SIGTERM (or `--duration`). */
export async function dashboardCommand(flags: DashboardFlags): Promise<void> {
  const port = Number(flags.port ?? 5555);
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new UsageError(`--port ${flags.port}: give a port number 0-65535 (0: any free port).`);
  const app = await appFor(flags);
  if (app.settings.brokerUrl.startsWith('memory://')) {
    throw new UsageError('celeriac dashboard has no broker (memory:// lives inside one process, so no worker would be seen): pass -b redis://127.0.0.1:6379/0, set CELERIAC_BROKER_URL, or -A a module whose app sets brokerUrl.');
  }
  const auth = flags.basicAuth ?? process.env.CELERIAC_DASHBOARD_BASIC_AUTH;
  const server = await startDashboardServer(app, {
    port,
    host: flags.address ?? '127.0.0.1',
    basicAuth: auth ? auth.split(',').map((s) => s.trim()).filter(Boolean) : undefined,
    actions: flags.readOnly ? false : undefined,
  });
  const d = server.dashboard;
  process.stderr.write(`-> celeriac dashboard: ${server.url}/ (events from ${(await app.getBroker()).displayUrl}); actions ${d.actionsEnabled ? 'on' : `off: ${d.actionsOff}`}\n`);
  await new Promise<void>((resolve) => {
    process.once('SIGINT', resolve);
    process.once('SIGTERM', resolve);
    if (flags.duration) setTimeout(resolve, Number(flags.duration) * 1000);
  });
  await server.close();
  await app.close();
}
