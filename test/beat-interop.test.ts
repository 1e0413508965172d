/**
 * Beat against Python Celery 5.2:
 * - the same entries run through Celery's own beat Scheduler (test/python/
 *   beat_firing_times.py, simulated clock) and through Celeriac's Beat (ManualClock)
 *   over a simulated day fire at the same instants, in UTC and in Asia/Shanghai;
 * - in Europe/Berlin and America/New_York, the captured Celery 5.2 next runs
 *   (fixtures) are compared with Celeriac's: where they differ (Celery is an hour
 *   off around DST changes), Celeriac must equal an independent brute-force
 *   computation with Python's zoneinfo (test/python/crontab_oracle.py);
 * - entries naming Python-only tasks are run by a real Python Celery 5.2 worker.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { Redis } from 'ioredis';
import { Beat, Celeriac, crontab, every, ManualClock, type BeatEntry } from '../packages/core/src/index.ts';
import { fixture } from './helpers/fixtures.ts';
import { memoryLogger, simulateUntil } from './helpers/beat.ts';
import { interopEnv, PY_DIR, pythonCeleryMissing, startPythonWorker, type PeerProcess } from './helpers/python-celery.ts';
import { missing, REDIS_SERVER, startRedis, SYSTEM_PYTHON, type RedisServer } from './helpers/services.ts';

const skipPython = pythonCeleryMissing();
const skipRedis = missing(REDIS_SERVER, 'apt-get install redis-server');

interface CelerySpec {
  minute: string;
  hour: string;
  day_of_week: string;
  day_of_month: string;
  month_of_year: string;
}
interface NextRunRow {
  spec: CelerySpec;
  last_run_at: string;
  next_runs: string[];
}
const NEXT_RUNS = fixture<Record<string, NextRunRow[]>>('beat/crontab_next_runs.json');
const fields = (s: CelerySpec) => ({ minute: s.minute, hour: s.hour, dayOfWeek: s.day_of_week, dayOfMonth: s.day_of_month, monthOfYear: s.month_of_year });
const utc = (text: string) => new Date(Date.parse(text)).toISOString();

function python<T>(script: string, input: unknown): T {
  const run = spawnSync(SYSTEM_PYTHON, [join(PY_DIR, script), JSON.stringify(input)], { cwd: PY_DIR, encoding: 'utf8', timeout: 120_000, env: { ...process.env, PYTHONDONTWRITEBYTECODE: '1' } });
  assert.equal(run.status, 0, `${script} failed: ${run.stderr}`);
  return JSON.parse(run.stdout) as T;
}

/** Every distinct crontab of the captures, plus intervals (one relative). */
function dayEntries(): { celery: Record<string, unknown>; ours: Record<string, BeatEntry> } {
  const specs = [...new Map(NEXT_RUNS.UTC!.map((r) => [JSON.stringify(r.spec), r.spec])).values()].filter((s) => s.minute !== '*');
  const celery: Record<string, unknown> = {};
  const ours: Record<string, BeatEntry> = {};
  specs.forEach((s, i) => {
    const name = `cron-${i}-${s.minute} ${s.hour} ${s.day_of_month} ${s.month_of_year} ${s.day_of_week}`;
    celery[name] = { crontab: s };
    ours[name] = { task: `cmp.${name}`, schedule: crontab(fields(s)) };
  });
  celery['every-7m'] = { interval: 420 };
  ours['every-7m'] = { task: 'cmp.every-7m', schedule: every({ minutes: 7 }) };
  celery['every-50m-relative'] = { interval: 3000, relative: true };
  ours['every-50m-relative'] = { task: 'cmp.every-50m-relative', schedule: every({ minutes: 50 }, { relative: true }) };
  return { celery, ours };
}

