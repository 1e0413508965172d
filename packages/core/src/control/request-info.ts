/** Celery's `Request.info()`: how `inspect active / reserved / scheduled` describe a task. */
import { argsRepr, kwargsRepr } from '../protocol/python-repr.js';
import { formatHeaderDate } from '../protocol/time.js';
import type { HeldRequest } from './worker-requests.js';

/** One task as Celery 5.2's `Request.info(safe)` reports it. */
export interface RequestInfo {
  id: string;
  name: string;
  args: unknown;
  kwargs: unknown;
  type: string;
  hostname: string;
  time_start: number | null;
  acknowledged: boolean;
  delivery_info: { exchange: string; routing_key: string; priority: number | null; redelivered: boolean };
  worker_pid: number | null;
}

/** `safe`: args and kwargs as their reprs (Celery's `argsrepr` / `kwargsrepr`). */
export function requestInfo(held: HeldRequest, safe = false): RequestInfo {
  const r = held.request;
  return {
    id: r.id,
    name: r.name,
    args: safe ? argsRepr(r.args) : r.args,
    kwargs: safe ? kwargsRepr(r.kwargs) : r.kwargs,
    type: r.name,
    hostname: r.hostname,
    time_start: held.timeStart,
    acknowledged: held.state === 'active' && !r.acksLate,
    delivery_info: {
      exchange: r.deliveryInfo.exchange,
      routing_key: r.deliveryInfo.routingKey,
      priority: r.deliveryInfo.priority,
      redelivered: r.deliveryInfo.redelivered,
    },
    worker_pid: held.state === 'active' ? process.pid : null,
  };
}

/** A Python isoformat timestamp, naive or aware: `2026-12-02T09:19:45.213599`, `...+02:00`, `...Z`. */
const PYTHON_ISO = /^(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})(\.\d{6})?(Z|[+-]\d{2}:\d{2})?$/;

/**
 * The `eta` of `inspect scheduled` as Celery writes it (`request.eta.isoformat()`):
 * the message's own `eta` header with its microseconds and offset (a naive one, or
 * `Z`, made aware as UTC, as Celery does), else the parsed date as aware UTC.
 */
export function scheduledEta(rawHeader: unknown, eta: Date | null): string | null {
  const m = typeof rawHeader === 'string' ? PYTHON_ISO.exec(rawHeader) : null;
  if (m) {
    const micros = m[2] && m[2] !== '.000000' ? m[2] : '';
    const offset = !m[3] || m[3] === 'Z' ? '+00:00' : m[3];
    return `${m[1]}${micros}${offset}`;
  }
  return eta ? formatHeaderDate(eta) : null;
}
