/**
 * Beat on a real redis-server: two beats on one broker elect one leader, and over a
 * simulated hour (with the leader killed half-way) every firing is sent exactly
 * once; runs are claimed by a compare-and-set fenced by the lock; last runs
 * survive restarts in Redis; the dynamic schedule is picked up without restart.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { Redis } from 'ioredis';
import { Beat, Celeriac, crontab, fromObject, ManualClock } from '../packages/core/src/index.ts';
import { fixture } from './helpers/fixtures.ts';
import { RedisStateStore } from '../packages/core/src/beat/redis-state-store.ts';
import { BEAT_KEYS } from '../packages/core/src/beat/redis-beat-keys.ts';
import { idle, memoryLogger, simulateUntil, waitFor } from './helpers/beat.ts';
import { missing, REDIS_SERVER, startRedis, type RedisServer } from './helpers/services.ts';

const skip = missing(REDIS_SERVER, 'apt-get install redis-server');
const T0 = Date.parse('2024-03-01T00:00:00Z');
const min = 60_000;

/** Task names of the messages in a Redis queue list, oldest first, and empty the list. */
async function drain(raw: Redis, queue = 'celery'): Promise<string[]> {
  const [[, items]] = (await raw.multi().lrange(queue, 0, -1).del(queue).exec()) as [[null, string[]], unknown];
  return items.reverse().map((envelope) => (JSON.parse(envelope) as { headers: { task: string } }).headers.task);
}
const count = (names: string[]) => Object.fromEntries([...new Set(names)].sort().map((n) => [n, names.filter((x) => x === n).length]));

