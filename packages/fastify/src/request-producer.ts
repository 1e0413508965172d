import { runWithRequestContext, type RequestContext, type TaskProducer } from '@celeriac/core';
import { mapOutage } from './outage-error.js';

/** `request.tasks`: the core's task producer, bound to one request. */
export type RequestTasks = Omit<TaskProducer, 'contextHeaders'>;

/**
 * `producer` bound to one request's context: every send runs inside `context`,
 * whatever async context the handler is in (a driver callback that lost
 * AsyncLocalStorage still sends with this request's id and trace context), and a
 * broker outage rejects with a 503 error Fastify answers as JSON.
 */
export function requestProducer(producer: TaskProducer, context: RequestContext): RequestTasks {
  return {
    delay: (task, ...args) => mapOutage(runWithRequestContext(context, () => producer.delay(task, ...args))),
    applyAsync: (task, args, kwargs, options) => mapOutage(runWithRequestContext(context, () => producer.applyAsync(task, args, kwargs, options))),
    send: (name, args, kwargs, options) => mapOutage(runWithRequestContext(context, () => producer.send(name, args, kwargs, options))),
    applySignature: (signature, options) => mapOutage(runWithRequestContext(context, () => producer.applySignature(signature, options))),
  };
}
