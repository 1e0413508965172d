/**
 * ResultWriter against a scripted backend: batching, per-document encoding, the
 * bounded retry queue, the retry window and one probe batch at a time while the
 * backend is failing. (The same behaviours against real redis-servers are in
 * result-encoding.test.ts and result-backend-retry.test.ts.)
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { pino } from 'pino';
import type { EncodedResult, ResultBackend, ResultDocument } from '../packages/core/src/backends/backend.ts';
import { dumpsPython } from '../packages/core/src/protocol/python-json.ts';
import { ResultDropped, ResultWriter } from '../packages/core/src/worker/result-writer.ts';

function doc(id: string, result: unknown = 1): ResultDocument {
  return { status: 'SUCCESS', result, traceback: null, children: [], date_done: '2026-01-01T00:00:00', task_id: id };
}

/** A backend whose `storeEncoded` fails while `down` is true; records every call. */
function scriptedBackend() {
  const calls: string[][] = [];
  const callTimes: number[] = [];
  const stored = new Map<string, string>();
  const state = { down: false, inFlight: 0, maxInFlight: 0 };
  const backend: ResultBackend & { encodeResult(d: ResultDocument): EncodedResult } = {
    displayUrl: 'scripted://',
    storeResult: () => Promise.reject(new Error('not used')),
    encodeResult: (d) => ({ taskId: d.task_id, status: d.status, payload: dumpsPython(d) }),
    async storeEncoded(results) {
      calls.push(results.map((r) => r.taskId));
      callTimes.push(Date.now());
      state.inFlight++;
      state.maxInFlight = Math.max(state.maxInFlight, state.inFlight);
      await new Promise((r) => setTimeout(r, 5));
      state.inFlight--;
      if (state.down) throw new Error('connection refused');
      for (const r of results) stored.set(r.taskId, String(r.payload));
      return results.map(() => null);
    },
    getResult: async () => null,
    waitForResult: () => Promise.reject(new Error('not used')),
    forget: async () => undefined,
    close: async () => undefined,
  };
  return { backend, calls, callTimes, stored, state };
}

