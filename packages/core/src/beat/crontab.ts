/**
 * Celery's `crontab()` schedule, evaluated at the wall time of the app's time zone.
 *
 * All five fields must match (day of month AND day of week, as in Celery — not
 * cron's OR). Next run = the first matching minute strictly after the last run.
 *
 * Daylight-saving changes (where Celery 5.2 is an hour off):
 * - spring forward: a wall time the clocks skip (02:30 in Berlin on the last Sunday
 *   of March) fires once, at the instant the clocks jump (03:00 CEST), so a daily
 *   job is never lost; several skipped times collapse into that one run;
 * - fall back: a wall time shown twice (02:30 in late October) fires once, at its
 *   first occurrence — unless the entry runs every hour (`hour: '*'`), whose
 *   minutes then fire in both occurrences, so `*\/15` keeps firing every 15 real
 *   minutes through the repeated hour (Vixie cron's rule).
 */
import { CRONTAB_FIELDS, CrontabFieldError, expandCrontabField, type CrontabFieldName, type CrontabFieldValue } from './crontab-field.js';
import type { Schedule, ScheduleJSON } from './schedule.js';
import { instantsOf, offsetAt, wallKey, wallTimeOf } from './zone.js';

/** Fields of `crontab()`; each defaults to `'*'`. Snake-case names (`day_of_week`) are accepted too. */
export interface CrontabFields {
  minute?: CrontabFieldValue;
  hour?: CrontabFieldValue;
  /** 0 = Sunday … 6 = Saturday, or names: `'mon-fri'`, `'sat,sun'`. */
  dayOfWeek?: CrontabFieldValue;
  dayOfMonth?: CrontabFieldValue;
  /** 1–12 (numbers only, as in Celery). */
  monthOfYear?: CrontabFieldValue;
}

const DAY_MS = 86_400_000;
/** Days in each month (1-based), February in a leap year. */
const DAYS_IN_MONTH = [0, 31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];
/** How far ahead a next run is looked for (covers `29 Feb` on a given weekday: 28 years). */
const SEARCH_DAYS = 366 * 29;

/** Celery's `crontab` schedule (see the module comment for daylight-saving changes). */
export class Crontab implements Schedule {
  readonly kind = 'crontab';
  /** The fields as written (`'*'` when not given). */
  readonly fields: Readonly<Record<CrontabFieldName, string>>;
  /** The expanded, sorted values of each field. */
  readonly minutes: readonly number[];
  readonly hours: readonly number[];
  readonly daysOfWeek: readonly number[];
  readonly daysOfMonth: readonly number[];
  readonly monthsOfYear: readonly number[];
  private readonly dow: boolean[];
  private readonly dom: boolean[];
  private readonly moy: boolean[];
  private readonly everyHour: boolean;

  /** Throws `CrontabFieldError` naming the field. */
  constructor(fields: CrontabFields = {}) {
    const given = normalizeFieldNames(fields);
    const text = (name: CrontabFieldName): string => {
      const v = given[name];
      return v === undefined ? '*' : Array.isArray(v) ? v.join(',') : String(v);
    };
    const expand = (name: CrontabFieldName) => expandCrontabField(name, given[name] ?? '*');
    this.fields = { minute: text('minute'), hour: text('hour'), dayOfWeek: text('dayOfWeek'), dayOfMonth: text('dayOfMonth'), monthOfYear: text('monthOfYear') };
    this.minutes = expand('minute');
    this.hours = expand('hour');
    this.daysOfWeek = expand('dayOfWeek');
    this.daysOfMonth = expand('dayOfMonth');
    this.monthsOfYear = expand('monthOfYear');
    const mask = (values: readonly number[], size: number) => Array.from({ length: size }, (_, i) => values.includes(i));
    this.dow = mask(this.daysOfWeek, 7);
    this.dom = mask(this.daysOfMonth, 32);
    this.moy = mask(this.monthsOfYear, 13);
    this.everyHour = this.hours.length === 24;
    // A day that no chosen month has (30 February) would never fire: say so now, not never.
    const longest = Math.max(...this.monthsOfYear.map((m) => DAYS_IN_MONTH[m]!));
    if (this.daysOfMonth[0]! > longest) {
      throw new CrontabFieldError('dayOfMonth', this.fields.dayOfMonth, `no month in monthOfYear ${JSON.stringify(this.fields.monthOfYear)} has day ${this.daysOfMonth[0]}, so it would never run`);
    }
  }