/** Celeriac's Beat over [start, end] on a ManualClock: [entry name, fire time] in order. */
async function celeriacFiring(zone: string, entries: Record<string, BeatEntry>, start: number, end: number): Promise<[string, string][]> {
  const clock = new ManualClock(start);
  const app = new Celeriac('cmp', { brokerUrl: `memory://cmp-${zone}`, timezone: zone });
  for (const [name, entry] of Object.entries(entries)) app.beat.add(name, entry);
  const fired: [string, string][] = [];
  const send = app.sendTask.bind(app);
  app.sendTask = ((name: string, ...rest: Parameters<typeof send> extends [string, ...infer R] ? R : never) => {
    fired.push([name.slice('cmp.'.length), new Date(clock.now()).toISOString()]);
    return send(name, ...rest);
  }) as typeof app.sendTask;
  const beat = new Beat(app, { clock, logger: memoryLogger('warn').logger, store: memoryStore() });
  await beat.start();
  await simulateUntil([beat], clock, end);
  await beat.stop();
  await app.close();
  return fired;
}

/** A last-run store in memory (the comparison needs no file). */
function memoryStore() {
  const records = new Map<string, { lastRunAt: number; totalRunCount: number }>();
  return {
    description: 'memory',
    load: async () => new Map(records),
    init: async (name: string, r: { lastRunAt: number; totalRunCount: number }) => records.get(name) ?? (records.set(name, r), r),
    claim: async (name: string, _prev: unknown, next: { lastRunAt: number; totalRunCount: number }) => (records.set(name, next), 'claimed' as const),
    unclaim: async () => undefined,
    close: async () => undefined,
  };
}

describe('beat compared with Python Celery 5.2', { skip: skipPython ?? false }, () => {
  for (const [zone, startIso, endIso] of [
    ['UTC', '2024-02-28T23:59:00Z', '2024-03-01T00:01:00Z'],
    ['Asia/Shanghai', '2024-02-28T15:59:00Z', '2024-02-29T16:01:00Z'], // 23:59 on 28 Feb to 00:01 on 1 Mar, Shanghai time
  ] as const) {
    test(`a simulated day in ${zone}: the same firing instants as Celery's own beat Scheduler`, async () => {
      const { celery, ours } = dayEntries();
      const py = python<{ celery: string; fired: [string, string][] }>('beat_firing_times.py', { zone, start: startIso, end: endIso, entries: celery });
      assert.equal(py.celery, '5.2.6');
      // Both simulations stop when the clock reaches `end`; compare what fired before it.
      const before = (fired: [string, string][]) => fired.filter((f) => Date.parse(f[1]) < Date.parse(endIso));
      const mine = before(await celeriacFiring(zone, ours, Date.parse(startIso), Date.parse(endIso)));
      const theirs = before(py.fired);
      const sortKey = (a: [string, string], b: [string, string]) => a[1].localeCompare(b[1]) || a[0].localeCompare(b[0]);
      assert.ok(theirs.length > 300, `Celery fired ${theirs.length} times`);
      assert.deepEqual([...mine].sort(sortKey), [...theirs].sort(sortKey));
      const perEntry = Object.fromEntries(Object.keys(ours).map((n) => [n, mine.filter((f) => f[0] === n).length]));
      console.log(`# ${zone}: ${mine.length} firings equal to Celery 5.2.6's over ${startIso} → ${endIso}: ${JSON.stringify(perEntry)}`);
    });
  }

  test('Europe/Berlin and America/New_York: where Celery 5.2 is off, Celeriac equals a brute-force zoneinfo computation', () => {
    for (const zone of ['Europe/Berlin', 'America/New_York']) {
      const rows = NEXT_RUNS[zone]!;
      const ours = rows.map((r) => {
        const c = crontab(fields(r.spec));
        const out: string[] = [];
        let last = Date.parse(r.last_run_at);
        for (let i = 0; i < r.next_runs.length; i++) out.push(new Date((last = c.nextRunAfter(last, zone)!)).toISOString());
        return { c, out };
      });
      const oracle = python<string[][]>('crontab_oracle.py', {
        zone,
        rows: rows.map((r, i) => {
          const c = ours[i]!.c;
          return { fields: { minute: c.minutes, hour: c.hours, dow: c.daysOfWeek, dom: c.daysOfMonth, month: c.monthsOfYear }, after: utc(r.last_run_at), count: r.next_runs.length };
        }),
      });
      let same = 0;
      let differ = 0;
      rows.forEach((r, i) => {
        assert.deepEqual(ours[i]!.out, oracle[i], `${zone} ${JSON.stringify(r.spec)} after ${r.last_run_at}`);
        if (JSON.stringify(ours[i]!.out) === JSON.stringify(r.next_runs.map(utc))) same++;
        else differ++;
      });
      assert.ok(differ > 0, 'the captured Celery rows do contain its DST mistakes');
      console.log(`# ${zone}: ${rows.length} captured rows; Celeriac equals Celery 5.2 in ${same}, differs in ${differ} (all ${rows.length} equal the zoneinfo brute force)`);
    }
  });
});

