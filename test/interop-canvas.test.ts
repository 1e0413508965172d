/**
 * Canvas across languages on one redis-server, with real Python Celery 5.2:
 * every acceptance example sent by Python and run by Celeriac workers, and sent
 * by Celeriac and run by a Python worker; a chain alternating Python-only and
 * Celeriac-only tasks (sent from each side); chords whose header runs on one
 * side and body on the other; a GroupResult saved by one side and restored by
 * the other; a canvas passed as an argument from Python rebuilt by Celeriac.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { chain, chord, group } from '../packages/core/src/index.ts';
import { CANVAS_ROUTES, canvasTasks } from './apps/canvas-app.ts';
import { acceptanceExamples, nestingExamples } from './helpers/canvas-examples.ts';
import { interopEnv, pythonCeleryMissing, runPythonProducer, startPythonWorker, type InteropEnv, type PeerProcess } from './helpers/python-celery.ts';
import { useRedisWorkers } from './helpers/redis-workers.ts';
import { missing, REDIS_SERVER, stopChild } from './helpers/services.ts';
import type { WorkerProcess } from './helpers/worker-process.ts';

const skip = missing(REDIS_SERVER, 'apt-get install redis-server') ?? pythonCeleryMissing();
let py: PeerProcess | undefined;
const workers = useRedisWorkers(skip, { cleanup: async () => py?.stop() });
const tasks = canvasTasks(workers.producer);
const { add, tsOnlyAdd, tsOnlyXsum } = tasks;
const producer = workers.producer;
producer.configure({ taskRoutes: CANVAS_ROUTES });
const T = { timeout: 30_000 };
const range = (n: number) => [...Array(n).keys()];
let ts: WorkerProcess | undefined;

const env = (): InteropEnv => ({ ...interopEnv(workers.redis), CANVAS_STUBS: '1' }) as InteropEnv;
const pyProducer = <R>(name: string, args: string[] = []) => runPythonProducer<R>(name, env(), args, 120_000, 'canvas_producer.py');

async function celeriacWorker(on: boolean): Promise<void> {
  if (on && !ts) ts = await workers.startWorker({ app: 'test/apps/canvas-app.ts', args: ['-c', '8', '-Q', 'celery,ts'] });
  if (!on && ts) {
    await stopChild(ts.child);
    ts = undefined;
  }
}
async function pythonWorker(on: boolean): Promise<void> {
  if (on && !py) py = await startPythonWorker({ env: interopEnv(workers.redis), module: 'canvas_tasks', pool: 'threads', concurrency: 4, hostname: 'py@canvas', queues: ['celery', 'py'] });
  if (!on && py) {
    await py.stop();
    py = undefined;
  }
}

test('Python sends every acceptance example and nesting case; only Celeriac workers run them', { skip: skip ?? false }, async () => {
  await pythonWorker(false);
  await celeriacWorker(true);
  const seen = await pyProducer<Record<string, unknown>>('examples');
  assert.deepEqual(seen, {
    link: 20,
    group: range(10).map((i) => 2 * i),
    chain: 16,
    pipe: 64,
    partial_chain: 64,
    arith: 352,
    chord: 90,
    map: [45, 4950],
    starmap: range(10).map((i) => 2 * i),
    chunks: range(10).map((c) => range(10).map((i) => 2 * (c * 10 + i))),
    immutable: [16, 8, 4],
    partial_group: range(10).map((i) => i + 10),
    group_then_task: 7,
    chord_in_chain: 70,
    chain_ending_in_group: [5, 12],
    group_of_chords: [6, 14],
  });
});

test('a canvas Python passes as an argument is rebuilt by Celeriac with one call and sent', { skip: skip ?? false }, async () => {
  await celeriacWorker(true);
  assert.deepEqual(await pyProducer('signature_arg'), { value: 40 });
});

test('a chord member failing on a Celeriac worker: Python sees its error, and the body a ChordError', { skip: skip ?? false }, async () => {
  await celeriacWorker(true);
  const seen = await pyProducer<{ raised: { type: string; str: string }; body: { state: string; type: string; str: string } }>('chord_failure');
  // Celery's get() follows the parents: the failed header member's own error comes first.
  assert.deepEqual(seen.raised, { type: 'TypeError', str: 'expected failure' });
  assert.equal(seen.body.state, 'FAILURE');
  assert.equal(seen.body.type, 'ChordError');
  assert.match(seen.body.str, /^Dependency [0-9a-f-]{36} raised TypeError\('expected failure'\)$/);
});

for (const example of [...acceptanceExamples(tasks), ...nestingExamples(tasks)]) {
  test(`Celeriac sends, only a Python worker runs: ${example.name}`, { skip: skip ?? false }, async () => {
    await celeriacWorker(false);
    await pythonWorker(true);
    assert.deepEqual(await example.run(), example.expected);
  });
}

test('a chain alternating Python-only and Celeriac-only tasks, sent from each side', { skip: skip ?? false }, async () => {
  await pythonWorker(true);
  await celeriacWorker(true);
  const pyOnlyAdd = producer.signature<number>('py.only_add');
  const res = await chain(pyOnlyAdd.clone([1, 1]), tsOnlyAdd.s(10), pyOnlyAdd.clone([100]), tsOnlyAdd.s(1000)).delay();
  assert.equal(await res.get(T), 1112);
  assert.equal(await producer.AsyncResult(res.parent!.id).get(T), 112);
  assert.deepEqual(await pyProducer('alternating'), { value: 1112, parents: [112, 12] });
});

test('chords across languages: Celeriac header with Python body, and the reverse, from each side', { skip: skip ?? false }, async () => {
  await pythonWorker(true);
  await celeriacWorker(true);
  const pyOnlyAdd = producer.signature<number>('py.only_add');
  const pyOnlyXsum = producer.signature<number>('py.only_xsum');
  const a = await chord(range(5).map((i) => tsOnlyAdd.s(i, i)), pyOnlyXsum).delay();
  assert.equal(await a.get(T), 20);
  const b = await chord(range(5).map((i) => pyOnlyAdd.clone([i, i])), tsOnlyXsum.s()).delay();
  assert.equal(await b.get(T), 20);
  // A header split over both languages counts on the same keys.
  const c = await chord([...range(3).map((i) => pyOnlyAdd.clone([i, 1])), ...range(3).map((i) => tsOnlyAdd.s(i, 2))], tsOnlyXsum.s()).delay();
  assert.equal(await c.get(T), 3 + 3 + 3 + 6);
  assert.deepEqual(await pyProducer('chord_ts_header_py_body'), { value: 20 });
  assert.deepEqual(await pyProducer('chord_py_header_ts_body'), { value: 20 });
});

test('a GroupResult saved by one side is restored by the other', { skip: skip ?? false }, async () => {
  await pythonWorker(true);
  await celeriacWorker(true);
  const saved = await group(add.s(1, 1), add.s(2, 2)).delay();
  await saved.get(T);
  await saved.save();
  assert.deepEqual(await pyProducer('restore_group', [saved.id]), { children: saved.results.map((r) => r.id), value: [2, 4] });
  const fromPy = await pyProducer<{ id: string; children: string[] }>('save_group');
  const restored = await producer.restoreGroupResult<number>(fromPy.id);
  assert.ok(restored);
  assert.deepEqual(restored.results.map((r) => r.id), fromPy.children);
  assert.deepEqual(await restored.get(T), [2, 4, 6]);
});
