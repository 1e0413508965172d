/**
 * Canvas messages byte for byte against Celery 5.2's own (captures in
 * test/fixtures/celery-5.2/producer-redis/: 20_chain, 21_group, 22_chord, 29_chain_with_link_error),
 * sent by a Celeriac producer to a real redis-server with no worker running:
 * the body text (embed.chain reversed with each step's task_id and reply_to,
 * embed.chord), the canvas headers (group, group_index, root_id, parent_id) and
 * the chord size key.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { Redis } from 'ioredis';
import { chain, chord, createApp, Group } from '../packages/core/src/index.ts';
import { fixture } from './helpers/fixtures.ts';
import { missing, REDIS_SERVER, startRedis, type RedisServer } from './helpers/services.ts';

const skip = missing(REDIS_SERVER, 'apt-get install redis-server');
const app = createApp('canvas-wire');
const add = app.task('tasks.add', (x: number, y: number) => x + y);
const xsum = app.task('tasks.xsum', (xs: number[]) => xs.reduce((a, b) => a + b, 0));
const onError = app.task('tasks.on_error', (id: string) => id);
const PY_OID = '432b570d-e9d2-3911-8d41-98a69453ef49';
const id = (n: number) => `00000000-0000-4000-8000-0000000000${String(n).padStart(2, '0')}`;
let redis: RedisServer;
let broker: Redis;
let backend: Redis;

interface Capture {
  messages: { envelope: { headers: Record<string, unknown> }; body_text: string }[];
}

before(async () => {
  if (skip) return;
  redis = await startRedis();
  app.configure({ brokerUrl: redis.url(0), resultBackend: redis.url(1) });
  broker = new Redis(redis.url(0));
  backend = new Redis(redis.url(1));
});
after(async () => {
  if (skip) return;
  await app.close();
  broker.disconnect();
  backend.disconnect();
  await redis.stop();
});

/** The messages now in the `celery` list, oldest first: headers and body text. */
async function sent(): Promise<{ headers: Record<string, unknown>; body: string }[]> {
  const raw = await broker.lrange('celery', 0, -1);
  await broker.del('celery');
  return raw.reverse().map((r) => {
    const env = JSON.parse(r) as { body: string; headers: Record<string, unknown> };
    return { headers: env.headers, body: Buffer.from(env.body, 'base64').toString('utf8') };
  });
}

/** Celery's body text with its process oid replaced by ours. */
const expectedBody = (text: string) => text.replaceAll(PY_OID, app.oid);
const canvasHeaders = (h: Record<string, unknown>) => ({ id: h.id, group: h.group, group_index: h.group_index, root_id: h.root_id, parent_id: h.parent_id });

test('chain: the first message carries the rest reversed, each step with task_id and reply_to (20_chain)', { skip: skip ?? false }, async () => {
  const capture = fixture<Capture>('producer-redis/20_chain.json');
  await chain(add.s(2, 2).set({ task_id: id(11) }), add.s(4).set({ task_id: id(12) }), add.s(8).set({ task_id: id(13) })).delay();
  const [msg, ...rest] = await sent();
  assert.equal(rest.length, 0, 'only the first step is sent');
  assert.equal(msg!.body, expectedBody(capture.messages[0]!.body_text));
  assert.deepEqual(canvasHeaders(msg!.headers), canvasHeaders(capture.messages[0]!.envelope.headers));
});

test('chain.onError: link_error on every step, in the same place Celery puts it (29_chain_with_link_error)', { skip: skip ?? false }, async () => {
  const capture = fixture<Capture>('producer-redis/29_chain_with_link_error.json');
  await chain(add.s(1, 1).set({ task_id: id(41) }), add.s(2).set({ task_id: id(42) })).onError(onError.s()).delay();
  const [msg] = await sent();
  assert.equal(msg!.body, expectedBody(capture.messages[0]!.body_text));
});

test('group: one message per member with the group id, group_index null (21_group)', { skip: skip ?? false }, async () => {
  const capture = fixture<Capture>('producer-redis/21_group.json');
  await new Group([add.s(1, 1).set({ task_id: id(21) }), add.s(2, 2).set({ task_id: id(22) }), add.s(3, 3).set({ task_id: id(23) })]).applyAsync([], {}, { taskId: id(20) });
  const msgs = await sent();
  assert.equal(msgs.length, 3);
  msgs.forEach((m, i) => {
    assert.equal(m.body, expectedBody(capture.messages[i]!.body_text));
    assert.deepEqual(canvasHeaders(m.headers), canvasHeaders(capture.messages[i]!.envelope.headers));
  });
});

test('chord: header members carry embed.chord and group_index; the size is stored first (22_chord)', { skip: skip ?? false }, async () => {
  const capture = fixture<Capture & { backend_db_keys_after: Record<string, { ttl: number; value: string }> }>('producer-redis/22_chord.json');
  const header = new Group([add.s(1, 1).set({ task_id: id(31) }), add.s(2, 2).set({ task_id: id(32) }), add.s(3, 3).set({ task_id: id(33) })], { task_id: id(30) });
  const res = await chord(header, xsum.s().set({ task_id: id(34) })).delay();
  assert.equal(res.id, id(34));
  const msgs = await sent();
  assert.equal(msgs.length, 3, 'the body is not sent now');
  msgs.forEach((m, i) => {
    assert.equal(m.body, expectedBody(capture.messages[i]!.body_text));
    assert.deepEqual(canvasHeaders(m.headers), canvasHeaders(capture.messages[i]!.envelope.headers));
  });
  const key = `celery-taskset-meta-${id(30)}.s`;
  assert.equal(await backend.get(key), capture.backend_db_keys_after[key]!.value);
  assert.ok((await backend.ttl(key)) > 86_000);
});
