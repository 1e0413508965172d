/**
 * Beat entries: what to send and when. Entries come from the `beatSchedule`
 * setting (Celery's `beat_schedule` / `CELERYBEAT_SCHEDULE` through `fromObject`),
 * from `app.beat.add()`, and from the dynamic schedule in Redis. Each is checked
 * when beat starts; a bad one stops start-up with an error naming the entry and
 * the fix.
 */
import type { ApplyOptions } from '../apply-options.js';
import { ConfigurationError } from '../errors.js';
import { Crontab, type CrontabFields } from './crontab.js';
import { CrontabFieldError } from './crontab-field.js';
import { IntervalSchedule, type IntervalParts } from './interval.js';
import { ScheduleError, type Schedule, type ScheduleJSON } from './schedule.js';

/** Send options an entry may carry (Celery's entry `options`: any `apply_async` option). */
export type BeatSendOptions = Omit<ApplyOptions, 'taskId' | 'link' | 'linkError' | 'chain' | 'chord' | 'groupId' | 'groupIndex' | 'parentId' | 'rootId' | 'retries' | 'eta'>;

/** One periodic task, as declared. */
export interface BeatEntry {
  /** Registered task name (may be one only a Python worker defines). */
  task: string;
  /**
   * When: `crontab({...})`, `every({...})`, an interval as `{ seconds: 30 }` /
   * `{ minutes: 5 }`, or a number of milliseconds. (Celery's `beat_schedule`
   * read through `fromObject` counts bare numbers in seconds, as Celery does.)
   */
  schedule: Schedule | number | IntervalParts | CrontabFields;
  args?: unknown[];
  kwargs?: Record<string, unknown>;
  options?: BeatSendOptions;
  /** Interval only: round due times down to the interval's resolution (Celery's `relative`). */
  relative?: boolean;
  /** False to keep the entry but not send it. Default true. */
  enabled?: boolean;
}

/** Entries by name (Celery's `beat_schedule`). */
export type BeatScheduleConfig = Record<string, BeatEntry>;

/** An entry checked and ready to schedule. */
export interface ResolvedEntry {
  name: string;
  task: string;
  schedule: Schedule;
  args: unknown[];
  kwargs: Record<string, unknown>;
  options: BeatSendOptions;
  enabled: boolean;
  /** Where it was declared: settings, `app.beat.add()`, or the dynamic schedule in Redis. */
  source: 'config' | 'code' | 'redis';
}

/** The stored (JSON) form of an entry in the dynamic schedule. */
export interface StoredEntry {
  task: string;
  schedule: ScheduleJSON;
  args?: unknown[];
  kwargs?: Record<string, unknown>;
  options?: BeatSendOptions;
  enabled?: boolean;
}

/** Check one entry; throws `ConfigurationError` naming the entry and the fix. */
export function resolveEntry(name: string, entry: BeatEntry, source: ResolvedEntry['source']): ResolvedEntry {
  const where = `beat entry ${JSON.stringify(name)}`;
  if (!entry || typeof entry !== 'object') throw new ConfigurationError(`${where} must be an object { task, schedule, args?, kwargs?, options? }, got ${JSON.stringify(entry)}.`);
  if (typeof entry.task !== 'string' || entry.task === '') {
    throw new ConfigurationError(`${where} has no task name: give { task: 'tasks.add', schedule: ... } (the registered name, possibly a Python task's).`);
  }
  let schedule: Schedule;
  try {
    schedule = toSchedule(entry.schedule, entry.relative);
  } catch (err) {
    if (err instanceof CrontabFieldError || err instanceof ScheduleError || err instanceof TypeError) throw new ConfigurationError(`${where}: ${err.message}`);
    throw err;
  }
  if (entry.args !== undefined && !Array.isArray(entry.args)) throw new ConfigurationError(`${where}: args must be an array, e.g. [1, 2], got ${JSON.stringify(entry.args)}.`);
  if (entry.kwargs !== undefined && (typeof entry.kwargs !== 'object' || entry.kwargs === null || Array.isArray(entry.kwargs))) {
    throw new ConfigurationError(`${where}: kwargs must be an object, e.g. { a: 1 }, got ${JSON.stringify(entry.kwargs)}.`);
  }
  if (entry.options !== undefined && (typeof entry.options !== 'object' || entry.options === null)) {
    throw new ConfigurationError(`${where}: options must be an object of send options, e.g. { queue: 'lopri', expires: 30 }.`);
  }
  return {
    name,
    task: entry.task,
    schedule,
    args: entry.args ?? [],
    kwargs: entry.kwargs ?? {},
    options: entry.options ?? {},
    enabled: entry.enabled !== false,
    source,
  };
}

