/**
 * The envelope writer reuses the text of members that did not change since the
 * previous message: whatever changes between messages (values, -0, arrays mutated in
 * place, keys added, removed or reordered), each envelope must be byte for byte
 * `dumpsPython` of the whole kombu document.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { EnvelopeWriter } from '../packages/core/src/brokers/envelope-writer.ts';
import { encodeEnvelope, encodeEnvelopeWhole } from '../packages/core/src/brokers/redis-envelope.ts';
import type { TaskMessage } from '../packages/core/src/protocol/message.ts';

const TRANSPORT = new Set(['delivery_info', 'body_encoding', 'delivery_tag', 'priority']);

/** What `dumpsPython` of the whole envelope document writes (the reference). */
function reference(message: TaskMessage, route: { exchange: string; routingKey: string; priority: number }, tag: string): string {
  return encodeEnvelopeWhole(message, route, { deliveryTag: tag });
}

/** Deterministic PRNG (mulberry32). */
function rng(seed: number): () => number {
  let a = seed;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const VALUES: unknown[] = [null, 0, -0, 1, 2.5, NaN, 1e21, 'a', 'é\n"', '', true, false, [null, null], [1, null], [0], [-0], [], { a: 1 }, [{ b: 2 }], 10n ** 20n, undefined, [1, 2, 3]];

test('a writer reused across messages writes what dumpsPython writes, whatever changes between them', () => {
  const rand = rng(42);
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rand() * xs.length)]!;
  const writer = new EnvelopeWriter();
  const keys = ['lang', 'task', 'id', 'shadow', 'eta', 'timelimit', 'argsrepr', '7', 'x-custom', 'priority'];
  let headers: Record<string, unknown> = { lang: 'py', task: 'tasks.add', id: 'a', timelimit: [null, null] };
  let properties: Record<string, unknown> = { correlation_id: 'a', reply_to: 'r', delivery_mode: 2, priority: 0 };
  const shared = [null, null] as unknown[];
  for (let i = 0; i < 5000; i++) {
    const action = rand();
    if (action < 0.4) headers[pick(keys)] = pick(VALUES);
    else if (action < 0.5) delete headers[pick(keys)];
    else if (action < 0.6) headers = Object.fromEntries(Object.entries(headers).reverse());
    else if (action < 0.7) {
      // The same array object, changed in place: must not be taken for the last one.
      shared[Math.floor(rand() * 2)] = pick([null, 1, 'x', -0, 0]);
      headers.timelimit = shared;
    } else if (action < 0.8) properties[pick(['correlation_id', 'reply_to', 'expiration', 'delivery_mode', 'priority', 'body_encoding'])] = pick(VALUES);
    else if (action < 0.85) properties = { ...properties };
    const message: TaskMessage = {
      headers: headers as TaskMessage['headers'],
      properties,
      contentType: pick(['application/json', 'application/x-msgpack']),
      contentEncoding: pick(['utf-8', 'binary']),
      body: Buffer.from(`[[${i}], {}, {}]`),
    };
    const route = { exchange: pick(['', 'tasks']), routingKey: pick(['celery', 'q"2']), priority: pick([0, 3, -0, 9]) };
    assert.ok(EnvelopeWriter.fits(message, route));
    assert.equal(writer.encode(message, route, TRANSPORT, `tag-${i}`), reference(message, route, `tag-${i}`), `message ${i}`);
  }
});

test('encodeEnvelope: objects the writer does not take (toJSON, Map, a class) still encode as dumpsPython does', () => {
  const route = { exchange: '', routingKey: 'celery' };
  const body = Buffer.from('[[], {}, {}]');
  const base = { properties: { correlation_id: 'c', reply_to: 'r', delivery_mode: 2, priority: 0 }, contentType: 'application/json', contentEncoding: 'utf-8', body };
  class Headers {
    lang = 'py';
    task = 't';
  }
  for (const headers of [{ toJSON: () => ({ lang: 'py' }) }, new Headers(), Object.assign(Object.create(null) as object, { lang: 'py' })]) {
    const message = { ...base, headers } as unknown as TaskMessage;
    const first = encodeEnvelope(message, route, { deliveryTag: 't' });
    assert.equal(first, reference(message, { ...route, priority: 0 }, 't'));
    assert.equal(encodeEnvelope(message, route, { deliveryTag: 't' }), first);
  }
});

test('an unencodable header names its path in the envelope', () => {
  const message = {
    headers: { lang: 'py', bad: new Uint8Array(1) },
    properties: {},
    contentType: 'application/json',
    contentEncoding: 'utf-8',
    body: Buffer.from('[]'),
  } as unknown as TaskMessage;
  assert.throws(() => encodeEnvelope(message, { exchange: '', routingKey: 'celery' }), /Cannot JSON-encode Uint8Array at \$\.headers\.bad/);
});
