/**
 * The standalone dashboard server (`celeriac dashboard`): Node's http server over
 * the dashboard handler, with optional HTTP basic auth (Flower's `--basic-auth`)
 * in front of every route. Actions are on for a loopback bind, or with auth.
 */
import { timingSafeEqual } from 'node:crypto';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Celeriac } from '../app.js';
import { ConfigurationError } from '../errors.js';
import { Dashboard, type DashboardOptions } from './dashboard.js';

/** Options of `startDashboardServer`. */
export interface DashboardServerOptions extends Omit<DashboardOptions, 'bindAddress'> {
  /** Port (0: a free one). Default 5555, Flower's. */
  port?: number;
  /** Address to bind. Default 127.0.0.1. */
  host?: string;
  /** `user:password` pairs allowed in (HTTP basic auth on every route); counts as auth for actions. */
  basicAuth?: string[];
}

/** A running dashboard server. */
export interface DashboardServer {
  readonly dashboard: Dashboard;
  readonly server: Server;
  /** `http://host:port` it answers on. */
  readonly url: string;
  /** Stop serving (ends live streams) and stop listening to events. */
  close(): Promise<void>;
}

function basicAuthCheck(pairs: string[]): (req: IncomingMessage) => boolean {
  for (const p of pairs) {
    if (!/^[^:]+:.+$/.test(p)) throw new ConfigurationError(`--basic-auth ${JSON.stringify(p)}: give user:password (several: comma-separated).`);
  }
  const allowed = pairs.map((p) => Buffer.from(p));
  return (req) => {
    const m = /^Basic\s+([A-Za-z0-9+/=]+)$/i.exec(req.headers.authorization ?? '');
    if (!m) return false;
    const given = Buffer.from(Buffer.from(m[1]!, 'base64').toString('utf8'));
    let ok = false;
    for (const a of allowed) if (a.length === given.length && timingSafeEqual(a, given)) ok = true;
    return ok;
  };
}

/** Start `celeriac dashboard`'s server for `app`; resolves once it listens. */
export async function startDashboardServer(app: Celeriac, options: DashboardServerOptions = {}): Promise<DashboardServer> {
  const host = options.host ?? '127.0.0.1';
  const basic = options.basicAuth?.length ? basicAuthCheck(options.basicAuth) : undefined;
  const hook = options.authorize;
  const authorize: DashboardOptions['authorize'] = basic ? async (req, access) => basic(req) && (hook ? await hook(req, access) : true) : hook;
  const dashboard = new Dashboard(app, { ...options, authorize, bindAddress: host });
  const server = createServer((req, res) => {
    if (basic && !basic(req)) {
      res.statusCode = 401;
      res.setHeader('WWW-Authenticate', 'Basic realm="celeriac dashboard", charset="UTF-8"');
      res.setHeader('Content-Type', 'text/plain; charset=utf-8');
      res.end('Authentication required.');
      return;
    }
    void dashboard.handle(req, res).then((handled) => {
      if (handled) return;
      res.statusCode = 404;
      res.setHeader('Content-Type', 'text/plain; charset=utf-8');
      res.end('Not found.');
    });
  });
  await dashboard.start();
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 5555, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const address = server.address() as AddressInfo;
  const shown = address.family === 'IPv6' ? `[${address.address}]` : address.address;
  return {
    dashboard,
    server,
    url: `http://${shown}:${address.port}`,
    async close() {
      await dashboard.close();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
