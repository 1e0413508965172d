/**
 * Serializers and compression without servers: msgpack and yaml with kombu's
 * conventions (bytes on the wire and values back), pickle refused with an error
 * naming acceptContent, acceptContent / resultAcceptContent checked at worker
 * start, a custom serializer end to end on memory://, per-task serializer and
 * compression on the message, bzip2 and xz bombs stopped at the bound.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ConfigurationError, ContentDisallowed, createApp, MessageTooLarge, Worker, type TaskMessage } from '../packages/core/src/index.ts';
import { RedisBackend } from '../packages/core/src/backends/redis.ts';
import { checkAcceptContent, compress, decompress, getSerializer, registerSerializer } from '../packages/core/src/protocol/serialization.ts';

test('msgpack: plain msgpack as kombu writes it (no msgpackr records), wide integers as int64, values back', () => {
  const mp = getSerializer('msgpack');
  assert.equal(mp.contentType, 'application/x-msgpack');
  assert.equal(mp.contentEncoding, 'binary');
  // {"a": 1, "b": "x"} exactly as Python's msgpack.packb(..., use_bin_type=True) writes it.
  assert.equal(mp.encode({ a: 1, b: 'x' }).toString('hex'), '82a16101a162a178');
  // 2**40 as a uint64 (0xcf), not a float64 (0xcb): Python reads an int.
  assert.match(mp.encode(2 ** 40).toString('hex'), /^(cf|d3)0000010000000000$/);
  assert.equal(mp.encode(-(2 ** 40))[0], 0xd3);
  assert.equal(mp.encode(1.5)[0], 0xcb);
  const when = new Date('2024-05-06T07:08:09.123Z');
  const back = mp.decode(mp.encode([2n ** 63n - 1n, Buffer.from('ab'), when, new Map([['k', 1]]), null, [2 ** 40]])) as unknown[];
  assert.deepEqual(back, [2n ** 63n - 1n, Buffer.from('ab'), when, { k: 1 }, null, [2 ** 40]]);
});

test('yaml: dates, binary, and keys PyYAML writes plain (n, y) read as strings', () => {
  const y = getSerializer('yaml');
  assert.equal(y.contentType, 'application/x-yaml');
  const when = new Date('2024-05-06T07:08:09.000Z');
  assert.deepEqual(y.decode(y.encode({ when, n: 'yes', list: [1, 1.5, null, true] })), { when, n: 'yes', list: [1, 1.5, null, true] });
  // PyYAML's safe_dump of {'n': -3, 'y': 'on'}: YAML 1.1 readers must not turn the keys into booleans.
  assert.deepEqual(y.decode(Buffer.from("n: -3\ny: 'on'\n")), { n: -3, y: 'on' });
  assert.match(y.encode(['yes', 'n']).toString(), /- 'yes'\n- 'n'/, 'strings YAML 1.1 would take for booleans are quoted');
});

test('yaml: a Map is written as a mapping, a BigInt in the 53-bit range as an int; a wider BigInt is refused saying what to use', () => {
  const y = getSerializer('yaml');
  assert.equal(y.encode({ m: new Map<unknown, unknown>([['a', 1], [2, [3n]]]) }).toString(), "m:\n  '2':\n    - 3\n  a: 1\n");
  assert.deepEqual(y.decode(y.encode([new Map([['k', 2n ** 53n - 1n]])])), [{ k: 2 ** 53 - 1 }]);
  assert.throws(() => y.encode({ n: [2n ** 64n] }), /yaml serializer cannot carry the integer 18446744073709551616 \(value\.n\[0\]\) exactly: send it with json or msgpack, or as a string/);
});

test('pickle is refused everywhere with a clear error', () => {
  assert.throws(() => getSerializer('pickle'), (err: Error) => err instanceof ContentDisallowed && /does not serialize with pickle/.test(err.message));
  assert.throws(() => checkAcceptContent(['json', 'pickle']), (err: Error) => err instanceof ConfigurationError && /acceptContent lists pickle/.test(err.message));
  assert.throws(() => registerSerializer({ name: 'pickle', contentType: 'application/x-python-serialize', contentEncoding: 'binary', encode: () => Buffer.alloc(0), decode: () => null }), /pickle cannot be registered/);
  assert.throws(() => checkAcceptContent(['bson']), /acceptContent lists "bson", which has no decoder/);
});

test('the worker checks acceptContent and resultAcceptContent at start-up', async () => {
  const app = createApp('accept-check', { brokerUrl: 'memory://accept-check', acceptContent: ['json', 'pickle'] });
  await assert.rejects(new Worker(app, { logLevel: 'silent' }).start(), /acceptContent lists pickle/);
  app.configure({ acceptContent: ['json'], resultAcceptContent: ['json', 'protobuf'] });
  await assert.rejects(new Worker(app, { logLevel: 'silent' }).start(), /resultAcceptContent lists "protobuf"/);
  await app.close();
});

test('a resultSerializer that resultAcceptContent does not list is refused when the backend is made', () => {
  assert.throws(() => new RedisBackend('redis://127.0.0.1:1/0', { serializer: 'msgpack', accept: ['json'] }), /resultSerializer msgpack is not in resultAcceptContent \(json\)/);
});

test('a custom serializer, registered once, carries a task there and back on memory://', async () => {
  registerSerializer({
    name: 'reversed-json',
    contentType: 'application/x-reversed-json',
    contentEncoding: 'utf-8',
    encode: (value) => Buffer.from(JSON.stringify(value).split('').reverse().join('')),
    decode: (body) => JSON.parse(body.toString().split('').reverse().join('')),
  });
  const app = createApp('custom-ser', { brokerUrl: 'memory://custom-ser', acceptContent: ['json', 'reversed-json', 'msgpack'] });
  app.task('c.add', (x: number, y: number) => x + y, { serializer: 'reversed-json', compression: 'bzip2' });
  const sent: TaskMessage[] = [];
  const broker = await app.getBroker();
  const publish = broker.publish.bind(broker);
  broker.publish = async (message, route) => (sent.push(message), publish(message, route));
  const worker = new Worker(app, { concurrency: 1, logLevel: 'silent' });
  await worker.start();
  try {
    assert.equal(await (await app.sendTask('c.add', [2, 3])).get({ timeout: 5000 }), 5);
    assert.equal(sent[0]!.contentType, 'application/x-reversed-json', 'the task option chose the serializer');
    assert.equal(sent[0]!.headers.compression, 'application/x-bz2', 'and the compression');
    // Per call wins over the task's options.
    assert.equal(await (await app.sendTask('c.add', [4, 5], {}, { serializer: 'msgpack', compression: 'xz' })).get({ timeout: 5000 }), 9);
    assert.equal(sent[1]!.contentType, 'application/x-msgpack');
    assert.equal(sent[1]!.headers.compression, 'application/x-lzma');
  } finally {
    await worker.stop();
    await app.close();
  }
});

test('bzip2 and xz: Celery header values, round trip, and bombs stopped at the bound', () => {
  const body = Buffer.from('celery '.repeat(5000));
  for (const [name, header] of [
    ['bzip2', 'application/x-bz2'],
    ['bzip', 'application/x-bz2'],
    ['xz', 'application/x-lzma'],
    ['lzma', 'application/x-lzma'],
  ] as const) {
    const c = compress(body, name);
    assert.equal(c.header, header);
    assert.ok(c.body.length < body.length / 10, `${name} compresses`);
    assert.ok(decompress(c.body, c.header).equals(body));
  }
  const zeros = Buffer.alloc(4 * 1024 * 1024);
  for (const name of ['bzip2', 'xz']) {
    const bomb = compress(zeros, name);
    assert.ok(bomb.body.length < 64 * 1024, `${name} bomb is small (${bomb.body.length} bytes)`);
    assert.throws(() => decompress(bomb.body, bomb.header, 64 * 1024), (err: Error) => err instanceof MessageTooLarge && /maxMessageSize/.test(err.message));
  }
});
