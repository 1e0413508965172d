/**
 * Celery's monitoring events on the wire (Celery 5.2, captures `events-redis/`):
 * fanout exchange `celeryev`, routing key = the type with `-` → `.`
 * (`worker.heartbeat`, `task.sent`); a worker's task events travel in batches, a
 * JSON list under routing key `task.multi`. Envelope headers `{"hostname"}`,
 * delivery_mode 1. Each event: `hostname, utcoffset, pid, clock, <fields...>,
 * timestamp, type`, in that order.
 */
import type { TaskMessage } from '../protocol/message.js';
import { dumpsPython, loadsPython } from '../protocol/python-json.js';

/** The events exchange. */
export const EVENT_EXCHANGE = 'celeryev';

/** One monitoring event, as Celery's `Event()` builds it. */
export interface CeleryEvent {
  type: string;
  hostname: string;
  timestamp: number;
  clock?: number;
  pid?: number;
  utcoffset?: number;
  /** Task events: the task id. */
  uuid?: string;
  [field: string]: unknown;
}

/** Hours west of UTC, as Celery's `utcoffset()` (positive west, like `time.timezone`). */
export function utcOffsetHours(date = new Date()): number {
  return Math.floor(date.getTimezoneOffset() / 60);
}

/** `utcOffsetHours()` read at most once a minute (a Date per event cost ~1 µs, three times per task with -E). */
let offsetCache = { hours: 0, until: 0 };
function currentUtcOffset(now: number): number {
  if (now >= offsetCache.until) offsetCache = { hours: utcOffsetHours(new Date(now)), until: now + 60_000 };
  return offsetCache.hours;
}

/** Build an event with Celery's field order. */
export function makeEvent(type: string, fields: Record<string, unknown>, origin: { hostname: string; clock: number }): CeleryEvent {
  const now = Date.now();
  return {
    hostname: origin.hostname,
    utcoffset: currentUtcOffset(now),
    pid: process.pid,
    clock: origin.clock,
    ...fields,
    timestamp: now / 1000,
    type,
  } as CeleryEvent;
}

/** The routing key an event (or a batch) is published under. */
export function routingKeyOf(type: string): string {
  return type.replace(/-/g, '.');
}

/** An event message: one event, or a batch (`task.multi`). */
export function encodeEventMessage(hostname: string, body: CeleryEvent | CeleryEvent[]): TaskMessage {
  return {
    headers: { hostname } as unknown as TaskMessage['headers'],
    properties: { delivery_mode: 1 },
    contentType: 'application/json',
    contentEncoding: 'utf-8',
    body: Buffer.from(dumpsPython(body), 'utf8'),
  };
}

/** The events in a message (a batch is flattened); [] when it holds none. */
export function decodeEventMessage(message: TaskMessage): CeleryEvent[] {
  if (message.contentType !== 'application/json') return [];
  let body: unknown;
  try {
    body = loadsPython(message.body.toString('utf8'));
  } catch {
    return [];
  }
  const list = Array.isArray(body) ? body : [body];
  return list.filter((e): e is CeleryEvent => typeof e === 'object' && e !== null && typeof (e as CeleryEvent).type === 'string');
}
