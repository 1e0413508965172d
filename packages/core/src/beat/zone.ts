/**
 * Wall-clock time in an IANA time zone, from the runtime's Intl data (no library):
 * the local date and time of an instant, and the instants a local date and time
 * names — none in a spring-forward gap, two in a fall-back overlap.
 */

/** A local date and time (month 1–12, weekday 0 = Sunday). */
export interface WallTime {
  year: number;
  month: number;
  day: number;
  hour: number;
  minute: number;
  weekday: number;
}

const formatters = new Map<string, Intl.DateTimeFormat>();

function formatter(zone: string): Intl.DateTimeFormat {
  let f = formatters.get(zone);
  if (!f) {
    f = new Intl.DateTimeFormat('en-US', {
      timeZone: zone,
      hourCycle: 'h23',
      year: 'numeric',
      month: 'numeric',
      day: 'numeric',
      hour: 'numeric',
      minute: 'numeric',
      second: 'numeric',
      weekday: 'short',
    });
    formatters.set(zone, f);
  }
  return f;
}

/** Whether the runtime knows `zone` (an IANA name such as `Europe/Berlin`). */
export function isKnownZone(zone: string): boolean {
  try {
    formatter(zone);
    return true;
  } catch {
    return false;
  }
}

/** The zone this machine's clock is set to (Celery's local time when `enableUtc` is false and no `timezone` is set). */
export function systemZone(): string {
  return new Intl.DateTimeFormat().resolvedOptions().timeZone;
}

const WEEKDAY_INDEX: Record<string, number> = { Sun: 0, Mon: 1, Tue: 2, Wed: 3, Thu: 4, Fri: 5, Sat: 6 };

/** Local date, time (whole minutes and seconds) of `instantMs` in `zone`. */
function parts(instantMs: number, zone: string): WallTime & { second: number } {
  const out = { year: 0, month: 0, day: 0, hour: 0, minute: 0, second: 0, weekday: 0 };
  for (const p of formatter(zone).formatToParts(instantMs)) {
    if (p.type === 'weekday') out.weekday = WEEKDAY_INDEX[p.value] ?? 0;
    else if (p.type in out) (out as Record<string, number>)[p.type] = Number(p.value);
  }
  return out;
}

/** The local date and time of `instantMs` in `zone` (seconds dropped). */
export function wallTimeOf(instantMs: number, zone: string): WallTime {
  const { second: _second, ...wall } = parts(instantMs, zone);
  return wall;
}

/** Milliseconds `zone` is ahead of UTC at `instantMs` (Berlin in summer: 7 200 000). */
export function offsetAt(instantMs: number, zone: string): number {
  const p = parts(instantMs, zone);
  const asUtc = Date.UTC(p.year, p.month - 1, p.day, p.hour, p.minute, p.second);
  return asUtc - Math.floor(instantMs / 1000) * 1000;
}

/** A wall time's fields read as if it were UTC, in ms (a convenient sortable key). */
export function wallKey(year: number, month: number, day: number, hour = 0, minute = 0): number {
  return Date.UTC(year, month - 1, day, hour, minute);
}

/**
 * The instants at which the clocks of `zone` show the wall time `key` (see
 * `wallKey`), earliest first: one normally, two in a fall-back overlap, none in a
 * spring-forward gap. `gapEnd` is set for a gap: the instant the clocks jump
 * forward past it (where a time in the gap is deemed to fall).
 */
export function instantsOf(key: number, zone: string): { instants: number[]; gapEnd?: number } {
  // Offsets in force around that wall time; transitions are never closer than a day apart.
  const before = offsetAt(key - 86_400_000, zone);
  const after = offsetAt(key + 86_400_000, zone);
  const instants: number[] = [];
  for (const offset of before === after ? [before] : [before, after]) {
    const candidate = key - offset;
    if (offsetAt(candidate, zone) === offset && !instants.includes(candidate)) instants.push(candidate);
  }
  instants.sort((a, b) => a - b);
  if (instants.length > 0) return { instants };
  // In a gap: the transition is between key - before and key - after (after > before).
  let lo = key - before; // still on the old offset... or not: find the first instant on the new offset
  let hi = key - after;
  [lo, hi] = lo < hi ? [lo, hi] : [hi, lo];
  lo -= 86_400_000;
  hi += 86_400_000;
  while (hi - lo > 1000) {
    const mid = Math.floor((lo + hi) / 2000) * 1000;
    if (offsetAt(mid, zone) === before) lo = mid;
    else hi = mid;
  }
  return { instants, gapEnd: hi };
}

/**
 * The zone beat evaluates crontabs in, by Celery's rule: `timezone` when set,
 * else UTC, else (with `enableUtc` false) the machine's zone. Throws for a name
 * the runtime does not know.
 */
export function beatZone(timezone: string | null, enableUtc: boolean): string {
  const zone = timezone ?? (enableUtc ? 'UTC' : systemZone());
  if (!isKnownZone(zone)) {
    throw new RangeError(
      `timezone ${JSON.stringify(zone)} is not a time zone this runtime knows: set timezone to an IANA name such as 'Europe/Berlin', 'Asia/Shanghai' or 'UTC'.`,
    );
  }
  return zone;
}
