/**
 * @celeriac/fastify — Celeriac for Fastify 5.
 *
 * ```ts
 * import Fastify from 'fastify';
 * import celeriacPlugin, { celeriacStatusRoutes } from '@celeriac/fastify';
 * import { report } from './tasks.js'; // declares the app: createApp('proj')
 *
 * const fastify = Fastify();
 * await fastify.register(celeriacPlugin, { brokerUrl: process.env.CELERY_BROKER_URL });
 * await fastify.register(celeriacStatusRoutes, { prefix: '/tasks' });
 * fastify.post('/reports', async (request, reply) => {
 *   const result = await request.tasks.delay(report, 10);
 *   return reply.code(202).send({ id: result.id });
 * });
 * ```
 */
import { celeriacPlugin } from './plugin.js';

export { celeriacPlugin };
export { celeriacStatusRoutes } from './status-routes.js';
export type { StatusRoutesOptions } from './status-routes.js';
export type { CeleriacPluginOptions } from './options.js';
export type { RequestTasks } from './request-producer.js';
export { ServiceUnavailable } from './outage-error.js';
export type {} from './augment.js';

export default celeriacPlugin;
export { celeriacDashboard } from './dashboard.js';
export type { DashboardPluginOptions } from './dashboard.js';
