import {
  bindApp,
  createTaskProducer,
  currentApp,
  requestContextFromHeaders,
  runWithRequestContext,
  startEmbeddedWorker,
  useApp,
  type Celeriac,
  type EmbeddedWorker,
  type RequestContext,
} from '@celeriac/core';
import type { FastifyInstance, FastifyPluginAsync, FastifyReply, FastifyRequest, HookHandlerDoneFunction } from 'fastify';
import fp from 'fastify-plugin';
import { pluginSettings, workerMode, type CeleriacPluginOptions } from './options.js';
import { requestProducer, type RequestTasks } from './request-producer.js';
import './augment.js';

const SOURCE = '@celeriac/fastify';

/**
 * Binds the app, decorates `fastify.celeriac` and `request.tasks`, wraps each
 * request in its request context, and owns the embedded worker's and the
 * connections' lifetime.
 */
const celeriacPluginImpl: FastifyPluginAsync<CeleriacPluginOptions> = async (fastify: FastifyInstance, options: CeleriacPluginOptions) => {
  const declared = options.app ?? currentApp();
  if (!declared) {
    throw new Error(`${SOURCE}: no Celeriac app declared. Import your tasks module (export const app = createApp('proj')) before registering the plugin, or pass { app }.`);
  }
  const mode = workerMode(options.worker);
  const userHeaders = options.headers;
  if (userHeaders !== undefined && typeof userHeaders !== 'function') {
    throw new TypeError(`${SOURCE}: headers must be a function (request) => ({ ...task headers }), got ${typeof userHeaders}.`);
  }
  const app: Celeriac = bindApp(declared, pluginSettings(fastify, options), SOURCE);

  const contexts = new WeakMap<FastifyRequest, RequestContext>();
  const requests = new WeakMap<RequestContext, FastifyRequest>();
  const contextOf = (request: FastifyRequest): RequestContext => {
    let context = contexts.get(request);
    if (!context) {
      context = requestContextFromHeaders(request.headers, String(request.id));
      contexts.set(request, context);
      requests.set(context, request);
    }
    return context;
  };
  // One producer for the app; the hook finds the request behind the context it is given.
  const producer = createTaskProducer(app, {
    headers: userHeaders
      ? (context) => {
          const request = requests.get(context);
          return request ? userHeaders(request) : undefined;
        }
      : undefined,
  });
  const producers = new WeakMap<FastifyRequest, RequestTasks>();

  fastify.decorate('celeriac', app);
  fastify.decorateRequest('tasks', {
    getter(this: FastifyRequest): RequestTasks {
      let tasks = producers.get(this);
      if (!tasks) producers.set(this, (tasks = requestProducer(producer, contextOf(this))));
      return tasks;
    },
  });

  // The request context also reaches code that sends without `request.tasks` (a
  // service with its own createTaskProducer) through AsyncLocalStorage: every later
  // hook and the handler run inside it (test/fastify-plugin.test.ts checks it after
  // a body read over a real socket).
  fastify.addHook('onRequest', (request: FastifyRequest, _reply: FastifyReply, done: HookHandlerDoneFunction) => runWithRequestContext(contextOf(request), done));

  // The worker and the connections are the app's: another instance or adapter (Express,
  // Nest) using the same app in this process keeps them until it closes too.
  const use = useApp(app);
  let embedded: EmbeddedWorker | null = null;
  fastify.addHook('onReady', async () => {
    embedded = await startEmbeddedWorker(app, { ...options.workerOptions, worker: mode });
  });
  // Connections close last: after the server stopped accepting and the SSE
  // streams were ended (preClose, in celeriacStatusRoutes).
  fastify.addHook('onClose', async () => {
    const running = embedded;
    embedded = null;
    try {
      await running?.stop();
    } finally {
      await use.release();
    }
  });
};

/**
 * The Fastify plugin: `fastify.register(celeriacPlugin, { brokerUrl, resultBackend })`.
 * Wrapped with fastify-plugin, so `fastify.celeriac`, `request.tasks` and the
 * request-context hooks are visible to every route of the instance it is
 * registered on.
 */
export const celeriacPlugin = fp(celeriacPluginImpl, { fastify: '5.x', name: SOURCE });
