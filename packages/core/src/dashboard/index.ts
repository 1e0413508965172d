/** The dashboard: a live web view of the cluster from Celery's events, Flower's JSON API, guarded actions. */
export { createDashboard, Dashboard } from './dashboard.js';
export type { DashboardAccess, DashboardAuthorize, DashboardOptions, HandleOptions } from './dashboard.js';
export { startDashboardServer } from './server.js';
export type { DashboardServer, DashboardServerOptions } from './server.js';
export type { DashboardAction, ActionResult } from './actions.js';
export type { DashboardModelOptions } from './dashboard-model.js';
export { DashboardModel } from './dashboard-model.js';
export type { FlowerTask } from './flower-shapes.js';
