/**
 * Bad input on a real Redis: each poison message is logged with a clear error,
 * rejected (removed, nothing else lost), and the worker keeps serving.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { deflateSync } from 'node:zlib';
import { Redis } from 'ioredis';
import { pino } from 'pino';
import { createApp, States, Worker } from '../packages/core/src/index.ts';
import { fixture } from './helpers/fixtures.ts';
import { missing, REDIS_SERVER, startRedis, type RedisServer } from './helpers/services.ts';

const skip = missing(REDIS_SERVER, 'apt-get install redis-server');
let redis: RedisServer;
let client: Redis;
let worker: Worker;
const logs: { level: number; msg: string }[] = [];
const app = createApp('badinput');
const add = app.task('tasks.add', (x: number, y: number) => x + y);
let countRuns = 0;
app.task('tasks.count', () => ++countRuns);

before(async () => {
  if (skip) return;
  redis = await startRedis();
  client = new Redis(redis.url(0));
  app.configure({ brokerUrl: redis.url(0), resultBackend: redis.url(1), maxMessageSize: 32_768 });
  const logger = pino({ level: 'info' }, { write: (line: string) => void logs.push(JSON.parse(line)) });
  worker = new Worker(app, { concurrency: 2, logger });
  await worker.start();
});

after(async () => {
  if (skip) return;
  await worker.stop();
  await app.close();
  client.disconnect();
  await redis.stop();
});

/** Push a raw list element like a (possibly broken) producer would, then prove the worker still serves. */
async function pushAndExpectRejected(raw: string, expectedLog: RegExp): Promise<void> {
  const rejectedBefore = worker.stats.rejected;
  const runsBefore = countRuns;
  logs.length = 0;
  await client.lpush('celery', raw);
  const deadline = Date.now() + 5000;
  while (worker.stats.rejected === rejectedBefore) {
    if (Date.now() > deadline) throw new Error('the worker did not reject the message');
    await new Promise((r) => setTimeout(r, 10));
  }
  const errors = logs.filter((l) => l.level >= 50).map((l) => l.msg);
  assert.ok(errors.some((m) => expectedLog.test(m)), `expected an error log matching ${expectedLog}, got: ${JSON.stringify(errors)}`);
  // Still serving:
  assert.equal(await (await add.delay(20, 22)).get({ timeout: 5000 }), 42);
  // Nothing left behind: not in the queue, not unacked.
  assert.equal(await client.llen('celery'), 0);
  assert.equal(await client.hlen('unacked'), 0);
  assert.equal(await client.zcard('unacked_index'), 0);
  // Rejected once, never run.
  assert.equal(worker.stats.rejected, rejectedBefore + 1, 'rejected exactly once');
  assert.equal(countRuns, runsBefore, 'the rejected message never ran');
}

function validEnvelope(overrides: { headers?: Record<string, unknown>; body?: string; contentType?: string; task?: string } = {}): string {
  const id = crypto.randomUUID();
  return JSON.stringify({
    body: overrides.body ?? Buffer.from(JSON.stringify([[1, 2], {}, { callbacks: null, errbacks: null, chain: null, chord: null }])).toString('base64'),
    'content-encoding': 'utf-8',
    'content-type': overrides.contentType ?? 'application/json',
    headers: { lang: 'py', task: overrides.task ?? 'tasks.add', id, root_id: id, retries: 0, ...overrides.headers },
    properties: { correlation_id: id, delivery_mode: 2, delivery_info: { exchange: '', routing_key: 'celery' }, priority: 0, body_encoding: 'base64', delivery_tag: crypto.randomUUID() },
  });
}

test('malformed JSON envelope', { skip: skip ?? false }, async () => {
  await pushAndExpectRejected('{"body": "W1sx', /undecodable message/);
});

test('bad base64 body', { skip: skip ?? false }, async () => {
  await pushAndExpectRejected(validEnvelope({ body: '***not base64***' }), /undecodable message.*base64/i);
});

test('malformed body (not [args, kwargs, embed])', { skip: skip ?? false }, async () => {
  await pushAndExpectRejected(validEnvelope({ body: Buffer.from('[[1], {}]').toString('base64') }), /invalid task message.*3 elements/);
});

test('unknown task name: rejected and FAILURE NotRegistered stored', { skip: skip ?? false }, async () => {
  const raw = validEnvelope({ headers: { task: 'tasks.nobody_has_this' } });
  const id = JSON.parse(raw).headers.id as string;
  await pushAndExpectRejected(raw, /unregistered task of type "tasks.nobody_has_this"/);
  const r = app.AsyncResult(id);
  await assert.rejects(r.get({ timeout: 2000 }), (err: Error) => err.name === 'NotRegistered' && err.message === 'tasks.nobody_has_this');
  assert.equal(await r.state, States.FAILURE);
});