describe('beat entries run by a Python Celery 5.2 worker', { skip: skipPython ?? skipRedis ?? false }, () => {
  let server: RedisServer;
  let worker: PeerProcess | undefined;
  let records: Redis;
  before(async () => {
    server = await startRedis();
    worker = await startPythonWorker({ env: interopEnv(server) });
    records = new Redis(server.url(2));
  });
  after(async () => {
    records?.disconnect();
    await worker?.stop();
    await server?.stop();
  });

  test('a simulated hour of Python-only tasks: each run executed once by the Python worker, results stored', async () => {
    const env = interopEnv(server);
    const clock = new ManualClock(Date.parse('2024-05-01T08:00:00Z'));
    const { logger, lines } = memoryLogger();
    const app = new Celeriac('beat-py', { brokerUrl: env.INTEROP_BROKER_URL, resultBackend: env.INTEROP_BACKEND_URL, timezone: 'Asia/Shanghai' });
    app.beat.add('who-quarterly', { task: 'mixed.who', schedule: crontab({ minute: '*/15' }), args: ['quarter'] });
    app.beat.add('who-every-20m', { task: 'mixed.who', schedule: { minutes: 20 }, args: ['twenty'] });
    app.beat.add('mul-at-5pm-shanghai', { task: 'tasks.mul', schedule: crontab({ minute: 0, hour: 17 }), args: [6, 7] });
    const beat = new Beat(app, { clock, logger, lockTtl: 5 });
    await beat.start();
    assert.ok(lines.some((l) => /not registered in this process.*: mixed\.who, tasks\.mul$/.test(l)), 'the Python-only tasks are listed once at start-up');
    await simulateUntil([beat], clock, Date.parse('2024-05-01T09:00:00Z')); // 16:00 → 17:00 Shanghai
    await beat.stop();
    const deadline = Date.now() + 20_000;
    while ((await records.llen('interop:executions')) < 7 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    const executed = (await records.lrange('interop:executions', 0, -1)).sort();
    assert.deepEqual(executed, ['py:quarter', 'py:quarter', 'py:quarter', 'py:quarter', 'py:twenty', 'py:twenty', 'py:twenty']);
    const backend = new Redis(env.INTEROP_BACKEND_URL);
    const keys = await backend.keys('celery-task-meta-*');
    const docs = (await Promise.all(keys.map((k) => backend.get(k)))).map((t) => JSON.parse(t!) as { status: string; result: unknown });
    backend.disconnect();
    assert.equal(docs.length, 8, '7 mixed.who + 1 tasks.mul');
    assert.ok(docs.every((d) => d.status === 'SUCCESS'));
    assert.ok(docs.some((d) => d.result === 42), 'tasks.mul(6, 7) at 17:00 Shanghai ran on the Python worker');
    await app.close();
  });
});
