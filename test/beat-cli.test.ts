/**
 * `celeriac beat` and `celeriac worker -B` as real processes: the example under
 * examples/periodic runs from the CLI (embedded beat on memory://; beat and a
 * worker as two processes on Redis); two beat processes on one Redis, the leader
 * killed with SIGKILL and the standby taking over; `beat add | list | remove`
 * changing a running beat without restart; start-up errors naming the fix.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, existsSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { Redis } from 'ioredis';
import { BEAT_KEYS } from '../packages/core/src/beat/redis-beat-keys.ts';
import { startCli, type CliProcess, type CliRun } from './helpers/cli.ts';
import { missing, REDIS_SERVER, startRedis, type RedisServer } from './helpers/services.ts';
import { waitFor } from './helpers/worker-process.ts';

const skip = missing(REDIS_SERVER, 'apt-get install redis-server');
const dir = mkdtempSync(join(tmpdir(), 'celeriac-beat-cli-'));
const running: CliProcess[] = [];
after(async () => {
  await Promise.all(running.map((p) => p.stop()));
  rmSync(dir, { recursive: true, force: true });
});
/** The built `celeriac` (the examples import the built @celeriac/core, as a user's app does). */
const BIN = [process.execPath, 'packages/core/bin/celeriac.js'];
const start = (args: string[], env: Record<string, string> = {}) => {
  const p = startCli(args, env, BIN);
  running.push(p);
  return p;
};
/** Run the built `celeriac` to completion. */
async function runCli(args: string[], env: Record<string, string> = {}): Promise<CliRun> {
  const p = startCli(args, env, BIN);
  const code = await new Promise<number | null>((resolve) => (p.child.exitCode !== null ? resolve(p.child.exitCode) : p.child.once('exit', resolve)));
  return { code, stdout: p.stdout(), stderr: p.stderr() };
}
const lines = (file: string) => (existsSync(file) ? readFileSync(file, 'utf8').trim().split('\n').filter(Boolean) : []);

test('examples/periodic: celeriac worker -B runs the periodic task in one process (memory://)', async () => {
  const log = join(dir, 'embedded.log');
  const worker = start(['worker', '-B', '-A', 'examples/periodic/tasks.mjs', '-s', join(dir, 'embedded.json'), '--log-format', 'json'], { PERIODIC_LOG: log });
  await worker.waitFor(/ready\./);
  await waitFor(() => lines(log).length >= 2, 15_000, 'two heartbeats run by the worker');
  assert.match(lines(log)[0]!, /^heartbeat from beat at /);
  assert.match(worker.stderr(), /Scheduler: Sending due task heartbeat \(periodic\.heartbeat\)/);
  await worker.stop();
  assert.equal(worker.child.exitCode, 0);
  const stored = JSON.parse(readFileSync(join(dir, 'embedded.json'), 'utf8')) as { zone: string; entries: Record<string, { totalRunCount: number }> };
  assert.equal(stored.zone, 'Europe/Berlin');
  assert.ok(stored.entries.heartbeat!.totalRunCount >= 2, 'runs recorded in the --schedule file');
});

