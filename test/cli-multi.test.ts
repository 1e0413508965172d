/**
 * `celeriac multi`: real workers started in the background with pidfiles and log
 * files, Celery's node names and per-node options, a second start refused while
 * they live, `stopwait` waiting for the warm shutdown, `kill`.
 */
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { parseNodes } from '../packages/core/src/cli/multi.ts';
import { isAlive, readPidfile } from '../packages/core/src/cli/pidfile.ts';
import { createApp, type Celeriac } from '../packages/core/src/index.ts';
import { runCli } from './helpers/cli.ts';
import { missing, REDIS_SERVER, startRedis, type RedisServer } from './helpers/services.ts';
import { waitFor } from './helpers/worker-process.ts';

describe('multi: node names and options, as celery multi expands them', () => {
  test('a count names nodes celery1..N@host; %n/%h/%I expand; -c:1-2 8 applies to nodes 1 and 2 only', () => {
    const nodes = parseNodes(['3', '-A', 'app.js', '-c', '4', '-c:1-2', '8', '--pidfile=/run/c/%n.pid', '--logfile=/log/%n%I.log', '-Q:3', 'slow'], 'box');
    assert.deepEqual(nodes.map((n) => n.name), ['celery1@box', 'celery2@box', 'celery3@box']);
    assert.deepEqual(nodes.map((n) => n.pidfile), ['/run/c/celery1.pid', '/run/c/celery2.pid', '/run/c/celery3.pid']);
    assert.deepEqual(nodes.map((n) => n.logfile), ['/log/celery1.log', '/log/celery2.log', '/log/celery3.log']);
    assert.deepEqual(nodes[0]!.argv, ['-A', 'app.js', '-c', '8']);
    assert.deepEqual(nodes[2]!.argv, ['-A', 'app.js', '-c', '4', '-Q', 'slow']);
  });

  test('names are kept; an index namespace refers to the n-th name; a missing index is an error', () => {
    const nodes = parseNodes(['w1', 'w2', '-c:2', '3', '--loglevel:w1=debug'], 'box');
    assert.deepEqual(nodes.map((n) => n.name), ['w1@box', 'w2@box']);
    assert.deepEqual(nodes[0]!.argv, ['--loglevel', 'debug']);
    assert.deepEqual(nodes[1]!.argv, ['-c', '3']);
    assert.throws(() => parseNodes(['w1', '-c:5', '3'], 'box'), /No node at index 5/);
  });
});

const skip = missing(REDIS_SERVER, 'apt-get install redis-server');

describe('multi with real workers on Redis', { skip: skip ?? false }, () => {
  let redis: RedisServer | undefined;
  let dir: string;
  let app: Celeriac;
  let common: string[];
  const host = hostname();

  before(async () => {
    if (skip) return;
    redis = await startRedis();
    dir = mkdtempSync(join(tmpdir(), 'celeriac-multi-'));
    common = ['-A', 'test/apps/control-app.ts', '-b', redis.url(0), '--result-backend', redis.url(1), `--pidfile=${dir}/%n.pid`, `--logfile=${dir}/%n%I.log`];
    app = createApp('multi-client', { brokerUrl: redis.url(0), resultBackend: redis.url(1) });
  });

  after(async () => {
    // Whatever a failed test left running: by the pids we started (read from our pidfiles).
    for (const n of ['celery1', 'celery2']) {
      const pid = dir ? readPidfile(join(dir, `${n}.pid`)) : null;
      if (pid && isAlive(pid)) process.kill(pid, 'SIGKILL');
    }
    await app?.close();
    await redis?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  test('start 2 → both answer ping with their per-node concurrency; a second start is refused; stopwait waits for both; pidfiles removed', async () => {
    const start = await runCli(['multi', 'start', '2', ...common, '-c', '2', '-c:1', '3'], {}, 60_000);
    assert.equal(start.code, 0, start.stdout + start.stderr);
    assert.match(start.stdout, new RegExp(`celery1@${host}: OK`));
    assert.match(start.stdout, new RegExp(`celery2@${host}: OK`));
    const pids = ['celery1', 'celery2'].map((n) => readPidfile(join(dir, `${n}.pid`))!);
    assert.ok(pids.every((p) => p && isAlive(p)), `pids ${pids}`);

    // The pidfile is written as the process starts; the node answers once it is consuming.
    await waitFor(async () => ((await app.control.ping({ timeout: 500 })).length === 2), 30_000, 'both nodes to answer ping');
    const stats = (await app.control.inspect({ timeout: 2_000 }).stats()) as Record<string, { pool: { 'max-concurrency': number }; pid: number }>;
    assert.equal(stats[`celery1@${host}`]!.pool['max-concurrency'], 3);
    assert.equal(stats[`celery2@${host}`]!.pool['max-concurrency'], 2);
    assert.equal(stats[`celery1@${host}`]!.pid, pids[0]);
    assert.equal(await (await app.sendTask('ctl.add', [20, 22])).get({ timeout: 10_000 }), 42);
    // The result is stored before the worker's log line reaches its file: wait for the line.
    const logs = () => readFileSync(join(dir, 'celery1.log'), 'utf8') + readFileSync(join(dir, 'celery2.log'), 'utf8');
    await waitFor(() => /ctl\.add\[.*\] succeeded/.test(logs()), 10_000, 'the succeeded line in a node log');

    const again = await runCli(['multi', 'start', '2', ...common], {}, 60_000);
    assert.equal(again.code, 1);
    assert.match(again.stdout, /already running/);
    assert.deepEqual(['celery1', 'celery2'].map((n) => readPidfile(join(dir, `${n}.pid`))), pids, 'the running workers keep their pidfiles');

    const names = await runCli(['multi', 'names', '2', ...common]);
    assert.deepEqual(names.stdout.trim().split('\n'), [`celery1@${host}`, `celery2@${host}`]);

    const stop = await runCli(['multi', 'stopwait', '2', ...common], {}, 60_000);
    assert.equal(stop.code, 0, stop.stdout + stop.stderr);
    assert.match(stop.stdout, /Waiting for 2 nodes/);
    assert.ok(pids.every((p) => !isAlive(p)), 'stopwait returned only after both exited');
    assert.ok(!existsSync(join(dir, 'celery1.pid')) && !existsSync(join(dir, 'celery2.pid')), 'pidfiles removed at exit');
    assert.match(readFileSync(join(dir, 'celery1.log'), 'utf8'), /Warm shutdown/);
  });

  test('kill sends SIGKILL and removes the pidfile', async () => {
    const start = await runCli(['multi', 'start', '1', ...common], {}, 60_000);
    assert.equal(start.code, 0, start.stdout + start.stderr);
    const pid = readPidfile(join(dir, 'celery1.pid'))!;
    const kill = await runCli(['multi', 'kill', '1', ...common]);
    assert.equal(kill.code, 0);
    assert.match(kill.stdout, new RegExp(`Sending KILL to celery1@${host} -> ${pid}`));
    const deadline = Date.now() + 5_000;
    while (isAlive(pid) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    assert.equal(isAlive(pid), false);
    assert.equal(existsSync(join(dir, 'celery1.pid')), false);
  });
});
