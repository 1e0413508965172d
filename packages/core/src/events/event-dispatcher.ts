/**
 * Sends monitoring events on the broker's `celeryev` fanout, as Celery's
 * `EventDispatcher` does: worker events at once, task events buffered and sent as
 * one `task.multi` batch (flushed after `flushMs` or at `bufferLimit` events).
 * Sending never throws into the caller: a failed publish is logged once per outage.
 */
import type { ControlChannel } from '../brokers/broker.js';
import type { Logger } from '../logger.js';
import type { LamportClock } from '../control/lamport-clock.js';
import { EVENT_EXCHANGE, encodeEventMessage, makeEvent, routingKeyOf, type CeleryEvent } from './event-message.js';

/** Options of an `EventDispatcher`. */
export interface EventDispatcherOptions {
  hostname: string;
  clock: LamportClock;
  log: Logger;
  /** Event groups sent (`task`, `worker`); others are dropped. */
  groups: Set<string>;
  /** Milliseconds a task event waits in the buffer at most. Default 100. */
  flushMs?: number;
  /** Batch size that flushes at once (Celery's default 100). */
  bufferLimit?: number;
}

/** One sender of events for one node. */
export class EventDispatcher {
  private buffer: CeleryEvent[] = [];
  private timer: NodeJS.Timeout | undefined;
  private failing = false;

  constructor(
    private readonly channel: ControlChannel,
    private readonly o: EventDispatcherOptions,
  ) {}

  /** Is `group` (`task`, `worker`) being sent? */
  enabled(group: string): boolean {
    return this.o.groups.has(group);
  }

  /** Turn a group on or off at run time (remote control `enable_events`). */
  setGroup(group: string, on: boolean): boolean {
    const had = this.o.groups.has(group);
    if (on) this.o.groups.add(group);
    else this.o.groups.delete(group);
    return had !== on;
  }

  /**
   * Send `type` with `fields` (`task-*` events are batched). Resolves once a worker
   * event is published (never rejects); at once for buffered task events.
   */
  send(type: string, fields: Record<string, unknown>): Promise<void> {
    const group = type.slice(0, type.indexOf('-'));
    if (!this.o.groups.has(group)) return Promise.resolve();
    const event = makeEvent(type, fields, { hostname: this.o.hostname, clock: this.o.clock.forward() });
    if (group === 'task') {
      this.buffer.push(event);
      if (this.buffer.length >= (this.o.bufferLimit ?? 100)) void this.flush();
      else this.timer ??= setTimeout(() => void this.flush(), this.o.flushMs ?? 100);
      return Promise.resolve();
    }
    return this.publish(routingKeyOf(type), event);
  }

  /** Publish one event at once, unbatched (producers' task-sent). */
  sendNow(type: string, fields: Record<string, unknown>): Promise<void> {
    const event = makeEvent(type, fields, { hostname: this.o.hostname, clock: this.o.clock.forward() });
    return this.publish(routingKeyOf(type), event);
  }

  /** Send what is buffered now. */
  async flush(): Promise<void> {
    clearTimeout(this.timer);
    this.timer = undefined;
    if (this.buffer.length === 0) return;
    const batch = this.buffer;
    this.buffer = [];
    await this.publish('task.multi', batch);
  }

  private async publish(routingKey: string, body: CeleryEvent | CeleryEvent[]): Promise<void> {
    try {
      await this.channel.publishFanout(EVENT_EXCHANGE, encodeEventMessage(this.o.hostname, body), routingKey);
      this.failing = false;
    } catch (err) {
      if (!this.failing) this.o.log.warn({ err }, `Could not send events (${(err as Error).message}); events are dropped until the broker is back`);
      this.failing = true;
    }
  }

  /** Flush and stop the timer. */
  async close(): Promise<void> {
    await this.flush();
  }
}
