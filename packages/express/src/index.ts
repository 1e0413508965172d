/**
 * @celeriac/express — Celeriac in an Express 5 app, the way Flask apps use Celery.
 *
 * ```ts
 * import express from 'express';
 * import { queuePlugin, queueRouter, celeriacErrorHandler } from '@celeriac/express';
 * import { add } from './tasks.js'; // createApp(...) and app.task(...) live there
 *
 * const web = express();
 * web.use(queuePlugin({ brokerUrl: process.env.CELERY_BROKER_URL ?? 'memory://' }));
 * web.post('/add', async (req, res) => res.json({ id: (await req.tasks.delay(add, 2, 2)).id }));
 * web.use(queueRouter()); // GET /tasks/:id, GET /tasks/:id/events (SSE)
 * web.use(celeriacErrorHandler()); // broker down → 503 JSON
 * ```
 */
import type { RequestTasks } from './plugin.js';

export { queuePlugin, queueStateOf } from './plugin.js';
export type { QueuePluginConfig, QueuePluginOptions, QueueState, RequestTasks } from './plugin.js';
export { celeriacErrorHandler } from './error-handler.js';
export type { ErrorHandlerOptions } from './error-handler.js';
export { queueRouter } from './router.js';
export type { QueueRouterOptions } from './router.js';
export { gracefulShutdown } from './shutdown.js';
export type { ShutdownOptions } from './shutdown.js';

declare global {
  // eslint-disable-next-line @typescript-eslint/no-namespace
  namespace Express {
    interface Request {
      /**
       * The request's task producer (set by `queuePlugin`): sends carry the request id
       * and W3C trace context. `req.tasks.delay(add, 2, 2)`,
       * `req.tasks.applyAsync(add, [2, 2], {}, { countdown: 5 })`,
       * `req.tasks.send('py.tasks.resize', [id])`.
       */
      readonly tasks: RequestTasks;
    }
  }
}
export { dashboardRouter } from './dashboard.js';
export type { DashboardRouterOptions } from './dashboard.js';
