/**
 * The beat service on a simulated clock, memory:// broker and the default file
 * store: what it sends over a simulated hour, what a restart does (no re-fire of
 * what ran; one catch-up run for what fell due while it was down — Celery's
 * policy), unregistered tasks listed once, start-up errors naming the fix.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { Beat, Celeriac, ConfigurationError, crontab, ManualClock, type Broker } from '../packages/core/src/index.ts';
import { idle, memoryLogger, simulateUntil } from './helpers/beat.ts';

const dir = mkdtempSync(join(tmpdir(), 'celeriac-beat-'));
after(() => rmSync(dir, { recursive: true, force: true }));
const T0 = Date.parse('2024-01-01T00:00:00Z');
const min = 60_000;

/** Task names of every message waiting in the memory broker's default queue (taken off it). */
async function drain(broker: Broker): Promise<string[]> {
  const consumer = await broker.openConsumer(['celery']);
  const names: string[] = [];
  for (;;) {
    const got = await consumer.reserve({ max: 1000, timeoutMs: 0 });
    if (got.length === 0) break;
    for (const d of got) names.push(d.message!.headers.task);
    await consumer.ack(got);
  }
  await consumer.close();
  return names;
}
const count = (names: string[]) => Object.fromEntries([...new Set(names)].sort().map((n) => [n, names.filter((x) => x === n).length]));

function makeApp(file: string, url: string) {
  const app = new Celeriac('beat-test', {
    brokerUrl: url,
    beatScheduleFilename: file,
    beatSchedule: {
      'ping-every-30s': { task: 'tasks.ping', schedule: { seconds: 30 }, args: [1, 2] },
    },
  });
  app.task('tasks.ping', (a: number, b: number) => a + b);
  app.beat.add('report-quarterly', { task: 'tasks.report', schedule: crontab({ minute: '*/15' }), kwargs: { kind: 'quarter' } });
  return app;
}

test('a simulated hour, then restarts: nothing re-fires, a run due while down is sent once', async () => {
  const file = join(dir, 'schedule.json');
  const url = 'memory://beat-restart';
  const clock = new ManualClock(T0);
  const { logger, lines } = memoryLogger();
  const app = makeApp(file, url);
  const broker = await app.getBroker();

  let beat = new Beat(app, { clock, logger });
  await beat.start();
  await simulateUntil([beat], clock, T0 + 60 * min);
  assert.deepEqual(count(await drain(broker)), { 'tasks.ping': 120, 'tasks.report': 4 }, '30 s interval: 120 runs; */15: 00:15, 00:30, 00:45, 01:00');
  assert.equal(lines.filter((l) => l.includes('not registered in this process')).length, 1, 'unregistered tasks are listed once');
  assert.match(lines.find((l) => l.includes('not registered'))!, /: tasks\.report$/, 'only the task this process lacks');
  assert.equal(lines.filter((l) => l.startsWith('Scheduler: Sending due task report-quarterly (tasks.report)')).length, 4);
  await beat.stop();
  const stored = JSON.parse(readFileSync(file, 'utf8')) as { zone: string; entries: Record<string, { lastRunAt: number; totalRunCount: number }> };
  assert.equal(stored.zone, 'UTC');
  assert.deepEqual(stored.entries['report-quarterly'], { lastRunAt: T0 + 60 * min, totalRunCount: 4 });
  assert.deepEqual(stored.entries['ping-every-30s'], { lastRunAt: T0 + 60 * min, totalRunCount: 120 });

  // Restart 10 s later: nothing is due again (the 01:00 runs happened).
  clock.set(T0 + 60 * min + 10_000);
  beat = new Beat(app, { clock, logger });
  await beat.start();
  await idle(beat, clock);
  assert.deepEqual(await drain(broker), [], 'a restart does not re-fire what already ran');
  await simulateUntil([beat], clock, T0 + 61 * min);
  assert.deepEqual(count(await drain(broker)), { 'tasks.ping': 2 }, '01:00:30 and 01:01:00, counted from the run before the restart');
  await beat.stop();

  // Down for two hours: each entry is sent once on start (not once per missed slot), then on schedule.
  clock.set(T0 + 183 * min + 5_000); // 03:03:05
  beat = new Beat(app, { clock, logger });
  await beat.start();
  await idle(beat, clock);
  assert.deepEqual(count(await drain(broker)), { 'tasks.ping': 1, 'tasks.report': 1 }, 'one catch-up run each');
  await simulateUntil([beat], clock, T0 + 195 * min); // to 03:15
  assert.deepEqual(count(await drain(broker)), { 'tasks.ping': 23, 'tasks.report': 1 }, 'ping every 30 s from the catch-up at 03:03:05; report at 03:15');
  await beat.stop();
  await app.close();
});

