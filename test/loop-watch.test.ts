/**
 * The shared memory between the event loop and the heartbeat thread (both sides in
 * one thread here: the protocol is plain Atomics), and the heartbeats' handling of
 * a thread that cannot start: loud, beating from the loop meanwhile, retried.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { pino } from 'pino';
import { ConsumerHeartbeats } from '../packages/core/src/worker/consumer-heartbeats.ts';
import { createLoopWatchMemory, LoopState, LoopWatch, LoopWatcher, LostAction, type OverflowEnd, type OverflowStart } from '../packages/core/src/worker/loop-watch.ts';

function pair(slots: number) {
  const memory = createLoopWatchMemory(slots);
  let clock = 0;
  const records: (OverflowStart | OverflowEnd)[] = [];
  const loop = new LoopWatch(memory, (r) => records.push(r));
  const thread = new LoopWatcher(memory, () => clock);
  return { loop, thread, records, advance: (ms: number) => (clock += ms) };
}

test('a stall is measured from the last tick; a tick resets it', () => {
  const { loop, thread, advance } = pair(2);
  advance(500);
  assert.equal(thread.stalledMs(), 500);
  loop.tick();
  assert.equal(thread.stalledMs(), 0);
  advance(300);
  assert.equal(thread.stalledMs(), 300);
});

test('declaring a hang reports exactly the started messages, with their action; then nothing more starts', () => {
  const { loop, thread, records } = pair(2);
  const a = {};
  const b = {};
  const c = {};
  assert.equal(loop.begin(a, 'tag-a', LostAction.Drop), true);
  assert.equal(loop.begin(b, 'tag-é', LostAction.Requeue), true);
  assert.equal(loop.begin(c, 'tag-c', LostAction.Drop), true); // no slot left: sent by message
  assert.deepEqual(records, [{ type: 'started', id: 1, tag: 'tag-c', action: LostAction.Drop }]);
  for (const r of records) thread.note(r);
  loop.end(a);
  const started = thread.declareHung();
  assert.deepEqual(started, [
    { tag: 'tag-é', action: LostAction.Requeue },
    { tag: 'tag-c', action: LostAction.Drop },
  ]);
  assert.equal(thread.state, LoopState.Hung);
  assert.equal(loop.begin({}, 'late', LostAction.Drop), false, 'no start once the hang is declared');
  thread.markReleased();
  assert.equal(loop.state, LoopState.Released);
  loop.reset();
  assert.equal(thread.state, LoopState.Live);
  assert.equal(thread.stalledMs(), 0, 'reset counts as progress');
  assert.deepEqual(thread.started().filter((s) => s.tag !== 'tag-c'), [], 'reset forgets the started slots');
});

test('a tag too long for a slot goes by message, and so does its end', () => {
  const { loop, thread, records } = pair(1);
  const key = {};
  const long = 'x'.repeat(1000);
  assert.equal(loop.begin(key, long, LostAction.Requeue), true);
  loop.end(key);
  assert.deepEqual(records, [
    { type: 'started', id: 1, tag: long, action: LostAction.Requeue },
    { type: 'ended', id: 1 },
  ]);
  for (const r of records) thread.note(r);
  assert.deepEqual(thread.declareHung(), []);
});

test('reserving(): what a reserve took while a hang was declared and released is not the worker’s to run', async () => {
  let released = 0;
  const heartbeats = new ConsumerHeartbeats({
    beat: async () => undefined,
    upkeep: async () => undefined,
    thread: { brokerUrl: 'memory://', consumerId: 'c2' }, // no thread starts: this test plays its part
    hang: { timeoutSeconds: 60, startedCapacity: 4, onReleased: () => void released++ },
    intervalSeconds: 60,
    log: pino({ level: 'silent' }),
  });
  const thread = new LoopWatcher(heartbeats.watchMemory!, () => 0);
  const before = heartbeats.reserving();
  assert.equal(before(), true, 'no hang: keep what was reserved');
  assert.deepEqual(thread.declareHung(), []);
  assert.equal(before(), false, 'hang declared, release under way: give it back');
  thread.markReleased();
  assert.equal(before(), false, 'released while the reserve was pending: give it back');
  assert.equal(released, 1, 'the owner forfeited what it held, once');
  assert.equal(thread.state, LoopState.Live);
  assert.equal(heartbeats.reserving()(), true, 'a reserve begun after the hang settled keeps what it took');
  await heartbeats.stop();
});

test('a heartbeat thread that cannot start is reported as an error, the loop beats meanwhile, and a new thread is tried', async () => {
  const errors: string[] = [];
  const log = pino({ level: 'error' }, { write: (line: string) => void errors.push(JSON.parse(line).msg as string) });
  let beats = 0;
  const heartbeats = new ConsumerHeartbeats({
    beat: async () => void beats++,
    upkeep: async () => undefined,
    // No thread exists for this scheme: starting one fails, every time.
    thread: { brokerUrl: 'memory://', consumerId: 'c1' },
    hang: null,
    intervalSeconds: 0.02,
    log,
  });
  await heartbeats.start();
  try {
    const deadline = Date.now() + 15_000;
    while (errors.length < 2 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    assert.match(errors[0] ?? '', /cannot start the heartbeat thread \(.*memory:\/\/.*\); beating from the event loop meanwhile.*Trying a new thread in 5 s/s);
    assert.match(errors[1] ?? '', /cannot start the heartbeat thread.*Trying a new thread in 10 s/s, 'tried again after 5 s, and the next wait doubles');
    assert.ok(beats > 10, `beat from the loop meanwhile (${beats} beats)`);
  } finally {
    await heartbeats.stop();
  }
});

test('a started task to store FAILURE for reaches the thread with its ids, in a slot or by message', () => {
  const { loop, thread, records } = pair(1);
  const task = { id: 'f3b9e2c4-1d2a-4c51-9e3b-7a6d5c4b3a21', groupId: 'g-1', parentId: null };
  assert.equal(loop.begin({}, 'tag-a', LostAction.Drop, task), true);
  const long = { id: 'é'.repeat(200), groupId: null, parentId: 'p-1' }; // no slot left (and too long for one): by message
  assert.equal(loop.begin({}, 'tag-b', LostAction.Drop, long), true);
  for (const r of records) thread.note(r);
  assert.deepEqual(thread.declareHung(), [
    { tag: 'tag-a', action: LostAction.Drop, task },
    { tag: 'tag-b', action: LostAction.Drop, task: long },
  ]);
});
