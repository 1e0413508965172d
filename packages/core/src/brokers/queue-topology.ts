/**
 * Which queues exist and how they are bound, from the settings, as Celery's
 * `app.amqp.queues` builds them: `taskQueues` (or the default queue bound to the
 * default exchange with the default routing key), plus — with
 * `taskCreateMissingQueues` — a queue named anywhere else, bound to a direct exchange
 * of its own name with its name as key (kombu's `Queue(name)`). Transports declare
 * what this says (RabbitMQ: exchange, queue, binding; Redis: kombu's binding sets).
 */
import type { ExchangeType, QueueSpec, Settings } from '../config.js';
import { ConfigurationError } from '../errors.js';

/** What a transport needs from the settings to declare and route. */
export interface BrokerRouting {
  queues: QueueSpec[] | null;
  defaultQueue: string;
  defaultExchange: string;
  defaultExchangeType: ExchangeType;
  defaultRoutingKey: string;
  createMissingQueues: boolean;
  /** `x-max-priority` of queues that have none of their own. */
  queueMaxPriority: number | null;
}

/** Celery's defaults when no settings are passed: the `celery` queue on the `celery` direct exchange. */
export const DEFAULT_BROKER_ROUTING: BrokerRouting = {
  queues: null,
  defaultQueue: 'celery',
  defaultExchange: 'celery',
  defaultExchangeType: 'direct',
  defaultRoutingKey: 'celery',
  createMissingQueues: true,
  queueMaxPriority: null,
};

/** The routing part of `settings`. */
export function routingFromSettings(s: Settings): BrokerRouting {
  return {
    queues: s.taskQueues,
    defaultQueue: s.taskDefaultQueue,
    defaultExchange: s.taskDefaultExchange,
    defaultExchangeType: s.taskDefaultExchangeType,
    defaultRoutingKey: s.taskDefaultRoutingKey,
    createMissingQueues: s.taskCreateMissingQueues,
    queueMaxPriority: s.taskQueueMaxPriority,
  };
}

/** One binding of a declared queue. */
export interface BindingDeclaration {
  exchange: string;
  exchangeType: ExchangeType;
  routingKey: string;
}

/** A queue as it is declared on the broker. */
export interface QueueDeclaration {
  name: string;
  durable: boolean;
  autoDelete: boolean;
  /** AMQP queue arguments (`x-max-priority`, ...). */
  arguments: Record<string, unknown>;
  bindings: BindingDeclaration[];
  /** True when it comes from `taskQueues` (or is the default queue), false when created because it was missing. */
  configured: boolean;
}

/** Celery's routing table for one app. */
export class QueueTopology {
  private readonly configured = new Map<string, QueueDeclaration>();
  private readonly exchangeTypes = new Map<string, ExchangeType>();

  constructor(readonly routing: BrokerRouting) {
    const specs = routing.queues ?? [{ name: routing.defaultQueue, exchange: routing.defaultExchange, exchangeType: routing.defaultExchangeType, routingKey: routing.defaultRoutingKey }];
    for (const spec of specs) this.add(spec);
  }

  /**
   * Add a queue at run time (remote control `add_consumer`), as `taskQueues` would;
   * a queue already known keeps its declaration. Returns how it is declared.
   */
  define(spec: QueueSpec): QueueDeclaration {
    const known = this.configured.get(spec.name);
    if (known) return known;
    this.add(spec);
    return this.configured.get(spec.name)!;
  }

  /**
   * Celery's `Queues._add`: a queue without an exchange is bound to the default
   * exchange, one without a binding key uses the default routing key (so a fanout
   * queue of Python's `Queue('b', Exchange('b', type='fanout'))` is bound under
   * `celery`, the key kombu's Redis fanout subscribes to).
   */
  private add(spec: QueueSpec): void {
    const exchange = spec.exchange || this.routing.defaultExchange;
    const type = spec.exchangeType ?? (spec.exchange ? 'direct' : this.routing.defaultExchangeType);
    const bindings: BindingDeclaration[] = [];
    if (exchange !== '') bindings.push({ exchange, exchangeType: type, routingKey: spec.routingKey || this.routing.defaultRoutingKey });
    for (const b of spec.bindings ?? []) bindings.push({ exchange: b.exchange, exchangeType: b.exchangeType ?? 'direct', routingKey: b.routingKey ?? spec.name });
    for (const b of bindings) {
      const known = this.exchangeTypes.get(b.exchange);
      if (known && known !== b.exchangeType) {
        throw new ConfigurationError(`Exchange ${JSON.stringify(b.exchange)} is given two types in taskQueues (${known} and ${b.exchangeType}); an exchange has one type.`);
      }
      this.exchangeTypes.set(b.exchange, b.exchangeType);
    }
    const args: Record<string, unknown> = { ...(spec.queueArguments ?? {}) };
    const maxPriority = spec.maxPriority ?? (args['x-max-priority'] as number | undefined) ?? this.routing.queueMaxPriority ?? undefined;
    if (maxPriority !== undefined && maxPriority !== null) args['x-max-priority'] = maxPriority;
    this.configured.set(spec.name, { name: spec.name, durable: spec.durable ?? true, autoDelete: spec.autoDelete ?? false, arguments: args, bindings, configured: true });
  }

  /** The queues of `taskQueues` (or the default queue), in order. */
  get configuredQueues(): QueueDeclaration[] {
    return [...this.configured.values()];
  }

  /**
   * How `name` is declared: its `taskQueues` entry, or kombu's `Queue(name)` when
   * missing queues are created; null when it is not configured and
   * `taskCreateMissingQueues` is false.
   */
  declaration(name: string): QueueDeclaration | null {
    const known = this.configured.get(name);
    if (known) return known;
    if (!this.routing.createMissingQueues) return null;
    const args: Record<string, unknown> = {};
    if (this.routing.queueMaxPriority !== null) args['x-max-priority'] = this.routing.queueMaxPriority;
    return { name, durable: true, autoDelete: false, arguments: args, bindings: [{ exchange: name, exchangeType: 'direct', routingKey: name }], configured: false };
  }

  /** The type of a named exchange, when `taskQueues` (or the default queue) binds to it. */
  exchangeType(exchange: string): ExchangeType | undefined {
    return this.exchangeTypes.get(exchange);
  }
}
