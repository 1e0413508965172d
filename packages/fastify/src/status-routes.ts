import { getTaskStatus, isTaskId, SseStreams, streamTaskEvents, type Celeriac } from '@celeriac/core';
import type { FastifyInstance, FastifyPluginAsync, FastifyRequest } from 'fastify';
import { mapOutage } from './outage-error.js';
import './augment.js';

/** Options of `celeriacStatusRoutes`. */
export interface StatusRoutesOptions {
  /**
   * Whether this request may see task `taskId` (its state, result and events).
   * Called for both routes; false answers 403. Default: anyone holding a task id
   * may read it (ids are random UUIDs; still, set this in production).
   */
  authorize?: (request: FastifyRequest, taskId: string) => boolean | Promise<boolean>;
  /** Include the traceback of a failed task. Default false (it shows your code). */
  tracebacks?: boolean;
  /** Seconds between SSE heartbeat comments while nothing changes. Default 15. */
  heartbeatSeconds?: number;
}

/** A 4xx that Fastify's error handler answers as JSON. */
class RouteError extends Error {
  constructor(
    readonly statusCode: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

function appOf(fastify: FastifyInstance): Celeriac {
  if (!fastify.hasDecorator('celeriac')) {
    throw new Error('celeriacStatusRoutes needs celeriacPlugin: register it first (fastify.register(celeriacPlugin, config)), then fastify.register(celeriacStatusRoutes, { prefix: "/tasks" }).');
  }
  return fastify.celeriac;
}

/**
 * `GET /:id` (state, result or progress, error) and `GET /:id/events` (Server-Sent
 * Events of each state change, pushed by the result backend; the stream ends at a
 * final state). An encapsulated plugin: register it with a `prefix`,
 * `fastify.register(celeriacStatusRoutes, { prefix: '/tasks', authorize })`.
 * Open streams are ended when the server closes (preClose), so `fastify.close()`
 * does not wait for them.
 */
export const celeriacStatusRoutes: FastifyPluginAsync<StatusRoutesOptions> = async (fastify, options) => {
  const app = appOf(fastify);
  const { authorize, tracebacks = false, heartbeatSeconds = 15 } = options;
  if (authorize !== undefined && typeof authorize !== 'function') {
    throw new TypeError(`celeriacStatusRoutes: authorize must be a function (request, taskId) => boolean, got ${typeof authorize}.`);
  }
  if (!(typeof heartbeatSeconds === 'number' && heartbeatSeconds > 0)) {
    throw new RangeError(`celeriacStatusRoutes: heartbeatSeconds must be a positive number, got ${JSON.stringify(heartbeatSeconds)}.`);
  }
  const streams = new SseStreams();

  const check = async (request: FastifyRequest, id: string) => {
    if (!isTaskId(id)) throw new RouteError(400, 'CELERIAC_BAD_TASK_ID', `Not a task id: ${JSON.stringify(id.slice(0, 80))} (letters, digits and -_.: only, 1-200 characters).`);
    if (authorize && !(await authorize(request, id))) throw new RouteError(403, 'CELERIAC_TASK_FORBIDDEN', `Not allowed to read task ${id}.`);
  };

  fastify.get<{ Params: { id: string } }>('/:id', async (request) => {
    await check(request, request.params.id);
    return mapOutage(getTaskStatus(app, request.params.id, { tracebacks }));
  });

  fastify.get<{ Params: { id: string } }>('/:id/events', async (request, reply) => {
    await check(request, request.params.id);
    reply.hijack();
    await streamTaskEvents(app, request.params.id, reply.raw, { tracebacks, heartbeatMs: heartbeatSeconds * 1000, streams });
  });

  fastify.addHook('preClose', (done) => {
    streams.closeAll();
    done();
  });
};
