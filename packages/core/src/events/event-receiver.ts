/**
 * Receives monitoring events from every worker, Python and Celeriac alike (Celery's
 * `app.events.Receiver`), and keeps a live model of them (`EventState`).
 *
 * ```ts
 * const receiver = app.events.receiver();
 * receiver.on('task-failed', (e) => console.log(e.uuid, e.exception));
 * await receiver.start();
 * receiver.state.workers;   // hostname → { alive, processed, active, loadavg, ... }
 * ```
 */
import { randomUUID } from 'node:crypto';
import type { ControlChannel } from '../brokers/broker.js';
import { decodeEventMessage, EVENT_EXCHANGE, type CeleryEvent } from './event-message.js';
import { EventState } from './event-state.js';

/** A handler of one event type, or of every event (`'*'`). */
export type EventHandler = (event: CeleryEvent) => void;

/** A live subscription to the `celeryev` fanout. */
export class EventReceiver {
  /** The model every received event updates (before handlers run). */
  readonly state = new EventState();
  private readonly handlers = new Map<string, Set<EventHandler>>();
  private stopSubscription: (() => Promise<void>) | undefined;

  constructor(private readonly openChannel: () => Promise<ControlChannel>) {}

  /** Call `handler` for events of `type` (`'*'`: every event). */
  on(type: string, handler: EventHandler): this {
    let set = this.handlers.get(type);
    if (!set) this.handlers.set(type, (set = new Set()));
    set.add(handler);
    return this;
  }

  /** Subscribe; resolves once events flow. */
  async start(): Promise<void> {
    if (this.stopSubscription) return;
    const channel = await this.openChannel();
    // RabbitMQ: a queue of its own, `celeryev.<uuid>` bound with `#`, as Celery's EventReceiver.
    this.stopSubscription = await channel.subscribe(
      EVENT_EXCHANGE,
      (message) => {
        for (const event of decodeEventMessage(message)) this.dispatch(event);
      },
      { queue: `${EVENT_EXCHANGE}.${randomUUID()}` },
    );
  }

  private dispatch(event: CeleryEvent): void {
    this.state.event(event);
    for (const key of [event.type, '*']) {
      for (const handler of this.handlers.get(key) ?? []) {
        try {
          handler(event);
        } catch {
          // a failing handler must not stop the stream
        }
      }
    }
  }

  async stop(): Promise<void> {
    const stop = this.stopSubscription;
    this.stopSubscription = undefined;
    await stop?.();
  }
}
