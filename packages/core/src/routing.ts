import type { ApplyOptions } from './apply-options.js';
import type { Route } from './brokers/broker.js';
import type { Settings, TaskRoute } from './config.js';
import type { Task } from './task.js';
import { lookupTaskRoute } from './task-routes.js';

/** Where a message goes, plus the queue name for logs and result_extended. */
export interface ResolvedRoute extends Route {
  queue: string;
}

/** The send a route is resolved for, as Celery's router functions see it. */
export interface RouteCall {
  args?: readonly unknown[];
  kwargs?: Readonly<Record<string, unknown>>;
  task?: Task;
}

function defined(route: TaskRoute): TaskRoute {
  const out: TaskRoute = {};
  if (route.queue !== undefined) out.queue = route.queue;
  if (route.exchange !== undefined) out.exchange = route.exchange;
  if (route.routingKey !== undefined) out.routingKey = route.routingKey;
  if (route.priority !== undefined && route.priority !== null) out.priority = route.priority;
  return out;
}

/**
 * Resolve a message's route in Celery's order: the call's own options, then the
 * task's attributes (`queue`, `priority`), then `taskRoutes` (see task-routes.ts:
 * names, globs, regexps, router functions), then the default queue; a route's
 * fields fill only what the call and the task leave open (Celery's `lpmerge`).
 * Task messages use the default exchange `""` with the queue as routing key unless
 * an exchange is named, or the queue is bound to a topic or fanout exchange in
 * `taskQueues` (then that exchange, with the given routing key or the queue's
 * binding key).
 */
export function resolveRoute(name: string, options: ApplyOptions, settings: Settings, taskDefaults: { queue?: string; priority?: number } = {}, call: RouteCall = {}): ResolvedRoute {
  const own = { ...defined({ queue: taskDefaults.queue, priority: taskDefaults.priority }), ...defined(options) };
  const routed = lookupTaskRoute(settings.taskRoutes, { name, args: call.args ?? [], kwargs: call.kwargs ?? {}, options, task: call.task });
  const merged: TaskRoute = routed ? { ...defined(routed), ...own } : own;
  const queue = merged.queue ?? settings.taskDefaultQueue;
  const givenExchange = merged.exchange;
  const givenKey = merged.routingKey;
  let exchange = givenExchange ?? '';
  // Celery: without an exchange, a direct queue is published to the default exchange
  // with the queue name as routing key (a route's routing_key alone does not change that).
  let routingKey = givenExchange ? (givenKey ?? queue) : queue;
  // Celery: a queue bound to a topic or fanout exchange (taskQueues) is published to
  // through that exchange, with the given routing key or the queue's binding key.
  const spec = givenExchange === undefined ? settings.taskQueues?.find((q) => q.name === queue) : undefined;
  if (spec && (spec.exchangeType ?? 'direct') !== 'direct') {
    exchange = spec.exchange || settings.taskDefaultExchange;
    routingKey = givenKey || spec.routingKey || settings.taskDefaultRoutingKey;
  }
  const priority = merged.priority ?? settings.taskDefaultPriority ?? undefined;
  if (priority !== undefined && (!Number.isInteger(priority) || priority < 0 || priority > 9)) {
    throw new RangeError(`Task priority must be an integer 0–9, got ${priority} for ${name}.`);
  }
  return { queue, exchange, routingKey, priority };
}
