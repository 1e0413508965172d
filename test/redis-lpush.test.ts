/** The prebuilt LPUSH of envelopes: the bytes ioredis itself would send for `lpush(key, ...envelopes)`. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Command } from 'ioredis';
import { EnvelopeLpush, encodeLpush } from '../packages/core/src/brokers/redis-lpush.ts';

function ioredisBytes(key: string, values: string[]): Buffer {
  const writable = new Command('lpush', [key, ...values]).toWritable({});
  return typeof writable === 'string' ? Buffer.from(writable, 'utf8') : writable;
}

test('encodeLpush writes what ioredis writes for the same LPUSH (ASCII envelopes, any key)', () => {
  const envelopes = ['{"body": ""}', '', 'x'.repeat(9), 'y'.repeat(10), 'z'.repeat(1234), '{"a": "\\u00e9"}'];
  for (const key of ['celery', 'celery\x06\x163', 'queue-é', '']) {
    assert.deepEqual(encodeLpush(key, envelopes), ioredisBytes(key, envelopes));
    assert.deepEqual(encodeLpush(key, [envelopes[4]!]), ioredisBytes(key, [envelopes[4]!]));
  }
});

test('EnvelopeLpush is an ioredis lpush command on its key whose writable is the prebuilt bytes', () => {
  const cmd = new EnvelopeLpush('celery', ['{}', '{"x": 1}']);
  assert.equal(cmd.name, 'lpush');
  assert.deepEqual(cmd.args, ['celery']);
  assert.deepEqual(cmd.toWritable(), ioredisBytes('celery', ['{}', '{"x": 1}']));
});
