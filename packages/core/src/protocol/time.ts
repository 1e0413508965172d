/** Date formats Celery uses on the wire. */

/** The last `isoMicros` result: a busy worker stamps several results within one millisecond. */
let lastIsoMicros = { time: NaN, text: '' };

function isoMicros(date: Date): string {
  const time = date.getTime();
  if (time === lastIsoMicros.time) return lastIsoMicros.text;
  // JS dates carry milliseconds; Python prints microseconds (omitted when zero).
  const iso = date.toISOString(); // 2026-11-23T06:34:32.852Z
  const ms = date.getUTCMilliseconds();
  const text = ms === 0 ? iso.slice(0, 19) : `${iso.slice(0, 23)}000`;
  lastIsoMicros = { time, text };
  return text;
}

/** `eta` / `expires` headers: aware UTC isoformat, e.g. `2026-11-23T06:34:32.852000+00:00`. */
export function formatHeaderDate(date: Date): string {
  return `${isoMicros(date)}+00:00`;
}

/** `date_done` in result documents: naive UTC isoformat (no offset). */
export function formatNaiveUtc(date: Date): string {
  return isoMicros(date);
}

/**
 * Parse an ISO 8601 timestamp from a header. Values without an offset are UTC,
 * as the Celery 5.2 worker treats them; a `Z` suffix is accepted too.
 */
export function parseWireDate(text: string): Date {
  const hasZone = /(?:Z|[+-]\d{2}:?\d{2})$/i.test(text);
  // Trim sub-millisecond digits: JS Date accepts at most 3 fractional digits reliably.
  const normalized = text.replace(/(\.\d{3})\d+/, '$1');
  const date = new Date(hasZone ? normalized : `${normalized}Z`);
  if (Number.isNaN(date.getTime())) throw new RangeError(`Invalid date on the wire: ${JSON.stringify(text)}`);
  return date;
}
