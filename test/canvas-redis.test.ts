/**
 * The canvas on Redis with separate `celeriac worker` processes: every acceptance
 * example and nesting case with its exact value, Celery's chord keys on the wire
 * (`.s` chord size, `.j` results, expiry, deleted once fired), and many concurrent
 * chords on two worker processes each running its body exactly once.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { Redis } from 'ioredis';
import { chord, group, RemoteTaskError } from '../packages/core/src/index.ts';
import { canvasTasks } from './apps/canvas-app.ts';
import { acceptanceExamples, nestingExamples, replaceExamples } from './helpers/canvas-examples.ts';
import { useRedisWorkers } from './helpers/redis-workers.ts';
import { missing, REDIS_SERVER } from './helpers/services.ts';

const skip = missing(REDIS_SERVER, 'apt-get install redis-server');
const workers = useRedisWorkers(skip);
const tasks = canvasTasks(workers.producer);
const { add, xsum, countedSum, slowEcho, fail } = tasks;
const log = join(mkdtempSync(join(tmpdir(), 'canvas-redis-')), 'runs.log');
const T = { timeout: 20_000 };

let started: Promise<unknown> | undefined;
/** Two worker processes, started once by the first test (after the fixture's before hook). */
function twoWorkers(): Promise<unknown> {
  const options = { app: 'test/apps/canvas-app.ts', env: { CANVAS_LOG: log }, args: ['-c', '8'] };
  return (started ??= Promise.all([workers.startWorker(options), workers.startWorker(options)]));
}

for (const example of [...acceptanceExamples(tasks), ...nestingExamples(tasks), ...replaceExamples(tasks)]) {
  test(`Redis, two worker processes: ${example.name}`, { skip: skip ?? false }, async () => {
  await twoWorkers();
    assert.deepEqual(await example.run(), example.expected);
  });
}

test('chord keys are Celery 5.2\'s: .s holds the size before the header runs, .j collects results, all deleted once the body is sent', { skip: skip ?? false }, async () => {
  await twoWorkers();
  const backend = new Redis(workers.redis.url(1));
  try {
    // A header member that waits keeps the chord open long enough to look at the keys.
    const res = await chord([add.s(1, 1), slowEcho.s(5, 1500)], xsum.s()).delay();
    const gid = res.parent!.id;
    const prefix = `celery-taskset-meta-${gid}`;
    assert.equal(await backend.get(`${prefix}.s`), '2');
    for (let i = 0; i < 200 && (await backend.zcard(`${prefix}.j`)) < 1; i++) await new Promise((r) => setTimeout(r, 25));
    const members = await backend.zrange(`${prefix}.j`, 0, -1, 'WITHSCORES');
    assert.equal(members.length, 2);
    assert.match(members[0]!, /^\[1, "[0-9a-f-]{36}", "SUCCESS", 2\]$/);
    assert.equal(members[1], '0', 'score = group_index');
    const ttl = await backend.ttl(`${prefix}.j`);
    assert.ok(ttl > 86000 && ttl <= 86400, `.j expires with result_expires (ttl ${ttl})`);
    assert.equal(await res.get(T), 7);
    assert.deepEqual(await backend.exists(`${prefix}.j`, `${prefix}.s`, `${prefix}.t`), 0);
  } finally {
    backend.disconnect();
  }
});

test('many concurrent chords on two worker processes: every body runs exactly once', { skip: skip ?? false }, async () => {
  await twoWorkers();
  const chords = 6;
  const size = 120;
  const results = await Promise.all(
    Array.from({ length: chords }, (_, c) => chord(Array.from({ length: size }, (_, i) => slowEcho.s(c * 1000 + i, i % 3)), countedSum.s()).delay()),
  );
  const values = await Promise.all(results.map((r) => r.get({ timeout: 60_000 })));
  assert.deepEqual(
    values,
    Array.from({ length: chords }, (_, c) => size * c * 1000 + (size * (size - 1)) / 2),
  );
  const bodyRuns = existsSync(log) ? readFileSync(log, 'utf8').split('\n').filter((l) => l.startsWith('body ')) : [];
  for (const r of results) assert.equal(bodyRuns.filter((l) => l.split(' ')[1] === r.id).length, 1, `chord body ${r.id} ran exactly once`);
  const pids = new Set(bodyRuns.map((l) => l.split(' ')[2]));
  assert.ok(pids.size >= 1);
});

test('a failing member fails the chord body with ChordError (Redis counting of a FAILURE)', { skip: skip ?? false }, async () => {
  await twoWorkers();
  const res = await chord([add.s(1, 1), fail.s()], xsum.s()).delay();
  const err = await res.get(T).then(() => null, (e: unknown) => e);
  assert.ok(err instanceof RemoteTaskError);
  assert.equal(err.name, 'ChordError');
  assert.match(err.message, /^Dependency [0-9a-f-]{36} raised TypeError\('expected failure'\)$/);
});

test('GroupResult saved to Redis is Celery\'s document and restores', { skip: skip ?? false }, async () => {
  await twoWorkers();
  const res = await group(add.s(1, 1), add.s(2, 2)).applyAsync([], {}, { taskId: 'g-saved-1' });
  await res.save();
  const backend = new Redis(workers.redis.url(1));
  try {
    const raw = await backend.get('celery-taskset-meta-g-saved-1');
    assert.equal(raw, `{"result": [["g-saved-1", null], [[["${res.results[0]!.id}", null], null], [["${res.results[1]!.id}", null], null]]]}`);
  } finally {
    backend.disconnect();
  }
  const restored = await workers.producer.restoreGroupResult<number>('g-saved-1');
  assert.deepEqual(await restored!.get(T), [2, 4]);
});

