/**
 * `dumpsPython` / `loadsPython` against Python's own `json` module: exact forms
 * (exponents, -0.0, key order, dates) and the lenient parser's safety.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { dumpsPython, loadsPython } from '../packages/core/src/index.ts';

test('lenient parser (16+ digit integers): a "__proto__" key is an own property, never the prototype', () => {
  const text = '{"__proto__": {"polluted": true}, "big": 12345678901234567890, "nested": [{"__proto__": null}]}';
  const parsed = loadsPython(text) as Record<string, unknown>;
  assert.equal(Object.getPrototypeOf(parsed), Object.prototype, 'prototype unchanged');
  assert.equal((parsed as { polluted?: unknown }).polluted, undefined, 'nothing inherited from the payload');
  assert.ok(Object.prototype.hasOwnProperty.call(parsed, '__proto__'), '__proto__ kept as data');
  assert.deepEqual(Object.getOwnPropertyDescriptor(parsed, '__proto__')?.value, { polluted: true });
  const inner = (parsed.nested as Record<string, unknown>[])[0]!;
  assert.equal(Object.getPrototypeOf(inner), Object.prototype);
  assert.ok(Object.prototype.hasOwnProperty.call(inner, '__proto__'));
  assert.equal(parsed.big, 12345678901234567890n);
  // Same as the strict path (JSON.parse) and written back unchanged.
  assert.equal(dumpsPython(parsed), text);
  assert.deepEqual(Object.keys(loadsPython('{"__proto__": 1, "x": NaN}') as object), ['__proto__', 'x']);
  assert.equal(({} as { polluted?: unknown }).polluted, undefined, 'Object.prototype untouched');
});

test('numbers are written as Python writes them (exponents, -0.0, big floats)', () => {
  const cases: [number | bigint, string][] = [
    [2, '2'], [-7, '-7'], [0, '0'], [-0, '-0.0'], [0.5, '0.5'], [0.1 + 0.2, '0.30000000000000004'],
    [1e-5, '1e-05'], [0.0001, '0.0001'], [9.99e-5, '9.99e-05'], [1.5e-7, '1.5e-07'], [5e-324, '5e-324'],
    [1e16, '1e+16'], [1e22, '1e+22'], [123456789012345678, '1.2345678901234568e+17'], [2 ** 53 + 2, '9007199254740994.0'],
    [1.7976931348623157e308, '1.7976931348623157e+308'], [-2.5e-300, '-2.5e-300'], [9007199254740993n, '9007199254740993'],
    [NaN, 'NaN'], [-Infinity, '-Infinity'],
  ];
  for (const [value, python] of cases) assert.equal(dumpsPython(value), python, `${String(value)}`);
});

test('aware datetimes as kombu writes them: Z, microseconds omitted when zero', () => {
  assert.equal(dumpsPython(new Date('2024-05-06T07:08:09Z')), '"2024-05-06T07:08:09Z"');
  assert.equal(dumpsPython(new Date('2024-05-06T07:08:09.123Z')), '"2024-05-06T07:08:09.123000Z"');
});

test('integer-like keys keep the order they had on the wire', () => {
  const text = '{"b": 1, "2": {"10": true, "9": [], "x": null}, "1": 3, "a": {"0": 0}}';
  const parsed = loadsPython(text) as Record<string, unknown>;
  assert.deepEqual(Object.keys(parsed), ['1', '2', 'b', 'a'], 'JS enumerates array-index keys first');
  assert.equal(dumpsPython(parsed), text);
  // Changed after parsing: written in JS order (the recorded order no longer describes it).
  parsed.c = 4;
  assert.equal(dumpsPython(parsed), '{"1": 3, "2": {"10": true, "9": [], "x": null}, "b": 1, "a": {"0": 0}, "c": 4}');
});
