/**
 * Wire date formats (protocol/time.ts), including the one-entry memo of the last
 * formatted millisecond: repeated, alternating and whole-second times all come out
 * as Python's isoformat.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { formatHeaderDate, formatNaiveUtc } from '../packages/core/src/protocol/time.ts';

test('naive and header dates: microseconds from milliseconds, omitted on a whole second, memo never stale', () => {
  const a = new Date('2026-11-23T06:34:32.852Z');
  const b = new Date('2026-11-23T06:34:33.000Z');
  const c = new Date('2026-11-23T06:34:32.853Z');
  const seq = [a, a, new Date(a.getTime()), b, a, c, c, b];
  assert.deepEqual(seq.map(formatNaiveUtc), [
    '2026-11-23T06:34:32.852000',
    '2026-11-23T06:34:32.852000',
    '2026-11-23T06:34:32.852000',
    '2026-11-23T06:34:33',
    '2026-11-23T06:34:32.852000',
    '2026-11-23T06:34:32.853000',
    '2026-11-23T06:34:32.853000',
    '2026-11-23T06:34:33',
  ]);
  assert.equal(formatHeaderDate(a), '2026-11-23T06:34:32.852000+00:00');
  assert.equal(formatHeaderDate(b), '2026-11-23T06:34:33+00:00');
});