async function waitFor(what: string, check: () => boolean, timeoutMs = 3000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for: ${what}`);
    await new Promise((r) => setTimeout(r, 2));
  }
}

function capture() {
  const lines: { level: number; msg: string; id?: string }[] = [];
  return { lines, log: pino({ level: 'info' }, { write: (l: string) => void lines.push(JSON.parse(l)) }) };
}

test('documents added in one turn go out in one batch, split at maxBatch', async () => {
  const { backend, calls, stored } = scriptedBackend();
  const writer = new ResultWriter(backend, { log: capture().log, retryWindowMs: 1000, maxBatch: 4 });
  await Promise.all(Array.from({ length: 10 }, (_, i) => writer.add(doc(`t${i}`, i))));
  assert.deepEqual(calls.map((c) => c.length), [4, 4, 2]);
  assert.equal(stored.size, 10);
  assert.equal(writer.pending, 0);
});

test('an unencodable document becomes FAILURE EncodeError on its own; its batch neighbours are stored', async () => {
  const { backend, stored } = scriptedBackend();
  const { log, lines } = capture();
  const writer = new ResultWriter(backend, { log, retryWindowMs: 1000 });
  const cyclic: Record<string, unknown> = {};
  cyclic.self = cyclic;
  const outcomes = await Promise.all([writer.add(doc('a')), writer.add(doc('set', new Set([1]))), writer.add(doc('cycle', cyclic)), writer.add(doc('b'))]);
  assert.deepEqual(outcomes.map((o) => o?.name), [undefined, 'EncodeError', 'EncodeError', undefined], 'add() tells the caller what was stored instead');
  assert.equal(JSON.parse(stored.get('a')!).status, 'SUCCESS');
  assert.equal(JSON.parse(stored.get('b')!).status, 'SUCCESS');
  for (const id of ['set', 'cycle']) {
    const d = JSON.parse(stored.get(id)!);
    assert.equal(d.status, 'FAILURE');
    assert.equal(d.result.exc_type, 'EncodeError');
    assert.equal(d.result.exc_module, 'kombu.exceptions');
    assert.ok(lines.some((l) => l.id === id && l.level === 50), `error logged for ${id}`);
  }
  assert.match(JSON.parse(stored.get('set')!).result.exc_message[0], /Set/);
});

test('while the backend fails: documents are kept, retried one batch at a time, and all written when it returns', async () => {
  const { backend, calls, callTimes, stored, state } = scriptedBackend();
  const { log, lines } = capture();
  const writer = new ResultWriter(backend, { log, retryWindowMs: 10_000, maxBatch: 5, firstRetryDelayMs: 10, maxRetryDelayMs: 40 });
  state.down = true;
  const first = Array.from({ length: 12 }, (_, i) => writer.add(doc(`t${i}`)));
  await waitFor('the first burst and four retries', () => calls.length >= 3 + 4 && state.inFlight === 0);
  const later = writer.add(doc('late')); // added during the outage: queued, not sent on its own
  await waitFor('one more retry', () => calls.length >= 3 + 5);
  assert.ok(calls.slice(3).every((c) => c.length <= 5), 'retries send one batch at a time');
  const gaps = callTimes.slice(3).map((t, i, all) => (i === 0 ? 0 : t - all[i - 1]!)).slice(1);
  assert.ok(gaps[3]! >= 25, `the delay grows (backoff): gaps ${gaps.join(', ')} ms`);
  assert.equal(writer.pending, 13);
  state.down = false;
  await Promise.all([...first, later]);
  assert.equal(stored.size, 13);
  assert.equal(state.maxInFlight <= 3, true, `at most the first burst in flight at once (saw ${state.maxInFlight})`);
  assert.ok(lines.some((l) => /retrying for up to 10 s/.test(l.msg)), 'the outage was logged');
  assert.ok(lines.some((l) => /accepts writes again/.test(l.msg)), 'the recovery was logged');
  assert.equal(lines.filter((l) => /dropped/.test(l.msg)).length, 0);
});

test('a write the backend refuses for one document is retried on its own; its batch neighbours are stored and the writer keeps its pace', async () => {
  const { backend, calls, stored } = scriptedBackend();
  const refused = new Set(['bad']);
  let badAttempts = 0;
  const storeAll = backend.storeEncoded!.bind(backend);
  backend.storeEncoded = async (results) => {
    if (results.some((r) => refused.has(r.taskId))) badAttempts++;
    const outcome = await storeAll(results.filter((r) => !refused.has(r.taskId)));
    const errors = new Map(results.filter((r) => !refused.has(r.taskId)).map((r, i) => [r.taskId, outcome[i] ?? null]));
    return results.map((r) => (refused.has(r.taskId) ? new Error(`WRONGTYPE for ${r.taskId}`) : errors.get(r.taskId) ?? null));
  };
  const { log, lines } = capture();
  const writer = new ResultWriter(backend, { log, retryWindowMs: 200, firstRetryDelayMs: 10, maxRetryDelayMs: 40 });
  const bad = writer.add(doc('bad'));
  const good = ['g1', 'g2', 'g3'].map((id) => writer.add(doc(id)));
  await Promise.all(good);
  assert.deepEqual([...stored.keys()].sort(), ['g1', 'g2', 'g3'], 'neighbours stored in the first round trip');
  // Later documents are not held back behind the refused one.
  const callsBefore = calls.length;
  await Promise.all(['h1', 'h2'].map((id) => writer.add(doc(id))));
  assert.ok(calls.length - callsBefore <= 2, `later writes went out at once (${calls.length - callsBefore} calls)`);
  await assert.rejects(bad, ResultDropped);
  assert.ok(badAttempts >= 2, `the refused one was retried (${badAttempts} attempts)`);
  assert.ok(lines.some((l) => l.id === 'bad' && /dropped.*WRONGTYPE/.test(l.msg)));
});

test('past the retry window each document is dropped, logged by id, and its promise rejects', async () => {
  const { backend, state } = scriptedBackend();
  const { log, lines } = capture();
  const writer = new ResultWriter(backend, { log, retryWindowMs: 100, firstRetryDelayMs: 10, maxRetryDelayMs: 20 });
  state.down = true;
  const outcomes = await Promise.allSettled(['x1', 'x2', 'x3'].map((id) => writer.add(doc(id))));
  for (const o of outcomes) assert.ok(o.status === 'rejected' && o.reason instanceof ResultDropped);
  const dropped = lines.filter((l) => /^Result of task \S+ \(SUCCESS\) dropped/.test(l.msg));
  assert.deepEqual(dropped.map((l) => l.id).sort(), ['x1', 'x2', 'x3']);
  assert.ok(dropped.every((l) => /resultBackendRetryWindow.*connection refused/.test(l.msg)));
  await writer.flush();
  assert.equal(writer.pending, 0);
});

test('the queue is bounded: past maxQueued the oldest document is dropped and logged', async () => {
  const { backend, calls, state, stored } = scriptedBackend();
  const { log, lines } = capture();
  const writer = new ResultWriter(backend, { log, retryWindowMs: 60_000, maxQueued: 3, firstRetryDelayMs: 10, maxRetryDelayMs: 10 });
  state.down = true;
  const first = writer.add(doc('q0'));
  await waitFor('q0 failed once and is queued again', () => calls.length >= 1 && state.inFlight === 0);
  const rest = ['q1', 'q2', 'q3'].map((id) => writer.add(doc(id)));
  await assert.rejects(first, ResultDropped);
  assert.ok(lines.some((l) => l.id === 'q0' && /more than 3 results are waiting/.test(l.msg)));
  state.down = false;
  await Promise.all(rest);
  assert.deepEqual([...stored.keys()].sort(), ['q1', 'q2', 'q3']);
});

test('flush() resolves once everything added is written', async () => {
  const { backend, stored } = scriptedBackend();
  const writer = new ResultWriter(backend, { log: capture().log, retryWindowMs: 1000 });
  void writer.add(doc('f1'));
  void writer.add(doc('f2'));
  await writer.flush();
  assert.equal(stored.size, 2);
});

test('abandon() (cold stop) drops what the backend has not accepted, logged by id, and stops retrying', async () => {
  const { backend, calls, state } = scriptedBackend();
  const { log, lines } = capture();
  const writer = new ResultWriter(backend, { log, retryWindowMs: 60_000, firstRetryDelayMs: 10, maxRetryDelayMs: 10 });
  state.down = true;
  const outcomes = Promise.allSettled(['c1', 'c2'].map((id) => writer.add(doc(id))));
  await waitFor('a retry round', () => calls.length >= 2);
  await writer.abandon();
  const settled = await outcomes;
  assert.ok(settled.every((o) => o.status === 'rejected' && o.reason instanceof ResultDropped));
  assert.deepEqual(lines.filter((l) => /stopped cold/.test(l.msg)).map((l) => l.id).sort(), ['c1', 'c2']);
  const callsAfter = calls.length;
  await new Promise((r) => setTimeout(r, 50)); // a retry timer would have fired several times by now
  assert.equal(calls.length, callsAfter, 'no retries after abandon()');
  assert.equal(writer.pending, 0);
});

test('with nothing in flight, a batch is written in the turn its documents were added (before the next setImmediate); while one is in flight, the next gathers until the loop turns', async () => {
  const { backend, calls } = scriptedBackend();
  const writer = new ResultWriter(backend, { log: pino({ level: 'silent' }), retryWindowMs: 60_000 });
  writer.write(doc('a'), () => undefined);
  writer.write(doc('b'), () => undefined);
  await new Promise<void>((resolve) => process.nextTick(resolve));
  // Before: the first batch waited for setImmediate (a full loop turn) even on an idle worker.
  assert.deepEqual(calls, [['a', 'b']], 'written at the end of this turn');
  writer.write(doc('c'), () => undefined); // the first batch is in flight (the backend takes 5 ms)
  writer.write(doc('d'), () => undefined);
  await new Promise<void>((resolve) => process.nextTick(resolve));
  assert.equal(calls.length, 1, 'not yet: a batch is in flight');
  await new Promise<void>((resolve) => setImmediate(resolve));
  assert.deepEqual(calls, [['a', 'b'], ['c', 'd']]);
  await writer.flush();
});
