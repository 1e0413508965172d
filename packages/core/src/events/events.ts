/**
 * `app.events`: Celery's monitoring events for this app — a receiver with a live
 * cluster model, and the task-sent events producers send with `taskSendSentEvent`.
 */
import type { Celeriac } from '../app.js';
import type { ControlChannel, Route } from '../brokers/broker.js';
import { clockOf } from '../control/lamport-clock.js';
import type { TaskMessage } from '../protocol/message.js';
import { EventDispatcher } from './event-dispatcher.js';
import { EventReceiver } from './event-receiver.js';

/** The events side of an app. */
export class Events {
  private channel: Promise<ControlChannel> | undefined;
  private sentDispatcher: Promise<EventDispatcher> | undefined;

  constructor(private readonly app: Celeriac) {}

  private getChannel(): Promise<ControlChannel> {
    return (this.channel ??= (async () => {
      const broker = await this.app.getBroker();
      if (!broker.openControlChannel) throw new Error(`The broker ${broker.displayUrl} has no broadcast support, so events are not available on it.`);
      return broker.openControlChannel();
    })().catch((err: unknown) => {
      this.channel = undefined;
      throw err;
    }));
  }

  /** A receiver of every worker's events (call `start()`), with its `state` model. */
  receiver(): EventReceiver {
    return new EventReceiver(() => this.getChannel());
  }

  /** Send task-sent for a message just published (when `taskSendSentEvent` is on). Never throws. */
  async taskSent(message: TaskMessage, route: Route): Promise<void> {
    if (!this.app.settings.taskSendSentEvent) return;
    try {
      const dispatcher = await (this.sentDispatcher ??= this.getChannel().then(
        (channel) => new EventDispatcher(channel, { hostname: `gen${process.pid}@${hostnameOf()}`, clock: clockOf(this.app), log: this.app.logger, groups: new Set(['task']), flushMs: 0 }),
      ));
      const h = message.headers;
      await dispatcher.sendNow('task-sent', {
        uuid: h.id,
        root_id: h.root_id ?? null,
        parent_id: h.parent_id ?? null,
        name: h.task,
        args: h.argsrepr ?? '',
        kwargs: h.kwargsrepr ?? '',
        retries: h.retries ?? 0,
        eta: h.eta ?? null,
        expires: h.expires ?? null,
        queue: route.exchange === '' ? route.routingKey : route.exchange,
        exchange: route.exchange,
        routing_key: route.routingKey,
      });
    } catch {
      // monitoring must never fail a send
    }
  }

  async close(): Promise<void> {
    const channel = this.channel;
    this.channel = undefined;
    this.sentDispatcher = undefined;
    if (channel) await (await channel.catch(() => undefined))?.close();
  }
}

function hostnameOf(): string {
  return process.env.HOSTNAME || 'localhost';
}
