/**
 * Fuzz `dumpsPython` / `loadsPython` against the real thing: thousands of random
 * values (seeded, so every run is the same) are rebuilt in ONE Python process from
 * an exact, type-tagged description and written with `json.dumps` (kombu's encoder,
 * for datetimes). Our bytes must equal Python's, and parsing Python's bytes and
 * writing them again must give the same bytes.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { test } from 'node:test';
import { dumpsPython, loadsPython } from '../packages/core/src/index.ts';
import { missing, SYSTEM_PYTHON } from './helpers/services.ts';

const skip = missing(SYSTEM_PYTHON, 'apt-get install python3-celery');
const CASES = 3000;
const SEED = 0x5eed_c1e1;

/** mulberry32: small deterministic PRNG. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** What Python rebuilds: exact ints, floats by their 64 bits, dicts as ordered pairs. */
type Tagged = ['i', string] | ['f', string] | ['s', string] | ['b', boolean] | ['n'] | ['t', number] | ['l', Tagged[]] | ['d', [string, Tagged][]];

const SPECIAL_FLOATS = [1e-5, 1e-4, 9.99e-5, 1e16, 1e15 + 0.5, -0, 0.1, 5e-324, 2.2250738585072014e-308, 1.7976931348623157e308, 2 ** 53, 2 ** 53 + 2, 1e21, 1e-7, 123456789.125, NaN, Infinity, -Infinity];
const STRING_POOL = ['', 'a', 'tasks.add', '"quoted"', 'back\\slash', 'new\nline\ttab\r\b\f', '\u0000\u001f\u007f', 'é', '😀', '\ud800', '\udfff', '中文', '__proto__', 'constructor', '0', '42', '007', '4294967295'];

function generator(seed: number) {
  const rnd = prng(seed);
  const int = (n: number) => Math.floor(rnd() * n);
  const pick = <T>(items: readonly T[]): T => items[int(items.length)]!;

  function float(): number {
    switch (int(4)) {
      case 0: return pick(SPECIAL_FLOATS);
      case 1: { // any double, from random bits
        const view = new DataView(new ArrayBuffer(8));
        view.setUint32(0, int(2 ** 32));
        view.setUint32(4, int(2 ** 32));
        return view.getFloat64(0);
      }
      case 2: return (rnd() - 0.5) * 10 ** (int(40) - 20);
      default: return Math.round((rnd() - 0.5) * 1e6) / 10 ** int(8);
    }
  }
  function string(): string {
    if (rnd() < 0.4) return pick(STRING_POOL);
    let s = '';
    const length = int(12);
    for (let i = 0; i < length; i++) {
      const r = rnd();
      s += String.fromCharCode(r < 0.6 ? 0x20 + int(0x5f) : r < 0.75 ? int(0x20) : r < 0.9 ? 0x80 + int(0x780) : int(0x10000));
    }
    return s;
  }
  function key(): string {
    const r = rnd();
    return r < 0.35 ? String(int(r < 0.1 ? 5 : 100_000)) : string();
  }
  function value(depth: number): unknown {
    const r = rnd();
    if (depth < 4 && r < 0.12) return Array.from({ length: int(5) }, () => value(depth + 1));
    if (depth < 4 && r < 0.24) {
      const obj: Record<string, unknown> = {};
      for (let i = int(5); i > 0; i--) obj[key()] = value(depth + 1);
      return obj;
    }
    switch (int(9)) {
      case 0: return int(200) - 100;
      case 1: return Math.trunc((rnd() - 0.5) * 2 * Number.MAX_SAFE_INTEGER);
      case 2: return BigInt(Math.trunc(rnd() * 1e6)) * 10n ** BigInt(10 + int(30)) * (rnd() < 0.5 ? -1n : 1n);
      case 3: case 4: return float();
      case 5: case 6: return string();
      case 7: return rnd() < 0.5 ? (rnd() < 0.5) : null;
      default: {
        const ms = Math.trunc(rnd() * 253_402_300_799_000) - 62_135_596_800_000 * (rnd() < 0.3 ? 1 : 0);
        return new Date(rnd() < 0.3 ? ms - (((ms % 1000) + 1000) % 1000) : ms);
      }
    }
  }
  return value;
}

