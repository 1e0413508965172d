/** Header and embed shapes are checked at decode; errors name the field. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { buildTaskMessage, decodeTaskMessage, MessageDecodeError } from '../packages/core/src/index.ts';
import type { TaskMessage } from '../packages/core/src/index.ts';

function deep(levels: number): unknown {
  let v: unknown = 'x';
  for (let i = 0; i < levels; i++) v = { v };
  return v;
}

function message(headers: Record<string, unknown> = {}, embed: unknown = { callbacks: null, errbacks: null, chain: null, chord: null }): TaskMessage {
  const m = buildTaskMessage({ taskName: 'tasks.add', taskId: 'id-1', args: [1, 2], kwargs: {}, origin: 'o', replyTo: 'r', serializer: 'json' });
  Object.assign(m.headers, headers);
  m.body = Buffer.from(JSON.stringify([[1, 2], {}, embed]));
  return m;
}

const sig = { task: 'tasks.add', args: [1], kwargs: {}, options: {}, subtask_type: null, immutable: false };

test('well-formed headers and embeds decode (including null / {} embed and absent optional headers)', () => {
  assert.equal(decodeTaskMessage(message(), ['json']).id, 'id-1');
  assert.deepEqual(decodeTaskMessage(message({}, null), ['json']).embed, { callbacks: null, errbacks: null, chain: null, chord: null });
  assert.deepEqual(decodeTaskMessage(message({}, {}), ['json']).embed, { callbacks: null, errbacks: null, chain: null, chord: null });
  const full = decodeTaskMessage(message({}, { callbacks: [sig], errbacks: [sig], chain: [], chord: sig }), ['json']);
  assert.deepEqual(full.embed.chain, []);
  assert.equal(full.embed.chord?.task, 'tasks.add');
  const minimal = buildTaskMessage({ taskName: 'tasks.add', taskId: 'id-2', args: [], kwargs: {}, origin: 'o', replyTo: 'r', serializer: 'json' });
  minimal.headers = { id: 'id-2', task: 'tasks.add' } as TaskMessage['headers'];
  assert.equal(decodeTaskMessage(minimal, ['json']).rootId, 'id-2');
});

const hostile: [string, TaskMessage, RegExp][] = [
  ['group: a 10^4-deep object', message({ group: deep(10_000) }), /Header "group" must be a string or null, got an object/],
  ['parent_id: a number', message({ parent_id: 7 }), /Header "parent_id" must be a string or null, got number 7/],
  ['root_id: a list', message({ root_id: ['a'] }), /Header "root_id" must be a string or null, got an array of 1/],
  ['id: a number', message({ id: 5 }), /Header "id" must be a non-empty string/],
  ['shadow: true', message({ shadow: true }), /Header "shadow" must be a string or null/],
  ['group_index: a string', message({ group_index: '1' }), /Header "group_index" must be an integer or null/],
  ['retries: -1', message({ retries: -1 }), /Header "retries" must be a non-negative integer/],
  ['timelimit: a string', message({ timelimit: 'soon' }), /Header "timelimit" must be a list \[hard, soft\]/],
  ['timelimit: negative', message({ timelimit: [-1, null] }), /Header "timelimit" hard limit must be a number of seconds ≥ 0 or null/],
  ['errbacks: a number (not iterable)', message({}, { callbacks: null, errbacks: 5, chain: null, chord: null }), /embed\.errbacks must be a list of signature dicts or null, got number 5/],
  ['callbacks: a list of strings', message({}, { callbacks: ['tasks.add'], errbacks: null, chain: null, chord: null }), /embed\.callbacks\[0\] must be a signature dict/],
  ['chain: a dict', message({}, { callbacks: null, errbacks: null, chain: sig, chord: null }), /embed\.chain must be a list of signature dicts or null, got an object/],
  ['chord: a list', message({}, { callbacks: null, errbacks: null, chain: null, chord: [sig] }), /embed\.chord must be a signature dict/],
  ['callbacks[0].task missing', message({}, { callbacks: [{ args: [] }], errbacks: null, chain: null, chord: null }), /embed\.callbacks\[0\]\.task must be a non-empty string/],
  ['chain[1].args a dict', message({}, { callbacks: null, errbacks: null, chain: [sig, { ...sig, args: {} }], chord: null }), /embed\.chain\[1\]\.args must be a list/],
  ['embed: a string', message({}, 'nope'), /Task body embed must be a dict/],
];

for (const [name, m, expected] of hostile) {
  test(`rejected at decode, naming the field: ${name}`, () => {
    assert.throws(() => decodeTaskMessage(m, ['json']), (err: Error) => {
      assert.ok(err instanceof MessageDecodeError, `${err.name}: ${err.message}`);
      assert.match(err.message, expected);
      assert.match(err.message, /fix the producer/);
      return true;
    });
  });
}

test('timelimit: 0 and Infinity mean no limit; large limits are kept as given', () => {
  assert.deepEqual(decodeTaskMessage(message({ timelimit: [0, Infinity] }), ['json']).timeLimit, [null, null]);
  assert.deepEqual(decodeTaskMessage(message({ timelimit: [3_000_000, 2.5] }), ['json']).timeLimit, [3_000_000, 2.5]);
  assert.deepEqual(decodeTaskMessage(message({ timelimit: null }), ['json']).timeLimit, [null, null]);
});
