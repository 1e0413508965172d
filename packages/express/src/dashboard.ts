/**
 * `dashboardRouter()`: the Celeriac dashboard (live pages, Flower's JSON API,
 * guarded actions) as an Express router, mounted behind the host app's own auth:
 *
 * ```ts
 * web.use('/dashboard', requireAdmin, dashboardRouter({ authorize: (req) => req.user?.admin === true }));
 * ```
 *
 * A thin wrapper: every request goes to the framework-agnostic `Dashboard.handle`.
 */
import type { IncomingMessage } from 'node:http';
import express, { type Request, type Router } from 'express';
import { createDashboard, currentApp, type Celeriac, type Dashboard, type DashboardAccess, type DashboardOptions } from '@celeriac/core';

/** Options of `dashboardRouter`. */
export interface DashboardRouterOptions extends Omit<DashboardOptions, 'authorize'> {
  /** The app whose events and workers are shown. Default: the process's app (`currentApp()`). */
  app?: Celeriac;
  /** The auth hook, with Express's request (see `DashboardAuthorize`); configuring it turns actions on. */
  authorize?: (req: Request, access: DashboardAccess) => boolean | Promise<boolean>;
}

/** A router serving the dashboard where it is mounted; `router.dashboard` is the handler (close it at shutdown). */
export function dashboardRouter(options: DashboardRouterOptions = {}): Router & { dashboard: Dashboard } {
  const app = options.app ?? currentApp();
  if (!app) throw new Error('dashboardRouter(): no Celeriac app: pass { app } or create the app (createApp) before mounting the dashboard.');
  const { authorize, ...rest } = options;
  const dashboard = createDashboard(app, { ...rest, authorize: authorize ? (req: IncomingMessage, access) => authorize(req as Request, access) : undefined });
  const router = express.Router() as Router & { dashboard: Dashboard };
  router.use((req, res, next) => {
    dashboard
      .handle(req, res, { base: req.baseUrl, path: req.path, body: req.body as unknown })
      .then((handled) => {
        if (!handled) next();
      }, next);
  });
  router.dashboard = dashboard;
  return router;
}