test('an entry sends its args, kwargs and options as an ordinary task message', async () => {
  const clock = new ManualClock(T0);
  const { logger } = memoryLogger();
  const app = new Celeriac('beat-msg', { brokerUrl: 'memory://beat-msg', beatScheduleFilename: join(dir, 'msg.json') });
  app.beat.add('kw', { task: 'tasks.kw', schedule: crontab(), kwargs: { a: 'beat' }, options: { queue: 'lopri', priority: 3, expires: 30 } });
  const broker = await app.getBroker();
  const beat = new Beat(app, { clock, logger });
  const startedAt = Date.now();
  await beat.start();
  await simulateUntil([beat], clock, T0 + min);
  await beat.stop();
  const consumer = await broker.openConsumer(['lopri']);
  const [delivery] = await consumer.reserve({ max: 10, timeoutMs: 0 });
  assert.ok(delivery?.message, 'sent to the lopri queue');
  const { headers, properties } = delivery.message;
  assert.equal(headers.task, 'tasks.kw');
  assert.equal(headers.kwargsrepr, "{'a': 'beat'}");
  assert.equal(properties.priority, 3);
  assert.ok(Date.parse(headers.expires!) >= startedAt + 30_000, 'expires 30 s after the (real) send time');
  await consumer.close();
  await app.close();
});

test('start-up refuses a bad zone or entry with the name and the fix', async () => {
  const zoneApp = new Celeriac('z', { brokerUrl: 'memory://z', timezone: 'Europe/Atlantis', beatScheduleFilename: join(dir, 'z.json') });
  await assert.rejects(new Beat(zoneApp).start(), (err: Error) => err instanceof ConfigurationError && /timezone "Europe\/Atlantis".*IANA name/.test(err.message));
  const entryApp = new Celeriac('e', { brokerUrl: 'memory://e', beatSchedule: { nightly: { task: 't', schedule: { minute: '*/0' } } }, beatScheduleFilename: join(dir, 'e.json') });
  await assert.rejects(new Beat(entryApp).start(), /beat entry "nightly": crontab minute "\*\/0": a step of 0/);
  const codeApp = new Celeriac('c', { brokerUrl: 'memory://c' });
  assert.throws(() => codeApp.beat.add('weekly', { task: 't', schedule: crontab({ dayOfWeek: 'mon-funday' }) }), /"funday" is not a weekday/);
  assert.throws(() => codeApp.beat.add('never', { task: 't', schedule: { seconds: -1 } }), /beat entry "never": an interval must be positive/);
});

test('crontab in the app time zone: Asia/Shanghai 09:00 is 01:00 UTC', async () => {
  const clock = new ManualClock(Date.parse('2024-06-01T00:00:00Z'));
  const { logger } = memoryLogger();
  const app = new Celeriac('sh', { brokerUrl: 'memory://sh', timezone: 'Asia/Shanghai', beatScheduleFilename: join(dir, 'sh.json') });
  app.beat.add('morning', { task: 'tasks.morning', schedule: crontab({ minute: 0, hour: 9 }) });
  const broker = await app.getBroker();
  const beat = new Beat(app, { clock, logger });
  await beat.start();
  await simulateUntil([beat], clock, Date.parse('2024-06-01T00:59:59Z'));
  assert.deepEqual(await drain(broker), []);
  await simulateUntil([beat], clock, Date.parse('2024-06-01T01:00:00Z'));
  assert.deepEqual(await drain(broker), ['tasks.morning']);
  await beat.stop();
  await app.close();
});

test('a send that fails is not recorded as a run: it is tried again and sent once', async () => {
  const clock = new ManualClock(T0);
  const { logger, lines } = memoryLogger();
  const file = join(dir, 'failing.json');
  const app = new Celeriac('beat-fail', { brokerUrl: 'memory://beat-fail', beatScheduleFilename: file });
  app.beat.add('hourly', { task: 'tasks.hourly', schedule: crontab({ minute: 0 }) });
  const broker = await app.getBroker();
  const send = app.sendTask.bind(app);
  let failures = 2;
  app.sendTask = ((...args: Parameters<typeof send>) => {
    if (failures-- > 0) return Promise.reject(new Error('broker away'));
    return send(...args);
  }) as typeof app.sendTask;
  const beat = new Beat(app, { clock, logger });
  await beat.start();
  await simulateUntil([beat], clock, T0 + 60 * min); // due at 01:00: fails twice, retried every 5 s
  assert.deepEqual(await drain(broker), []);
  assert.equal(lines.filter((l) => l.startsWith('Scheduler: could not send hourly (tasks.hourly): broker away')).length, 1);
  await simulateUntil([beat], clock, T0 + 60 * min + 10_000);
  assert.deepEqual(await drain(broker), ['tasks.hourly'], 'sent once, 10 s late, after two failed attempts');
  await beat.stop();
  const stored = JSON.parse(readFileSync(file, 'utf8')) as { entries: Record<string, { lastRunAt: number; totalRunCount: number }> };
  assert.deepEqual(stored.entries.hourly, { lastRunAt: T0 + 60 * min + 10_000, totalRunCount: 1 });
  await app.close();
});
