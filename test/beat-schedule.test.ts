/**
 * Beat schedules against Celery 5.2's own numbers (test/fixtures/celery-5.2/beat/,
 * computed by Celery's classes, see capture_beat.py): crontab field expansion and
 * errors, next runs in UTC, interval is_due; and daylight-saving changes in
 * Europe/Berlin, where Celery 5.2 is an hour off and Celeriac must be right.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { crontab, every, isDue, fromObject } from '../packages/core/src/index.ts';
import { expandCrontabField, type CrontabFieldName } from '../packages/core/src/beat/crontab-field.ts';
import { resolveEntry } from '../packages/core/src/beat/entry.ts';
import { beatZone } from '../packages/core/src/beat/zone.ts';
import { fixture } from './helpers/fixtures.ts';

interface CelerySpec {
  minute: string;
  hour: string;
  day_of_week: string;
  day_of_month: string;
  month_of_year: string;
}
const fields = (s: CelerySpec) => ({ minute: s.minute, hour: s.hour, dayOfWeek: s.day_of_week, dayOfMonth: s.day_of_month, monthOfYear: s.month_of_year });
const iso = (ms: number) => new Date(ms).toISOString();
const utc = (text: string) => new Date(Date.parse(text)).toISOString();

/** `count` successive runs after `fromIso`, each computed from the previous one (Celery's `now == last run`). */
function runs(schedule: { nextRunAfter(last: number, zone: string): number | null }, fromIso: string, zone: string, count = 6): string[] {
  const out: string[] = [];
  let last = Date.parse(fromIso);
  for (let i = 0; i < count; i++) {
    const next = schedule.nextRunAfter(last, zone);
    assert.notEqual(next, null);
    out.push(iso(next!));
    last = next!;
  }
  return out;
}

test('crontab() expands every field as Celery 5.2 does, and refuses what Celery refuses', () => {
  const cases = fixture<{ crontab: { spec: CelerySpec; expanded?: Record<string, number[]>; error?: string }[] }>('beat/crontab_expansions.json').crontab;
  assert.ok(cases.length >= 15);
  for (const c of cases) {
    if (c.error) {
      assert.throws(() => crontab(fields(c.spec)), /crontab \w+ /, `Celery refuses ${JSON.stringify(c.spec)} (${c.error})`);
      continue;
    }
    const got = crontab(fields(c.spec));
    assert.deepEqual(
      { minute: got.minutes, hour: got.hours, day_of_week: got.daysOfWeek, day_of_month: got.daysOfMonth, month_of_year: got.monthsOfYear },
      c.expanded,
      JSON.stringify(c.spec),
    );
  }
});

test("single crontab fields as Celery's crontab_parser expands them (wrapping ranges, steps over wraps, names)", () => {
  const rows = fixture<{ crontab_parser: { text: string; max_: number; min_: number; result?: number[]; error?: string }[] }>('beat/crontab_expansions.json').crontab_parser;
  const fieldFor: Record<string, CrontabFieldName> = { '60/0': 'minute', '24/0': 'hour', '7/0': 'dayOfWeek', '31/1': 'dayOfMonth', '12/1': 'monthOfYear' };
  for (const r of rows) {
    const field = fieldFor[`${r.max_}/${r.min_}`]!;
    if (r.error) assert.throws(() => expandCrontabField(field, r.text), /crontab/, `${r.text}: ${r.error}`);
    else assert.deepEqual(expandCrontabField(field, r.text), r.result, r.text);
  }
});

test('crontab next runs in UTC equal Celery 5.2 for every captured row', () => {
  const rows = fixture<Record<string, { spec: CelerySpec; last_run_at: string; next_runs: string[] }[]>>('beat/crontab_next_runs.json').UTC!;
  assert.equal(rows.length, 56);
  for (const r of rows) assert.deepEqual(runs(crontab(fields(r.spec)), r.last_run_at, 'UTC'), r.next_runs.map(utc), `${JSON.stringify(r.spec)} after ${r.last_run_at}`);
});

test('interval is_due equals Celery 5.2 (due, seconds to next check; relative rounds down)', () => {
  const rows = fixture<{ rows: { run_every_s: number; relative: boolean; last_run_at: string; now: string; is_due: boolean; next_check_in_s: number }[] }>('beat/interval_is_due.json').rows;
  for (const r of rows) {
    const schedule = every({ seconds: r.run_every_s }, { relative: r.relative });
    const got = isDue(schedule, Date.parse(r.last_run_at), Date.parse(r.now), 'UTC');
    assert.deepEqual({ due: got.due, next: got.nextCheckMs! / 1000 }, { due: r.is_due, next: r.next_check_in_s }, JSON.stringify(r));
  }
});

