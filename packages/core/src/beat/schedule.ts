/**
 * What every beat schedule answers: when is it next due after its last run. The
 * scheduler (scheduler.ts) keeps the last run; the schedule only does the
 * arithmetic, in the app's time zone.
 */

/** A schedule: an interval (`every`) or a `crontab`. */
export interface Schedule {
  /** `interval` or `crontab`. */
  readonly kind: 'interval' | 'crontab';
  /**
   * The first instant (unix ms) after the run at `lastRunMs` at which the entry is
   * due, computed in time zone `zone`; null when it never fires again.
   */
  nextRunAfter(lastRunMs: number, zone: string): number | null;
  /** A short description for logs and `celeriac beat list` (`every 30s`, `crontab(*\/15 * * * *)`). */
  describe(): string;
  /** A JSON form that `scheduleFromJSON` turns back into an equal schedule (dynamic entries in Redis). */
  toJSON(): ScheduleJSON;
}

/** The stored form of a schedule. */
export type ScheduleJSON =
  | { interval: number; relative?: boolean }
  | { crontab: { minute: string; hour: string; dayOfWeek: string; dayOfMonth: string; monthOfYear: string } };

/** A bad schedule: the message says what is wrong and how to write it. */
export class ScheduleError extends Error {
  override name = 'ScheduleError';
}

/** Celery's `is_due`: whether an entry last run at `lastRunMs` is due at `nowMs`, and how long until it should be checked again. */
export interface DueCheck {
  due: boolean;
  /** Milliseconds until the next due time (after a run now, when `due`); null when it never fires again. */
  nextCheckMs: number | null;
}

/** Whether `schedule` is due at `nowMs` after a run at `lastRunMs` (Celery's `schedule.is_due`). */
export function isDue(schedule: Schedule, lastRunMs: number, nowMs: number, zone: string): DueCheck {
  const next = schedule.nextRunAfter(lastRunMs, zone);
  if (next === null) return { due: false, nextCheckMs: null };
  if (nowMs < next) return { due: false, nextCheckMs: next - nowMs };
  const following = schedule.nextRunAfter(nowMs, zone);
  return { due: true, nextCheckMs: following === null ? null : following - nowMs };
}