test('disallowed content type (pickle, as Celery captured it)', { skip: skip ?? false }, async () => {
  const { messages } = fixture<{ messages: { raw: string }[] }>('producer-redis/16_serializer_pickle.json');
  await pushAndExpectRejected(messages[0]!.raw, /invalid task message.*pickle.*acceptContent/);
});

test('protocol v1 message (as Celery captured it)', { skip: skip ?? false }, async () => {
  const { messages } = fixture<{ messages: { raw: string }[] }>('producer-redis/31_protocol_v1.json');
  await pushAndExpectRejected(messages[0]!.raw, /protocol v1 message.*workerAcceptProtocolV1/);
});

test('message larger than maxMessageSize', { skip: skip ?? false }, async () => {
  const big = Buffer.from(JSON.stringify([['x'.repeat(40_000), 1], {}, { callbacks: null, errbacks: null, chain: null, chord: null }])).toString('base64');
  await pushAndExpectRejected(validEnvelope({ body: big }), /exceeds maxMessageSize \(32768\)/);
});

/** A v2 body for tasks.count with the given embed. */
function bodyWithEmbed(embed: unknown): string {
  return Buffer.from(JSON.stringify([[], {}, embed])).toString('base64');
}

test('a non-iterable errbacks is rejected at decode (it used to re-run the task forever)', { skip: skip ?? false }, async () => {
  const raw = validEnvelope({ task: 'tasks.count', body: bodyWithEmbed({ callbacks: null, errbacks: 5, chain: null, chord: null }) });
  await pushAndExpectRejected(raw, /invalid task message: embed\.errbacks must be a list of signature dicts or null, got number 5/);
});

test('callbacks that are not signature dicts are rejected at decode', { skip: skip ?? false }, async () => {
  const raw = validEnvelope({ task: 'tasks.count', body: bodyWithEmbed({ callbacks: ['tasks.add'], errbacks: null, chain: null, chord: null }) });
  await pushAndExpectRejected(raw, /invalid task message: embed\.callbacks\[0\] must be a signature dict/);
});

test('a 10^4-deep value in the group header is rejected at decode (it used to poison the result batch)', { skip: skip ?? false }, async () => {
  const depth = 10_000;
  const raw = validEnvelope({ task: 'tasks.count', headers: { group: '@DEEP@' } }).replace('"@DEEP@"', '['.repeat(depth) + ']'.repeat(depth));
  await pushAndExpectRejected(raw, /invalid task message: Header "group" must be a string or null, got an array of 1/);
});

test('a non-string parent_id header is rejected at decode', { skip: skip ?? false }, async () => {
  await pushAndExpectRejected(validEnvelope({ task: 'tasks.count', headers: { parent_id: 12 } }), /invalid task message: Header "parent_id" must be a string or null, got number 12/);
});

test('an oversized message is rejected from its raw size, before parsing (even when it is not JSON)', { skip: skip ?? false }, async () => {
  await pushAndExpectRejected('{' + 'x'.repeat(40_000), /A message of 40001 bytes from queue celery exceeds maxMessageSize \(32768\); rejected/);
});

test('an oversized message is rejected by its task id, and the task gets FAILURE instead of PENDING forever', { skip: skip ?? false }, async () => {
  const id = crypto.randomUUID();
  const big = Buffer.from(JSON.stringify([['x'.repeat(200_000)], {}, { callbacks: null, errbacks: null, chain: null, chord: null }])).toString('base64');
  const raw = validEnvelope({ body: big, headers: { id } });
  await pushAndExpectRejected(raw, new RegExp(`Message ${id} of ${raw.length} bytes from queue celery exceeds maxMessageSize \\(32768\\); rejected`));
  const results = new Redis(redis.url(1));
  try {
    let doc: string | null = null;
    for (const deadline = Date.now() + 5000; !doc && Date.now() < deadline; ) {
      doc = await results.get(`celery-task-meta-${id}`);
      if (!doc) await new Promise((r) => setTimeout(r, 20));
    }
    const stored = JSON.parse(doc ?? 'null') as { status: string; result: { exc_type: string; exc_message: string[] } } | null;
    assert.equal(stored?.status, States.FAILURE);
    assert.equal(stored.result.exc_type, 'MessageTooLarge');
    assert.match(stored.result.exc_message[0]!, /exceeds maxMessageSize \(32768\)/);
  } finally {
    results.disconnect();
  }
});

test('a zlib bomb is rejected while inflating, at maxMessageSize', { skip: skip ?? false }, async () => {
  const inflated = Buffer.concat([Buffer.from('[["'), Buffer.alloc(20 * 1024 * 1024, 0x61), Buffer.from('"], {}, null]')]);
  const raw = validEnvelope({ task: 'tasks.count', body: deflateSync(inflated).toString('base64'), headers: { compression: 'application/x-gzip' } });
  assert.ok(raw.length < 32_768, `the compressed message itself is small (${raw.length} bytes)`);
  await pushAndExpectRejected(raw, /invalid task message: Decompressed body \(application\/x-gzip\) is larger than 32768 bytes \(maxMessageSize\)/);
});