test('intervals: { seconds }, { minutes }, milliseconds; first run one interval after the last', () => {
  const t0 = Date.parse('2024-01-01T00:00:00Z');
  assert.equal(every({ seconds: 30 }).nextRunAfter(t0, 'UTC'), t0 + 30_000);
  assert.equal(every({ minutes: 5 }).nextRunAfter(t0, 'UTC'), t0 + 300_000);
  assert.equal(every(250).nextRunAfter(t0, 'UTC'), t0 + 250);
  assert.equal(every({ hours: 1, minutes: 30 }).everyMs, 5_400_000);
});

test('Europe/Berlin spring forward (31 Mar 2024, 02:00 → 03:00): wall times stay right, a skipped time fires once at the jump', () => {
  const zone = 'Europe/Berlin';
  // Every 30 min: 01:30 CET, then the clocks jump to 03:00 CEST (one real half hour later), 03:30 CEST.
  assert.deepEqual(runs(crontab({ minute: '*/30' }), '2024-03-31T00:00:00Z', zone, 3), ['2024-03-31T00:30:00.000Z', '2024-03-31T01:00:00.000Z', '2024-03-31T01:30:00.000Z']);
  // 02:30 daily does not exist that day: it fires at 03:00 CEST, the day after at 02:30 CEST again.
  assert.deepEqual(runs(crontab({ minute: 30, hour: 2 }), '2024-03-30T12:00:00Z', zone, 3), ['2024-03-31T01:00:00.000Z', '2024-04-01T00:30:00.000Z', '2024-04-02T00:30:00.000Z']);
  // 09:00 Mon–Fri across the change: 09:00 local before (08:00Z) and after (07:00Z). Celery 5.2 says 10:00 local for the first Monday.
  assert.deepEqual(runs(crontab({ minute: 0, hour: 9, dayOfWeek: 'mon-fri' }), '2024-03-28T12:00:00Z', zone, 2), ['2024-03-29T08:00:00.000Z', '2024-04-01T07:00:00.000Z']);
  const celery = fixture<Record<string, { spec: CelerySpec; last_run_at: string; next_runs: string[] }[]>>('beat/crontab_next_runs.json')[zone]!;
  const row = celery.find((r) => r.spec.minute === '0,30' && r.spec.hour === '9-17' && r.last_run_at.startsWith('2024-03-30'))!;
  assert.equal(utc(row.next_runs[0]!), '2024-04-01T08:00:00.000Z', 'the fixture shows Celery 5.2 firing at 10:00 CEST');
  assert.equal(runs(crontab(fields(row.spec)), row.last_run_at, zone, 1)[0], '2024-04-01T07:00:00.000Z', 'Celeriac fires at 09:00 CEST');
});

test('Europe/Berlin fall back (27 Oct 2024, 03:00 → 02:00): a fixed time fires once, an hourly job every real interval', () => {
  const zone = 'Europe/Berlin';
  // 02:30 happens twice (00:30Z CEST, 01:30Z CET): a daily 02:30 job fires once, at the first.
  assert.deepEqual(runs(crontab({ minute: 30, hour: 2 }), '2024-10-26T12:00:00Z', zone, 2), ['2024-10-27T00:30:00.000Z', '2024-10-28T01:30:00.000Z']);
  // Every 30 minutes keeps firing every 30 real minutes through the repeated hour.
  assert.deepEqual(runs(crontab({ minute: '*/30' }), '2024-10-26T23:15:00Z', zone, 5), [
    '2024-10-26T23:30:00.000Z', // 01:30 CEST
    '2024-10-27T00:00:00.000Z', // 02:00 CEST
    '2024-10-27T00:30:00.000Z', // 02:30 CEST
    '2024-10-27T01:00:00.000Z', // 02:00 CET
    '2024-10-27T01:30:00.000Z', // 02:30 CET
  ]);
  // 09:00 Mon–Fri after the change is 08:00Z; the captured Celery 5.2 row fires at 08:00 local (07:00Z) instead.
  const celery = fixture<Record<string, { spec: CelerySpec; last_run_at: string; next_runs: string[] }[]>>('beat/crontab_next_runs.json')[zone]!;
  const row = celery.find((r) => r.spec.minute === '0,30' && r.spec.hour === '9-17' && r.last_run_at.startsWith('2024-10-26'))!;
  assert.equal(utc(row.next_runs[0]!), '2024-10-28T07:00:00.000Z', 'the fixture shows Celery 5.2 firing at 08:00 CET');
  assert.deepEqual(runs(crontab(fields(row.spec)), row.last_run_at, zone, 2), ['2024-10-28T08:00:00.000Z', '2024-10-28T08:30:00.000Z'], 'Celeriac fires at 09:00 and 09:30 CET');
});

