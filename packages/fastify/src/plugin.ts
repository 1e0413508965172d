import { type Celeriac } from '@celeriac/core';
import type { FastifyInstance, FastifyPluginAsync, FastifyRequest } from 'fastify';
import fp from 'fastify-plugin';
import { bindApp, runWithRequestContext as runWithContext, startEmbeddedWorker, type EmbeddedWorker, type RequestContext } from './core-link.js';
import { fastifyConfig, settingsFromOptions, wantsEmbeddedWorker, type CeleriacPluginOptions } from './options.js';
import { requestProducer, type RequestTasks } from './request-producer.js';
import { requestContextOf } from './request-context.js';
import './augment.js';

/**
 * Binds the app, decorates `fastify.celeriac` and `request.tasks`, fills the
 * request context, and owns the embedded worker's and the connections' lifetime.
 */
const celeriacPluginImpl: FastifyPluginAsync<CeleriacPluginOptions> = async (fastify: FastifyInstance, options: CeleriacPluginOptions) => {
  const app: Celeriac = bindApp(options.app, { ...fastifyConfig(fastify), ...settingsFromOptions(options) });
  const runWorker = wantsEmbeddedWorker(options.worker, app.settings.brokerUrl);
  const userHeaders = options.headers;
  if (userHeaders !== undefined && typeof userHeaders !== 'function') {
    throw new TypeError(`celeriacPlugin: headers must be a function (request) => ({ ...task headers }), got ${typeof userHeaders}.`);
  }

  const contexts = new WeakMap<FastifyRequest, RequestContext>();
  const producers = new WeakMap<FastifyRequest, RequestTasks>();
  const contextOf = (request: FastifyRequest): RequestContext => {
    let context = contexts.get(request);
    if (!context) contexts.set(request, (context = requestContextOf(request, userHeaders?.(request))));
    return context;
  };

  fastify.decorate('celeriac', app);
  fastify.decorateRequest('tasks', {
    getter(this: FastifyRequest): RequestTasks {
      let producer = producers.get(this);
      if (!producer) producers.set(this, (producer = requestProducer(app, contextOf(this))));
      return producer;
    },
  });

  // The request context reaches code that sends tasks without `request.tasks`
  // (a service calling `add.delay()`) through AsyncLocalStorage. It is entered in
  // onRequest and again after the body was parsed: body parsing runs its callbacks
  // in the socket's async context, not in the hook's.
  const enter = (request: FastifyRequest, _reply: unknown, done: () => void) => runWithContext(contextOf(request), done);
  fastify.addHook('onRequest', enter);
  fastify.addHook('preValidation', enter);

  let worker: EmbeddedWorker | undefined;
  if (runWorker) {
    fastify.addHook('onReady', async () => {
      worker = await startEmbeddedWorker(app, options.workerOptions ?? {});
    });
  }
  // Connections close last: after the server stopped accepting and the SSE
  // streams were ended (preClose, in the status routes).
  fastify.addHook('onClose', async () => {
    const running = worker;
    worker = undefined;
    try {
      await running?.stop();
    } finally {
      await app.close();
    }
  });
};

/**
 * The Fastify plugin: `fastify.register(celeriacPlugin, { brokerUrl, resultBackend })`.
 * Wrapped with fastify-plugin, so `fastify.celeriac`, `request.tasks` and the
 * request-context hooks are visible to every route of the instance it is
 * registered on.
 */
export const celeriacPlugin = fp(celeriacPluginImpl, { fastify: '5.x', name: '@celeriac/fastify' });
