import type { Celeriac } from '@celeriac/core';
import type { FastifyInstance, FastifyPluginAsync, FastifyRequest } from 'fastify';
import { SseWriter, taskStatus, watchTaskState } from './core-link.js';
import './augment.js';

/** Options of `celeriacStatusRoutes`. */
export interface StatusRoutesOptions {
  /**
   * Whether this request may see task `taskId` (its state, result and events).
   * Called for both routes; false answers 403. Default: everyone may (task ids are
   * random UUIDs, but anyone holding one can read the result: set this in production).
   */
  authorize?: (request: FastifyRequest, taskId: string) => boolean | Promise<boolean>;
  /** Include the traceback of a failed task. Default false (it shows your code). */
  tracebacks?: boolean;
  /** Seconds between SSE heartbeat comments while nothing changes. Default 15. */
  heartbeatSeconds?: number;
}

const idParams = {
  type: 'object',
  properties: { id: { type: 'string', minLength: 1, maxLength: 255 } },
  required: ['id'],
} as const;

/** A 403 that Fastify's error handler answers as JSON. */
class TaskAccessDenied extends Error {
  readonly statusCode = 403;
  readonly code = 'CELERIAC_TASK_FORBIDDEN';
  override name = 'TaskAccessDenied';
  constructor(taskId: string) {
    super(`Not allowed to read task ${taskId}.`);
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
 * Events of each state change, fed by the result backend's pub/sub; the stream ends
 * at a final state). An encapsulated plugin: register it with a `prefix`,
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
  if (!(heartbeatSeconds > 0)) throw new RangeError(`celeriacStatusRoutes: heartbeatSeconds must be a positive number, got ${heartbeatSeconds}.`);
  const streams = new Set<() => void>();

  const check = async (request: FastifyRequest, id: string) => {
    if (authorize && !(await authorize(request, id))) throw new TaskAccessDenied(id);
  };

  fastify.get<{ Params: { id: string } }>('/:id', { schema: { params: idParams } }, async (request) => {
    await check(request, request.params.id);
    return taskStatus(app, request.params.id, { tracebacks });
  });

  fastify.get<{ Params: { id: string } }>('/:id/events', { schema: { params: idParams } }, async (request, reply) => {
    const { id } = request.params;
    await check(request, id);
    reply.hijack();
    const sse = new SseWriter(reply.raw, heartbeatSeconds * 1000);
    let unsubscribe: (() => void) | undefined;
    const finish = () => {
      if (!streams.delete(finish)) return;
      unsubscribe?.();
      sse.end();
    };
    streams.add(finish);
    request.raw.once('close', finish);
    reply.raw.once('close', finish);
    unsubscribe = watchTaskState(
      app,
      id,
      (status) => {
        sse.send('state', status);
        if (status.ready) finish();
      },
      { tracebacks },
    );
    if (!streams.has(finish)) unsubscribe();
  });

  fastify.addHook('preClose', (done) => {
    for (const finish of [...streams]) finish();
    done();
  });
};