/** A schedule from what an entry may give (see `BeatEntry.schedule`). */
export function toSchedule(spec: BeatEntry['schedule'], relative?: boolean): Schedule {
  if (spec instanceof IntervalSchedule) return relative && !spec.relative ? new IntervalSchedule(spec.everyMs, true) : spec;
  if (spec instanceof Crontab) return spec;
  if (spec && typeof spec === 'object' && typeof (spec as Schedule).nextRunAfter === 'function') return spec as Schedule;
  if (spec === undefined || spec === null) throw new ScheduleError("has no schedule: give crontab({ minute: '*/15' }), every({ seconds: 30 }) or { minutes: 5 }.");
  if (typeof spec === 'object' && Object.keys(spec).some((k) => CRONTAB_KEYS.has(k))) return new Crontab(spec as CrontabFields);
  return new IntervalSchedule(spec as number | IntervalParts, relative ?? false);
}

/** A schedule back from its stored JSON form. */
export function scheduleFromJSON(json: ScheduleJSON): Schedule {
  if ('crontab' in json) return new Crontab(json.crontab);
  if ('interval' in json) return new IntervalSchedule(json.interval, json.relative ?? false);
  throw new ScheduleError(`unknown stored schedule ${JSON.stringify(json)}.`);
}

const CRONTAB_KEYS = new Set(['minute', 'hour', 'day_of_week', 'day_of_month', 'month_of_year', 'dayOfWeek', 'dayOfMonth', 'monthOfYear']);
const camel = (s: string) => s.replace(/_([a-z])/g, (_, c: string) => c.toUpperCase());

/**
 * Celery's `beat_schedule` (a Python-style dict, e.g. from JSON) → `beatSchedule`.
 * Entry names are kept as written; entry and option keys may be snake_case
 * (`routing_key`); a bare number schedule is seconds, as in Celery; a schedule
 * object with crontab fields (`{ minute: '0', hour: '*\/3', day_of_week: 'mon' }`)
 * is a crontab, one with `seconds` / `minutes` / ... an interval.
 */
export function fromCeleryBeatSchedule(value: unknown, settingName = 'beat_schedule'): BeatScheduleConfig {
  const obj = typeof value === 'string' ? (JSON.parse(value) as unknown) : value;
  if (!obj || typeof obj !== 'object' || Array.isArray(obj)) {
    throw new ConfigurationError(`Setting ${settingName} must be an object of entries { name: { task, schedule, ... } }, got ${JSON.stringify(value)}.`);
  }
  const out: BeatScheduleConfig = {};
  for (const [name, raw] of Object.entries(obj as Record<string, unknown>)) {
    if (!raw || typeof raw !== 'object') {
      out[name] = raw as BeatEntry; // resolveEntry reports it at start-up, by name
      continue;
    }
    const entry: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(raw as Record<string, unknown>)) entry[camel(k)] = v;
    const schedule = entry.schedule;
    if (typeof schedule === 'number') entry.schedule = { seconds: schedule };
    else if (schedule && typeof schedule === 'object' && !(schedule instanceof IntervalSchedule) && !(schedule instanceof Crontab)) {
      if (Object.keys(schedule).some((k) => CRONTAB_KEYS.has(k))) {
        try {
          entry.schedule = new Crontab(schedule as CrontabFields);
        } catch (err) {
          if (err instanceof CrontabFieldError) throw new ConfigurationError(`beat entry ${JSON.stringify(name)}: ${err.message}`);
          throw err;
        }
      }
    }
    if (entry.options && typeof entry.options === 'object') {
      entry.options = Object.fromEntries(Object.entries(entry.options as Record<string, unknown>).map(([k, v]) => [camel(k), v]));
    }
    out[name] = entry as unknown as BeatEntry;
  }
  return out;
}