test('Asia/Shanghai (UTC+8, no DST): crontab at local wall time', () => {
  assert.deepEqual(runs(crontab({ minute: 0, hour: 9 }), '2024-06-01T00:00:00Z', 'Asia/Shanghai', 2), ['2024-06-01T01:00:00.000Z', '2024-06-02T01:00:00.000Z']);
});

test('bad entries are refused naming the entry and the fix', () => {
  const bad: [string, Parameters<typeof resolveEntry>[1], RegExp][] = [
    ['step-zero', { task: 't', schedule: { minute: '*/0' } }, /beat entry "step-zero".*minute "\*\/0".*step of 0.*e\.g\./],
    ['minute-61', { task: 't', schedule: { minute: '61' } }, /beat entry "minute-61".*minute "61".*above the maximum 59.*e\.g\./],
    ['funday', { task: 't', schedule: { dayOfWeek: 'mon-funday' } }, /beat entry "funday".*dayOfWeek "mon-funday".*"funday" is not a weekday.*e\.g\./],
    ['zero', { task: 't', schedule: { seconds: 0 } }, /beat entry "zero".*interval must be positive.*\{ seconds: 30 \}/],
    ['negative', { task: 't', schedule: -5 }, /beat entry "negative".*interval must be positive/],
    ['no-task', { task: '', schedule: 1000 } as never, /beat entry "no-task" has no task name/],
    ['feb-30', { task: 't', schedule: { dayOfMonth: '30', monthOfYear: '2' } }, /beat entry "feb-30".*no month in monthOfYear "2" has day 30, so it would never run/],
  ];
  for (const [name, entry, message] of bad) assert.throws(() => resolveEntry(name, entry, 'config'), message, name);
  assert.throws(() => beatZone('Mars/Olympus_Mons', true), /timezone "Mars\/Olympus_Mons" is not a time zone.*IANA name such as 'Europe\/Berlin'/);
  assert.equal(beatZone(null, true), 'UTC');
  assert.equal(beatZone('Asia/Shanghai', true), 'Asia/Shanghai');
});

test("fromObject reads Celery's beat_schedule and CELERYBEAT_SCHEDULE (numbers are seconds, snake_case keys, crontab fields)", () => {
  const celery = {
    'add-every-2s': { task: 'tasks.add', schedule: 2.0, args: [1, 2] },
    kw_every_minute: { task: 'tasks.kw', schedule: { minute: '*' }, kwargs: { a: 'beat' }, options: { queue: 'lopri', priority: 3, expires: 30, routing_key: 'lopri' } },
  };
  for (const settings of [fromObject({ beat_schedule: celery }), fromObject({ CELERYBEAT_SCHEDULE: JSON.stringify(celery) }), fromObject({ CELERY_BEAT_SCHEDULE: JSON.stringify(celery) }, { namespace: 'CELERY' })]) {
    const entries = settings.beatSchedule!;
    assert.deepEqual(Object.keys(entries), ['add-every-2s', 'kw_every_minute'], 'entry names kept as written');
    const add = resolveEntry('add-every-2s', entries['add-every-2s']!, 'config');
    assert.equal(add.schedule.nextRunAfter(0, 'UTC'), 2000, 'a bare number is seconds, as in Celery');
    const kw = resolveEntry('kw_every_minute', entries.kw_every_minute!, 'config');
    assert.equal(kw.schedule.describe(), 'crontab(* * * * *)');
    assert.deepEqual(kw.options, { queue: 'lopri', priority: 3, expires: 30, routingKey: 'lopri' });
  }
  assert.throws(() => fromObject({ beat_schedule: { broken: { task: 't', schedule: { minute: '*/0' } } } }), /beat entry "broken".*step of 0/);
});
