import type { Celeriac } from '@celeriac/core';
import { createTaskProducer, runWithRequestContext, type RequestContext, type TaskProducer } from './core-link.js';

/** `request.tasks`: the core's task producer, bound to one request's context. */
export type RequestTasks = TaskProducer;

/**
 * A producer whose every send runs inside `context`, whatever async context the
 * handler happens to be in (a callback from a driver that lost AsyncLocalStorage
 * still sends with this request's id and trace context).
 */
export function requestProducer(app: Celeriac, context: RequestContext): RequestTasks {
  const producer = createTaskProducer(app, { headers: context.headers });
  return {
    delay: (task, ...args) => runWithRequestContext(context, () => producer.delay(task, ...args)),
    applyAsync: (task, args, kwargs, options) => runWithRequestContext(context, () => producer.applyAsync(task, args, kwargs, options)),
    send: (name, args, kwargs, options) => runWithRequestContext(context, () => producer.send(name, args, kwargs, options)),
  };
}
