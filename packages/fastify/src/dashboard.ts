/**
 * `celeriacDashboard`: the Celeriac dashboard (live pages, Flower's JSON API,
 * guarded actions) as an encapsulated Fastify plugin, behind the host app's auth:
 *
 * ```ts
 * await fastify.register(celeriacDashboard, { prefix: '/dashboard', authorize: (req) => req.user?.admin === true });
 * ```
 *
 * A thin wrapper: every request under the prefix goes to `Dashboard.handle`.
 */
import type { IncomingMessage } from 'node:http';
import { createDashboard, currentApp, type Celeriac, type DashboardAccess, type DashboardOptions } from '@celeriac/core';
import type { FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify';
import './augment.js';

/** Options of `celeriacDashboard`. */
export interface DashboardPluginOptions extends Omit<DashboardOptions, 'authorize'> {
  /** The app shown. Default: `fastify.celeriac` (celeriacPlugin) or the process's app. */
  app?: Celeriac;
  /** The auth hook with Fastify's request; configuring it turns actions on. */
  authorize?: (request: FastifyRequest, access: DashboardAccess) => boolean | Promise<boolean>;
}

/** The dashboard under the plugin's prefix; its event listener and live streams end when the server closes. */
export const celeriacDashboard: FastifyPluginAsync<DashboardPluginOptions> = async (fastify, options) => {
  const { app: given, authorize, ...rest } = options;
  const app = given ?? (fastify.hasDecorator('celeriac') ? fastify.celeriac : currentApp());
  if (!app) throw new Error('celeriacDashboard: no Celeriac app: register celeriacPlugin first, or pass { app }.');
  const byRaw = new WeakMap<IncomingMessage, FastifyRequest>();
  const dashboard = createDashboard(app, {
    ...rest,
    authorize: authorize ? (req, access) => authorize(byRaw.get(req)!, access) : undefined,
  });
  // The dashboard reads bodies itself (JSON or form): hand it the text, whatever the type.
  fastify.removeAllContentTypeParsers();
  fastify.addContentTypeParser('*', { parseAs: 'string' }, (_req, body, done) => done(null, body));

  const handler = async (request: FastifyRequest<{ Params: { '*'?: string } }>, reply: FastifyReply) => {
    byRaw.set(request.raw, request);
    reply.hijack();
    const handled = await dashboard.handle(request.raw, reply.raw, { base: fastify.prefix, path: `/${request.params['*'] ?? ''}`, body: request.body ?? undefined });
    if (!handled && !reply.raw.headersSent) {
      reply.raw.statusCode = 404;
      reply.raw.setHeader('Content-Type', 'text/plain; charset=utf-8');
      reply.raw.end('Not found.');
    }
  };
  fastify.route({ method: ['GET', 'POST'], url: '/', handler });
  fastify.route({ method: ['GET', 'POST'], url: '/*', handler });
  fastify.addHook('preClose', async () => {
    await dashboard.close();
  });
};