function floatBits(value: number): string {
  const view = new DataView(new ArrayBuffer(8));
  view.setFloat64(0, value);
  return Buffer.from(view.buffer).toString('hex');
}

/** The Python value a JS value stands for (the mapping `dumpsPython` documents). */
function tag(value: unknown): Tagged {
  if (value === null) return ['n'];
  if (typeof value === 'boolean') return ['b', value];
  if (typeof value === 'string') return ['s', value];
  if (typeof value === 'bigint') return ['i', value.toString()];
  if (typeof value === 'number') return Number.isSafeInteger(value) && !Object.is(value, -0) ? ['i', String(value)] : ['f', floatBits(value)];
  if (value instanceof Date) return ['t', value.getTime()];
  if (Array.isArray(value)) return ['l', value.map(tag)];
  return ['d', Object.keys(value as object).map((k) => [k, tag((value as Record<string, unknown>)[k])])];
}

/** A dict of the same value with its keys in a shuffled (Python insertion) order. */
function shuffled(t: Tagged, rnd: () => number): Tagged {
  if (t[0] === 'l') return ['l', t[1].map((x) => shuffled(x, rnd))];
  if (t[0] !== 'd') return t;
  const pairs = t[1].map(([k, v]): [string, Tagged] => [k, shuffled(v, rnd)]);
  for (let i = pairs.length - 1; i > 0; i--) {
    const j = Math.floor(rnd() * (i + 1));
    [pairs[i], pairs[j]] = [pairs[j]!, pairs[i]!];
  }
  return ['d', pairs];
}

const PYTHON = `
import datetime, json, struct, sys
from kombu.utils.json import JSONEncoder
EPOCH = datetime.datetime(1970, 1, 1, tzinfo=datetime.timezone.utc)
def build(t):
    k = t[0]
    if k == 'i': return int(t[1])
    if k == 'f': return struct.unpack('>d', bytes.fromhex(t[1]))[0]
    if k in ('s', 'b'): return t[1]
    if k == 'n': return None
    if k == 't': return EPOCH + datetime.timedelta(milliseconds=t[1])
    if k == 'l': return [build(x) for x in t[1]]
    return {key: build(v) for key, v in t[1]}
out = [json.dumps(build(json.loads(line)), cls=JSONEncoder) for line in sys.stdin]
sys.stdout.write('\\n'.join(out) + '\\n')
`;

test(`dumpsPython matches Python json.dumps on ${CASES} random values; loadsPython→dumpsPython round-trips Python's bytes`, { skip: skip ?? false }, () => {
  const value = generator(SEED);
  const rnd = prng(SEED ^ 0xabcdef);
  const values = Array.from({ length: CASES }, () => value(0));
  // Line 2k: the value as JS holds it; line 2k+1: the same dicts in a shuffled insertion order.
  const lines = values.flatMap((v) => [JSON.stringify(tag(v)), JSON.stringify(shuffled(tag(v), rnd))]);
  const run = spawnSync(SYSTEM_PYTHON, ['-c', PYTHON], { input: lines.join('\n') + '\n', encoding: 'utf8', maxBuffer: 256 * 1024 * 1024, timeout: 60_000 });
  assert.equal(run.status, 0, `python failed: ${run.stderr}`);
  const python = run.stdout.split('\n');
  assert.equal(python.length, lines.length + 1);
  assert.ok(python.filter((line, i) => i % 2 === 1 && line !== python[i - 1]).length > 100, 'the shuffled dicts must differ in key order from the JS ones often');
  const mismatches: string[] = [];
  values.forEach((v, k) => {
    const ours = dumpsPython(v);
    const expected = python[2 * k]!;
    if (ours !== expected) mismatches.push(`value #${k}: ours   ${ours}\n            python ${expected}`);
    for (const text of [expected, python[2 * k + 1]!]) {
      const again = dumpsPython(loadsPython(text));
      if (again !== text) mismatches.push(`round trip #${k}: python ${text}\n            again  ${again}`);
    }
  });
  assert.equal(mismatches.length, 0, `${mismatches.length} mismatches, first ones:\n${mismatches.slice(0, 5).join('\n')}`);
});