test('the chord script: of 400 concurrent member results from two connections exactly one call gets the chord, in group_index order', { skip: skip ?? false }, async () => {
  const { RedisBackend } = await import('../packages/core/src/backends/redis.ts');
  const a = new RedisBackend(workers.redis.url(1));
  const b = new RedisBackend(workers.redis.url(1));
  try {
    const size = 400;
    await a.setChordSize('g-race', size);
    const calls = Array.from({ length: size }, (_, i) =>
      (i % 2 ? a : b).onChordPartReturn({ taskId: `t${i}`, groupId: 'g-race', groupIndex: size - 1 - i, state: 'SUCCESS', result: i }),
    );
    const replies = await Promise.all(calls);
    const fired = replies.filter((r) => r !== null);
    assert.equal(fired.length, 1);
    assert.deepEqual(
      fired[0]!.map((m) => m.result),
      Array.from({ length: size }, (_, i) => size - 1 - i),
    );
    const left = new Redis(workers.redis.url(1));
    assert.equal(await left.exists('celery-taskset-meta-g-race.j', 'celery-taskset-meta-g-race.s'), 0);
    left.disconnect();
  } finally {
    await a.close();
    await b.close();
  }
});

test('a chord with a failed member keeps its .j/.t/.s keys (to expire), as Celery does: its ChordError comes before the DEL; a successful one deletes them', { skip: skip ?? false }, async () => {
  const { RedisBackend } = await import('../packages/core/src/backends/redis.ts');
  const backend = new RedisBackend(workers.redis.url(1));
  const raw = new Redis(workers.redis.url(1));
  try {
    await backend.setChordSize('g-failed', 2);
    assert.equal(await backend.onChordPartReturn({ taskId: 'ok', groupId: 'g-failed', groupIndex: 0, state: 'SUCCESS', result: 3 }), null);
    const failure = { exc_type: 'ValueError', exc_message: ['x'], exc_module: 'builtins' };
    const fired = await backend.onChordPartReturn({ taskId: 'bad', groupId: 'g-failed', groupIndex: 1, state: 'FAILURE', result: failure });
    assert.deepEqual(fired, [
      { taskId: 'ok', state: 'SUCCESS', result: 3 },
      { taskId: 'bad', state: 'FAILURE', result: failure },
    ]);
    assert.deepEqual(await raw.zrange('celery-taskset-meta-g-failed.j', 0, -1), [
      '[1, "ok", "SUCCESS", 3]',
      '[1, "bad", "FAILURE", {"exc_type": "ValueError", "exc_message": ["x"], "exc_module": "builtins"}]',
    ]);
    assert.equal(await raw.exists('celery-taskset-meta-g-failed.s'), 1);
    assert.ok((await raw.ttl('celery-taskset-meta-g-failed.j')) > 0, 'kept keys still expire');
    await backend.setChordSize('g-good', 1);
    assert.deepEqual(await backend.onChordPartReturn({ taskId: 'only', groupId: 'g-good', groupIndex: 0, state: 'SUCCESS', result: 1 }), [{ taskId: 'only', state: 'SUCCESS', result: 1 }]);
    assert.equal(await raw.exists('celery-taskset-meta-g-good.j', 'celery-taskset-meta-g-good.s'), 0);
  } finally {
    await backend.close();
    raw.disconnect();
  }
});

test('result_chord_ordered: false counts in a list (RPUSH / LLEN), results in finishing order, as Celery', { skip: skip ?? false }, async () => {
  const { RedisBackend } = await import('../packages/core/src/backends/redis.ts');
  const backend = new RedisBackend(workers.redis.url(1), { result_chord_ordered: false });
  const raw = new Redis(workers.redis.url(1));
  try {
    await backend.setChordSize('g-list', 2);
    assert.equal(await backend.onChordPartReturn({ taskId: 'second', groupId: 'g-list', groupIndex: 1, state: 'SUCCESS', result: 'b' }), null);
    assert.equal(await raw.type('celery-taskset-meta-g-list.j'), 'list');
    assert.deepEqual(await raw.lrange('celery-taskset-meta-g-list.j', 0, -1), ['[1, "second", "SUCCESS", "b"]']);
    const fired = await backend.onChordPartReturn({ taskId: 'first', groupId: 'g-list', groupIndex: 0, state: 'FAILURE', result: { exc_type: 'ValueError', exc_message: ['x'], exc_module: 'builtins' } });
    assert.deepEqual(fired, [
      { taskId: 'second', state: 'SUCCESS', result: 'b' },
      { taskId: 'first', state: 'FAILURE', result: { exc_type: 'ValueError', exc_message: ['x'], exc_module: 'builtins' } },
    ]);
  } finally {
    raw.disconnect();
    await backend.close();
  }
});

test('GroupResult.revoke(): one remote-control broadcast revokes every member, none runs', { skip: skip ?? false }, async () => {
  await twoWorkers();
  const res = await group(add.s(1, 1), add.s(2, 2), add.s(3, 3)).applyAsync([], {}, { countdown: 3 });
  await res.revoke();
  for (const r of res.results) {
    await assert.rejects(r.get(T), (e: Error) => e.name === 'TaskRevokedError');
    assert.equal(await r.state, 'REVOKED');
  }
  assert.equal(await res.failed(), false);
  assert.equal(await res.successful(), false);
});
