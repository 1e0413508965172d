/**
 * Micro-benchmark of `dumpsPython` / `loadsPython` (the JSON on every task message
 * and result). Prints CPU ns per call, median of 7 rounds, for three shapes:
 * a task envelope (what `encodeEnvelope` writes), a result document, and a
 * float-heavy list. Run: `node --import tsx bench/python-json.ts`.
 */
import { dumpsPython, loadsPython } from '../packages/core/src/protocol/python-json.ts';

const id = '5f1e0c9a-3b7e-4a8e-9c51-6c2f4e1b7d20';
const envelope = {
  body: 'W1syLCAyXSwge30sIHsiY2FsbGJhY2tzIjogbnVsbCwgImVycmJhY2tzIjogbnVsbCwgImNoYWluIjogbnVsbCwgImNob3JkIjogbnVsbH1d',
  'content-encoding': 'utf-8',
  'content-type': 'application/json',
  headers: {
    lang: 'py', task: 'tasks.add', id, shadow: null, eta: null, expires: null, group: null, group_index: null, retries: 0,
    timelimit: [null, null], root_id: id, parent_id: null, argsrepr: '(2, 2)', kwargsrepr: '{}', origin: 'gen1234@host', ignore_result: false,
  },
  properties: { correlation_id: id, reply_to: id, delivery_mode: 2, delivery_info: { exchange: '', routing_key: 'celery' }, priority: 0, body_encoding: 'base64', delivery_tag: id },
};
const result = { status: 'SUCCESS', result: { total: 4, items: ['a', 'b', 'c'], ratio: 0.25 }, traceback: null, children: [], date_done: '2026-11-23T06:45:54.507576', task_id: id };
const floats = Array.from({ length: 50 }, (_, i) => (i % 3 === 0 ? i * 1.1e-6 : i % 3 === 1 ? i * 3.7 : (i + 1) * 1e17));

/** CPU time (user + system) per call, median of 7 rounds: steadier than wall time on a shared machine. */
function nsPerOp(fn: () => unknown, iterations: number): number {
  const rounds: number[] = [];
  for (let r = 0; r < 7; r++) {
    const start = process.cpuUsage();
    for (let i = 0; i < iterations; i++) fn();
    const used = process.cpuUsage(start);
    rounds.push(((used.user + used.system) * 1000) / iterations);
  }
  rounds.sort((a, b) => a - b);
  return rounds[3]!;
}

const envelopeText = dumpsPython(envelope);
const cases: [string, () => unknown, number][] = [
  ['dumpsPython(task envelope)', () => dumpsPython(envelope), 100_000],
  ['dumpsPython(result document)', () => dumpsPython(result), 100_000],
  ['dumpsPython(50 floats)', () => dumpsPython(floats), 20_000],
  ['loadsPython(task envelope)', () => loadsPython(envelopeText), 100_000],
];
for (const [name, fn, n] of cases) {
  for (let i = 0; i < n / 10; i++) fn(); // warm-up
  console.log(`${name.padEnd(32)} ${nsPerOp(fn, n).toFixed(0).padStart(7)} ns/op (CPU)`);
}
