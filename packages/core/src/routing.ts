import type { ApplyOptions } from './apply-options.js';
import type { Route } from './brokers/broker.js';
import type { Settings } from './config.js';

/** Where a task message goes, plus the queue name for logs and result_extended. */
export interface ResolvedRoute extends Route {
  queue: string;
}

function globToRegExp(glob: string): RegExp {
  return new RegExp('^' + glob.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*') + '$');
}

/**
 * Resolve a message's route like Celery: explicit options first, then
 * `taskRoutes` (exact name, then globs), then the task's own queue, then the
 * default queue. Task messages use the default exchange `""` with the queue as
 * routing key unless an exchange is named, or the queue is bound to a topic or
 * fanout exchange in `taskQueues` (then that exchange, with the given routing key or
 * the queue's binding key).
 */
export function resolveRoute(name: string, options: ApplyOptions, settings: Settings, taskDefaults: { queue?: string; priority?: number } = {}): ResolvedRoute {
  let configured = settings.taskRoutes[name];
  if (!configured) {
    for (const [pattern, route] of Object.entries(settings.taskRoutes)) {
      if (pattern.includes('*') && globToRegExp(pattern).test(name)) {
        configured = route;
        break;
      }
    }
  }
  const queue = options.queue ?? configured?.queue ?? taskDefaults.queue ?? settings.taskDefaultQueue;
  const givenExchange = options.exchange ?? configured?.exchange;
  const givenKey = options.routingKey ?? configured?.routingKey;
  let exchange = givenExchange ?? '';
  let routingKey = givenKey ?? queue;
  // Celery: a queue bound to a topic or fanout exchange (taskQueues) is published to
  // through that exchange, with the given routing key or the queue's binding key.
  const spec = givenExchange === undefined ? settings.taskQueues?.find((q) => q.name === queue) : undefined;
  if (spec && (spec.exchangeType ?? 'direct') !== 'direct') {
    exchange = spec.exchange ?? spec.name;
    routingKey = givenKey ?? spec.routingKey ?? queue;
  }
  const priority = options.priority ?? configured?.priority ?? taskDefaults.priority ?? settings.taskDefaultPriority ?? undefined;
  if (priority !== undefined && (!Number.isInteger(priority) || priority < 0 || priority > 9)) {
    throw new RangeError(`Task priority must be an integer 0–9, got ${priority} for ${name}.`);
  }
  return { queue, exchange, routingKey, priority };
}
