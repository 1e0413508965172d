/**
 * Interval schedules (Celery's `schedule(run_every)`): due `every` after the last
 * run; the first run is one interval after beat starts. `relative` rounds each due
 * time down to the interval's resolution (day, hour or minute, in the app's time
 * zone), as Celery's `relative=True` does.
 */
import { ScheduleError, type Schedule, type ScheduleJSON } from './schedule.js';
import { instantsOf, wallKey, wallTimeOf } from './zone.js';

/** An interval as parts (summed): `{ seconds: 30 }`, `{ minutes: 5 }`, `{ hours: 1, minutes: 30 }`. */
export interface IntervalParts {
  milliseconds?: number;
  seconds?: number;
  minutes?: number;
  hours?: number;
  days?: number;
}

const UNIT_MS: Record<keyof IntervalParts, number> = { milliseconds: 1, seconds: 1000, minutes: 60_000, hours: 3_600_000, days: 86_400_000 };

/** Milliseconds of an interval given as a number of ms or as parts; throws `ScheduleError` when not positive. */
export function intervalMs(spec: number | IntervalParts): number {
  let ms = 0;
  if (typeof spec === 'number') ms = spec;
  else if (spec && typeof spec === 'object') {
    for (const [unit, value] of Object.entries(spec)) {
      const factor = UNIT_MS[unit as keyof IntervalParts];
      if (factor === undefined) throw new ScheduleError(`interval has an unknown unit ${JSON.stringify(unit)}: use milliseconds, seconds, minutes, hours or days.`);
      if (typeof value !== 'number' || !Number.isFinite(value)) throw new ScheduleError(`interval ${unit} must be a finite number, got ${JSON.stringify(value)}.`);
      ms += value * factor;
    }
  } else throw new ScheduleError(`an interval is a number of milliseconds or { seconds, minutes, hours, days }, got ${JSON.stringify(spec)}.`);
  if (!Number.isFinite(ms) || ms <= 0) {
    throw new ScheduleError(`an interval must be positive, got ${JSON.stringify(spec)} (${ms} ms): give e.g. { seconds: 30 } or { minutes: 5 }.`);
  }
  return Math.round(ms);
}

/** Celery's `schedule(run_every, relative)`. */
export class IntervalSchedule implements Schedule {
  readonly kind = 'interval';
  /** The interval in milliseconds. */
  readonly everyMs: number;

  constructor(
    every: number | IntervalParts,
    /** Round due times down to the interval's resolution (Celery's `relative`). */
    readonly relative = false,
  ) {
    this.everyMs = intervalMs(every);
  }

  nextRunAfter(lastRunMs: number, zone: string): number {
    const end = lastRunMs + this.everyMs;
    return this.relative ? truncate(end, this.everyMs, zone) : end;
  }

  describe(): string {
    const ms = this.everyMs;
    const text = ms % 86_400_000 === 0 ? `${ms / 86_400_000}d` : ms % 3_600_000 === 0 ? `${ms / 3_600_000}h` : ms % 60_000 === 0 ? `${ms / 60_000}m` : ms % 1000 === 0 ? `${ms / 1000}s` : `${ms}ms`;
    return `every ${text}${this.relative ? ' (relative)' : ''}`;
  }

  toJSON(): ScheduleJSON {
    return this.relative ? { interval: this.everyMs, relative: true } : { interval: this.everyMs };
  }
}

/** Celery's `delta_resolution`: an interval of a day or more → local midnight; an hour or more → the hour; a minute or more → the minute. */
function truncate(instantMs: number, everyMs: number, zone: string): number {
  if (everyMs < 60_000) return instantMs;
  const w = wallTimeOf(instantMs, zone);
  const key = everyMs >= 86_400_000 ? wallKey(w.year, w.month, w.day) : everyMs >= 3_600_000 ? wallKey(w.year, w.month, w.day, w.hour) : wallKey(w.year, w.month, w.day, w.hour, w.minute);
  const { instants, gapEnd } = instantsOf(key, zone);
  // The latest instant showing that wall time that is not after the original one.
  const fitting = instants.filter((t) => t <= instantMs);
  return fitting.length > 0 ? fitting[fitting.length - 1]! : (gapEnd ?? instantMs);
}

/** An interval schedule: `every({ seconds: 30 })`, `every(500)` (ms), `every({ hours: 1 }, { relative: true })`. */
export function every(interval: number | IntervalParts, options: { relative?: boolean } = {}): IntervalSchedule {
  return new IntervalSchedule(interval, options.relative ?? false);
}
