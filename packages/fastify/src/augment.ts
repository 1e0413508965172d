import type { Celeriac } from '@celeriac/core';
import type { RequestTasks } from './request-producer.js';

declare module 'fastify' {
  interface FastifyInstance {
    /** The Celeriac app bound by `celeriacPlugin` (results: `fastify.celeriac.AsyncResult(id)`). */
    celeriac: Celeriac;
  }
  interface FastifyRequest {
    /**
     * The per-request task producer: `request.tasks.delay(add, 2, 2)`,
     * `request.tasks.applyAsync(add, [2, 2], {}, { countdown: 5 })`,
     * `request.tasks.send('py.tasks.resize', [url])`. Tasks sent through it carry
     * this request's id and trace context.
     */
    readonly tasks: RequestTasks;
  }
}