describe('beat on Redis', { skip: skip ?? false }, () => {
  let server: RedisServer;
  let raw: Redis;
  before(async () => {
    server = await startRedis();
    raw = new Redis(server.url(0));
  });
  after(async () => {
    raw?.disconnect();
    await server?.stop();
  });

  const makeApp = (db: number) => {
    const app = new Celeriac('beat-redis', {
      brokerUrl: server.url(db),
      beatSchedule: {
        'every-minute': { task: 'tasks.minute', schedule: crontab() },
        'every-20s': { task: 'tasks.twenty', schedule: { seconds: 20 } },
      },
    });
    return app;
  };

  test('two beats, one simulated hour, leader killed half-way: each firing sent exactly once', async () => {
    await raw.flushall();
    const clock = new ManualClock(T0);
    const a = { app: makeApp(0), log: memoryLogger() };
    const b = { app: makeApp(0), log: memoryLogger() };
    const beatA = new Beat(a.app, { clock, logger: a.log.logger, lockTtl: 2 });
    const beatB = new Beat(b.app, { clock, logger: b.log.logger, lockTtl: 2 });
    await beatA.start();
    await beatB.start();
    await waitFor(() => beatA.isLeader || beatB.isLeader, 5000, 'a leader');
    assert.equal(beatA.isLeader && beatB.isLeader, false, 'one leader only');
    const first = beatA.isLeader ? beatA : beatB;
    const second = first === beatA ? beatB : beatA;
    assert.equal(await raw.pttl(BEAT_KEYS.lock) > 0, true, 'the lock has a TTL');

    await simulateUntil([first, second], clock, T0 + 30 * min);
    await first.kill(); // as kill -9: the lock is not released, it expires
    const killedAt = Date.now();
    await waitFor(() => second.isLeader, 5000, 'the standby takes over');
    const takeoverMs = Date.now() - killedAt;
    await simulateUntil([second], clock, T0 + 60 * min);

    assert.deepEqual(count(await drain(raw)), { 'tasks.minute': 60, 'tasks.twenty': 180 }, 'no firing lost, none twice, across the takeover');
    assert.equal(first.sent + second.sent, 240);
    assert.ok(first.sent > 0 && second.sent > 0, 'both led in turn');
    const state = await raw.hgetall(BEAT_KEYS.state);
    assert.deepEqual(JSON.parse(state['every-minute']!), { lastRunAt: T0 + 60 * min, totalRunCount: 60 });
    console.log(`# takeover after kill: ${takeoverMs} ms (lock TTL 2000 ms)`);
    await second.stop();
    assert.equal(await raw.exists(BEAT_KEYS.lock), 0, 'a clean stop releases the lock');
    await a.app.close();
    await b.app.close();
  });

  test('a non-Redis broker with a Redis result backend: beats elect a leader and keep last runs in the backend', async () => {
    await raw.flushall();
    const clock = new ManualClock(T0);
    const make = () =>
      new Celeriac('beat-backend', {
        brokerUrl: 'memory://beat-backend',
        resultBackend: server.url(3),
        beatSchedule: { 'every-minute': { task: 'tasks.minute', schedule: crontab() } },
      });
    const [appA, appB] = [make(), make()];
    const beats = [new Beat(appA, { clock, logger: memoryLogger().logger, lockTtl: 1 }), new Beat(appB, { clock, logger: memoryLogger().logger, lockTtl: 1 })];
    await Promise.all(beats.map((b) => b.start()));
    await waitFor(() => beats.some((b) => b.isLeader), 5000, 'a leader');
    assert.equal(beats.filter((b) => b.isLeader).length, 1, 'one leader');
    await simulateUntil(beats, clock, T0 + 10 * min);
    assert.equal(beats[0]!.sent + beats[1]!.sent, 10);
    const backend = new Redis(server.url(3));
    assert.equal(JSON.parse((await backend.hget(BEAT_KEYS.state, 'every-minute'))!).totalRunCount, 10, 'last runs in the result backend db');
    backend.disconnect();
    await Promise.all(beats.map((b) => b.stop()));
    await appA.close();
    await appB.close();
  });

  test("Celery's captured beat_schedule, read with fromObject, sends what Celery 5.2's beat LPUSHed (beat_sent_messages, argsrepr '[1, 2]' included)", async () => {
    await raw.flushall();
    interface Envelope {
      headers: Record<string, unknown>;
      properties: Record<string, unknown> & { delivery_info: unknown; priority: number; expiration?: string };
      body: string;
    }
    const captured = fixture<{ beat_schedule: Record<string, Record<string, unknown>>; redis_commands: { cmd: string[] }[] }>('beat/beat_sent_messages.json');
    // The capture records the crontab as its repr, "crontab()": give it as Celery's fields.
    const celerySchedule = Object.fromEntries(Object.entries(captured.beat_schedule).map(([name, e]) => [name, e.schedule === 'crontab()' ? { ...e, schedule: { minute: '*' } } : e]));
    const clock = new ManualClock(T0);
    const app = new Celeriac('beat-wire', { brokerUrl: server.url(0), ...fromObject({ beat_schedule: celerySchedule }) });
    const beat = new Beat(app, { clock, logger: memoryLogger().logger, lockTtl: 2 });
    const startedAt = Date.now();
    await beat.start();
    await simulateUntil([beat], clock, T0 + min);
    await beat.stop();
    await app.close();
    const theirs = new Map<string, Envelope>(captured.redis_commands.map((c) => [c.cmd[1]!, JSON.parse(c.cmd[2]!) as Envelope]));
    for (const [list, celery] of theirs) {
      const ours = (await raw.lrange(list, 0, -1)).map((e) => JSON.parse(e) as Envelope);
      assert.equal(ours.length, list === 'celery' ? 30 : 1, `${JSON.stringify(list)}: every 2 s for a minute, or once at 00:01`);
      const mine = ours[0]!;
      assert.deepEqual(Object.keys(mine.headers).sort(), Object.keys(celery.headers).sort(), 'the same headers');
      assert.deepEqual(Object.keys(mine.properties).sort(), Object.keys(celery.properties).sort(), 'the same properties (expiration too)');
      for (const key of ['lang', 'task', 'shadow', 'eta', 'group', 'group_index', 'retries', 'timelimit', 'parent_id', 'argsrepr', 'kwargsrepr', 'ignore_result']) {
        assert.deepEqual(mine.headers[key], celery.headers[key], `header ${key}`);
      }
      assert.deepEqual([mine.properties.delivery_info, mine.properties.priority], [celery.properties.delivery_info, celery.properties.priority]);
      if (celery.properties.expiration !== undefined) {
        // Milliseconds left until `expires` at publish time: "30000" in the capture, less when the clock ticks in between.
        assert.match(mine.properties.expiration!, /^\d+$/);
        assert.ok(Number(mine.properties.expiration) <= 30_000 && Number(mine.properties.expiration) > 0, `expiration ${mine.properties.expiration}`);
      }
      assert.deepEqual(JSON.parse(Buffer.from(mine.body, 'base64').toString()), JSON.parse(Buffer.from(celery.body, 'base64').toString()), 'the same body');
      if (celery.headers.expires) assert.ok(Date.parse(String(mine.headers.expires)) >= startedAt + 30_000, 'expires 30 s after the send');
    }
  });

  test('runs are claimed by compare-and-set fenced by the leader lock', async () => {
    await raw.flushall();
    const store = new RedisStateStore(raw, 'test');
    const zero = { lastRunAt: 0, totalRunCount: 0 };
    const one = { lastRunAt: 1000, totalRunCount: 1 };
    await store.init('x', zero);
    await raw.set(BEAT_KEYS.lock, 'me');
    assert.equal(await store.claim('x', zero, one, { key: BEAT_KEYS.lock, owner: 'someone-else' }), 'not-leader', 'a beat without the lock cannot record a run');
    assert.equal(await store.claim('x', zero, one, { key: BEAT_KEYS.lock, owner: 'me' }), 'claimed');
    assert.equal(await store.claim('x', zero, one, { key: BEAT_KEYS.lock, owner: 'me' }), 'taken', 'the same due run cannot be claimed twice');
    await store.unclaim('x', one, zero);
    assert.deepEqual((await store.load()).get('x'), zero, 'a failed send puts the previous run back');
    await raw.hset(BEAT_KEYS.state, 'x', '{"totalRunCount": 0, "lastRunAt": 0}');
    assert.equal(await store.claim('x', zero, one), 'claimed', 'records are compared by value, not by their JSON text');
    await raw.hset(BEAT_KEYS.state, 'y', 'not json');
    assert.equal(await store.claim('y', zero, one), 'claimed', 'an unreadable record is replaced instead of blocking the entry');
  });

  test('last runs live in Redis: a restarted beat neither re-fires nor forgets', async () => {
    await raw.flushall();
    const clock = new ManualClock(T0);
    const app = makeApp(0);
    let beat = new Beat(app, { clock, logger: memoryLogger().logger, lockTtl: 1 });
    await beat.start();
    await simulateUntil([beat], clock, T0 + 2 * min);
    await beat.stop();
    assert.deepEqual(count(await drain(raw)), { 'tasks.minute': 2, 'tasks.twenty': 6 });
    clock.set(T0 + 2 * min + 1000);
    beat = new Beat(app, { clock, logger: memoryLogger().logger, lockTtl: 1 });
    await beat.start();
    await waitFor(() => beat.isLeader, 5000, 'leader');
    await idle(beat, clock);
    assert.deepEqual(await drain(raw), [], 'nothing re-fired');
    await beat.stop();
    clock.set(T0 + 10 * min + 1000);
    beat = new Beat(app, { clock, logger: memoryLogger().logger, lockTtl: 1 });
    await beat.start();
    await waitFor(() => beat.isLeader, 5000, 'leader');
    await idle(beat, clock);
    assert.deepEqual(count(await drain(raw)), { 'tasks.minute': 1, 'tasks.twenty': 1 }, 'one catch-up run each after 8 minutes down');
    await beat.stop();
    await app.close();
  });

  test('dynamic entries: added, updated, disabled and removed while beat runs, picked up without restart', async () => {
    await raw.flushall();
    const clock = new ManualClock(T0);
    const app = new Celeriac('dyn', { brokerUrl: server.url(0) });
    const beat = new Beat(app, { clock, logger: memoryLogger().logger, lockTtl: 1 });
    await beat.start();
    await waitFor(() => beat.isLeader, 5000, 'leader');
    await idle(beat, clock);
    assert.equal(beat.sleepingUntil, T0 + 300_000, 'no entries: sleeps the max interval');

    const admin = new Celeriac('admin', { brokerUrl: server.url(0) });
    await admin.beat.dynamic.add('dyn-10s', { task: 'tasks.dyn', schedule: { seconds: 10 }, args: [7] });
    await waitFor(() => beat.entries.some((e) => e.name === 'dyn-10s'), 5000, 'the new entry is seen');
    await idle(beat, clock);
    assert.equal(beat.sleepingUntil, T0 + 10_000, 'woken by the change, sleeping until the new entry is due');
    await simulateUntil([beat], clock, T0 + min);
    assert.deepEqual(count(await drain(raw)), { 'tasks.dyn': 6 });

    await admin.beat.dynamic.update('dyn-10s', { schedule: { seconds: 30 } });
    await waitFor(() => beat.entries.find((e) => e.name === 'dyn-10s')?.schedule.describe() === 'every 30s', 5000, 'the update is seen');
    await simulateUntil([beat], clock, T0 + 2 * min);
    assert.deepEqual(count(await drain(raw)), { 'tasks.dyn': 2 });

    await admin.beat.dynamic.disable('dyn-10s');
    await waitFor(() => beat.entries.find((e) => e.name === 'dyn-10s')?.enabled === false, 5000, 'disabled');
    await simulateUntil([beat], clock, T0 + 4 * min);
    assert.deepEqual(await drain(raw), [], 'a disabled entry is not sent');
    const listed = await admin.beat.dynamic.list();
    assert.deepEqual(listed.map((l) => [l.name, l.entry.enabled, l.entry.schedule]), [['dyn-10s', false, { interval: 30_000 }]]);

    assert.equal(await admin.beat.dynamic.remove('dyn-10s'), true);
    await waitFor(() => beat.entries.length === 0, 5000, 'removed');
    assert.equal(await raw.hexists(BEAT_KEYS.state, 'dyn-10s'), 0, 'its run record goes too');
    await assert.rejects(admin.beat.dynamic.add('bad', { task: 't', schedule: { minute: '61' } }), /beat entry "bad": crontab minute "61"/);

    // A pass under way when the entry was removed claims its next run after the removal
    // deleted the record, writing it back (seen in CI: beat-cli "its last run is removed
    // too"). Replayed by hand: remove without the notice, write the record back, then notify.
    await admin.beat.dynamic.add('dyn-race', { task: 'tasks.dyn', schedule: { seconds: 10 } });
    await waitFor(() => beat.entries.some((e) => e.name === 'dyn-race'), 5000, 'the race entry is seen');
    const record = (await raw.hget(BEAT_KEYS.state, 'dyn-race')) ?? JSON.stringify({ lastRunAt: T0, totalRunCount: 1 });
    await raw.multi().hdel(BEAT_KEYS.entries, 'dyn-race').hdel(BEAT_KEYS.state, 'dyn-race').exec();
    await raw.hset(BEAT_KEYS.state, 'dyn-race', record);
    await raw.publish(BEAT_KEYS.changed, 'dyn-race');
    await waitFor(() => beat.entries.length === 0, 5000, 'the race entry removed');
    assert.equal(await raw.hexists(BEAT_KEYS.state, 'dyn-race'), 0, 'a record written back after the removal is deleted by the next pass');
    await beat.stop();
    await app.close();
    await admin.close();
  });
});