describe('beat processes on Redis', { skip: skip ?? false }, () => {
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

  test('two beat processes: one leads; kill -9 the leader and the other takes over within the lock TTL', async () => {
    await raw.flushall();
    const env = { CELERIAC_BROKER_URL: server.url(0), CELERIAC_TEST_BEAT_TTL: '2' };
    const both = [start(['beat', '-A', 'test/apps/beat-app.mjs', '--log-format', 'json'], env), start(['beat', '-A', 'test/apps/beat-app.mjs', '--log-format', 'json'], env)];
    await Promise.all(both.map((p) => p.waitFor(/beat: Starting/)));
    await waitFor(async () => (await raw.get(BEAT_KEYS.lock)) !== null, 10_000, 'a leader');
    const leaderPid = Number((await raw.get(BEAT_KEYS.lock))!.split(':').at(-2));
    const a = both.find((p) => p.child.pid === leaderPid)!;
    const b = both.find((p) => p !== a)!;
    await a.waitFor(/beat: leader now/);
    await waitFor(async () => (await raw.llen('celery')) >= 2, 10_000, 'the leader sends');
    assert.doesNotMatch(b.stderr(), /leader now|Sending due task/, 'the standby sends nothing');
    assert.match((await raw.get(BEAT_KEYS.lock))!, new RegExp(`:${a.child.pid}:`), 'the lock names the leader');

    process.kill(a.child.pid!, 'SIGKILL');
    const killedAt = Date.now();
    await b.waitFor(/beat: leader now/, 10_000);
    const takeoverMs = Date.now() - killedAt;
    console.log(`# takeover after SIGKILL: ${takeoverMs} ms (lock TTL 2000 ms)`);
    assert.match((await raw.get(BEAT_KEYS.lock))!, new RegExp(`:${b.child.pid}:`), 'the standby holds the lock');
    const before = await raw.llen('celery');
    await waitFor(async () => (await raw.llen('celery')) >= before + 2, 10_000, 'the new leader sends');
    await b.stop();
    const state = JSON.parse((await raw.hget(BEAT_KEYS.state, 'tick-every-second'))!) as { totalRunCount: number };
    const sent = await raw.llen('celery');
    // A run is recorded just before it is sent: a SIGKILL between the two loses that one run (as in Celery), never doubles it.
    assert.ok(sent <= state.totalRunCount && state.totalRunCount <= sent + 1, `one message per recorded run (${sent} sent, ${state.totalRunCount} recorded): nothing sent twice`);
  });

  test('examples/periodic: beat and a worker as two processes; beat add | list | remove change the running beat', async () => {
    await raw.flushall();
    const log = join(dir, 'two-process.log');
    const env = { CELERIAC_BROKER_URL: server.url(0), PERIODIC_LOG: log };
    const beat = start(['beat', '-A', 'examples/periodic/tasks.mjs', '-l', 'info', '--max-interval', '5', '--log-format', 'json'], env);
    const worker = start(['worker', '-A', 'examples/periodic/tasks.mjs', '-c', '2'], env);
    await beat.waitFor(/beat: leader now/);
    assert.match(beat.stdout(), /celeriac beat v.* is starting[\s\S]*timezone -> Europe\/Berlin[\s\S]*heartbeat: periodic\.heartbeat every 2s/);
    await waitFor(() => lines(log).length >= 2, 20_000, 'heartbeats sent by beat, run by the worker');
    assert.ok(JSON.parse((await raw.hget(BEAT_KEYS.state, 'heartbeat'))!).totalRunCount >= 2, 'last runs kept in Redis');

    const added = await runCli(['beat', 'add', 'dyn-tick', '--task', 'dyn.tick', '--every', '1s', '-a', '[1, 2]', '-Q', 'dynq'], env);
    assert.equal(added.code, 0, added.stderr);
    await beat.waitFor(/Sending due task dyn-tick \(dyn\.tick\)/, 10_000);
    assert.match(beat.stderr(), /schedule changed: added dyn-tick/);
    assert.match(beat.stderr(), /not registered in this process.*dyn\.tick/);
    const listed = await runCli(['beat', 'list', '--json', '-A', 'examples/periodic/tasks.mjs'], env);
    const rows = JSON.parse(listed.stdout) as { name: string; source: string; schedule: string; runs?: number }[];
    assert.deepEqual(rows.map((r) => [r.name, r.source, r.schedule]), [
      ['heartbeat', 'config', 'every 2s'],
      ['monday-report', 'code', 'crontab(30 7 * * mon)'],
      ['dyn-tick', 'redis', 'every 1s'],
    ]);
    assert.ok(rows[2]!.runs! >= 1);
    const envelope = JSON.parse((await raw.lindex('dynq', 0))!) as { headers: { task: string }; body: string };
    assert.equal(envelope.headers.task, 'dyn.tick');
    assert.deepEqual(JSON.parse(Buffer.from(envelope.body, 'base64').toString('utf8'))[0], [1, 2], 'the args on the wire');
    const [removed, bad] = await Promise.all([runCli(['beat', 'remove', 'dyn-tick'], env), runCli(['beat', 'add', 'bad', '--task', 'x', '--crontab', '* * * * mon-funday'], env)]);
    assert.equal(removed.code, 0, removed.stderr);
    await beat.waitFor(/beat: schedule changed: removed dyn-tick/, 10_000);
    assert.equal(await raw.hexists(BEAT_KEYS.state, 'dyn-tick'), 0, 'its last run is removed too');
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /dayOfWeek "mon-funday": "funday" is not a weekday/);
    await beat.stop();
    assert.equal(beat.child.exitCode, 0);
    await worker.stop();
  });

  test('start-up errors: a malformed entry or an unknown zone stops beat, naming the entry and the fix', async () => {
    const env = { CELERIAC_BROKER_URL: server.url(0) };
    const [bad, zone, interval] = await Promise.all([
      runCli(['beat', '-A', 'test/apps/beat-app.mjs'], { ...env, CELERIAC_TEST_BEAT_BAD: '1' }),
      runCli(['beat', '-A', 'test/apps/beat-app.mjs'], { ...env, CELERIAC_TEST_BEAT_TZ: 'Europe/Atlantis' }),
      runCli(['beat', '-A', 'test/apps/beat-app.mjs', '--max-interval', '0'], env),
    ]);
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /celeriac: error: beat entry "broken-nightly": crontab minute "61": 61 is above the maximum 59\. Write it as e\.g\./);
    assert.equal(zone.code, 2);
    assert.match(zone.stderr, /timezone "Europe\/Atlantis" is not a time zone this runtime knows: set timezone to an IANA name/);
    assert.equal(interval.code, 2);
    assert.match(interval.stderr, /--max-interval must be a positive number of seconds/);
  });
});