  nextRunAfter(lastRunMs: number, zone: string): number | null {
    const w = wallTimeOf(lastRunMs, zone);
    // Start a day early: in a fall-back overlap the wall date can lag the instant's.
    let dayKey = wallKey(w.year, w.month, w.day) - DAY_MS;
    for (let i = 0; i < SEARCH_DAYS; i++, dayKey += DAY_MS) {
      const date = new Date(dayKey);
      if (!this.moy[date.getUTCMonth() + 1] || !this.dom[date.getUTCDate()] || !this.dow[date.getUTCDay()]) continue;
      const found = this.firstOnDay(dayKey, lastRunMs, zone);
      if (found !== null) return found;
    }
    return null;
  }

  /** The earliest run on the wall date `dayKey` after `afterMs`, or null. */
  private firstOnDay(dayKey: number, afterMs: number, zone: string): number | null {
    const before = offsetAt(dayKey - DAY_MS, zone);
    const after = offsetAt(dayKey + 2 * DAY_MS, zone);
    if (before === after && offsetAt(dayKey + DAY_MS / 2 - before, zone) === before) {
      // No transition that day: wall time → instant is a fixed shift, and runs are in order.
      for (const h of this.hours) {
        for (const m of this.minutes) {
          const t = dayKey + h * 3_600_000 + m * 60_000 - before;
          if (t > afterMs) return t;
        }
      }
      return null;
    }
    let best: number | null = null;
    for (const h of this.hours) {
      for (const m of this.minutes) {
        const { instants, gapEnd } = instantsOf(dayKey + h * 3_600_000 + m * 60_000, zone);
        const runs = instants.length === 0 ? [gapEnd!] : this.everyHour ? instants : [instants[0]!];
        for (const t of runs) if (t > afterMs && (best === null || t < best)) best = t;
      }
    }
    return best;
  }

  describe(): string {
    const f = this.fields;
    return `crontab(${f.minute} ${f.hour} ${f.dayOfMonth} ${f.monthOfYear} ${f.dayOfWeek})`;
  }

  toJSON(): ScheduleJSON {
    return { crontab: { ...this.fields } };
  }
}

const SNAKE: Record<string, CrontabFieldName> = { day_of_week: 'dayOfWeek', day_of_month: 'dayOfMonth', month_of_year: 'monthOfYear' };

function normalizeFieldNames(fields: CrontabFields | Record<string, CrontabFieldValue>): Partial<Record<CrontabFieldName, CrontabFieldValue>> {
  const out: Partial<Record<CrontabFieldName, CrontabFieldValue>> = {};
  for (const [key, value] of Object.entries(fields ?? {})) {
    const name = (SNAKE[key] ?? key) as CrontabFieldName;
    if (!(name in CRONTAB_FIELDS)) {
      throw new TypeError(`crontab() has no field ${JSON.stringify(key)}: use minute, hour, dayOfWeek, dayOfMonth, monthOfYear.`);
    }
    if (value !== undefined) out[name] = value;
  }
  return out;
}

/**
 * Celery's `crontab()`: `crontab({ minute: 0, hour: '9-17', dayOfWeek: 'mon-fri' })`.
 * Unset fields are `'*'`, so `crontab()` fires every minute. Throws
 * `CrontabFieldError` for a field Celery's syntax does not allow.
 */
export function crontab(fields: CrontabFields = {}): Crontab {
  return new Crontab(fields);
}
