/** kombu's Redis envelope: byte-for-byte encoding and tolerant, strict-where-it-matters decoding. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { decodeEnvelope, encodeEnvelope } from '../packages/core/src/brokers/redis-envelope.ts';
import { MessageDecodeError } from '../packages/core/src/errors.ts';
import type { WireSignature } from '../packages/core/src/protocol/message.ts';
import { buildTaskMessage, type TaskMessageSpec } from '../packages/core/src/protocol/task-message.ts';
import { fixture, fixtureNames } from './helpers/fixtures.ts';

interface Captured {
  case: string;
  messages: { raw: string; redis_key: string }[];
}
interface Interop {
  case: string;
  raw: string;
}

const ORIGIN = 'gen9501@vm';
const REPLY_TO = '432b570d-e9d2-3911-8d41-98a69453ef49';
const FIXED_ID = '00000000-0000-4000-8000-000000000001';

function captured(name: string): { raw: string; tag: string } {
  const raw = fixture<Captured>(`producer-redis/${name}.json`).messages[0]!.raw;
  const tag = (JSON.parse(raw) as { properties: { delivery_tag: string } }).properties.delivery_tag;
  return { raw, tag };
}

function spec(overrides: Partial<TaskMessageSpec>): TaskMessageSpec {
  return { taskName: 'tasks.add', taskId: FIXED_ID, args: [2, 2], kwargs: {}, origin: ORIGIN, replyTo: REPLY_TO, serializer: 'json', ...overrides };
}

const celery = { exchange: '', routingKey: 'celery' };

function signature(task: string, args: unknown[]): WireSignature {
  return { task, args, kwargs: {}, options: {}, subtask_type: null, immutable: false };
}

test('01_delay: byte-identical to the captured envelope', () => {
  const { raw, tag } = captured('01_delay');
  const message = buildTaskMessage(spec({ taskId: '48b02775-8461-42f9-a572-98eb67121308' }));
  assert.equal(encodeEnvelope(message, celery, { deliveryTag: tag }), raw);
});

test('06_expires_seconds: expiration property in kombu position, byte-identical', () => {
  const { raw, tag } = captured('06_expires_seconds');
  const message = buildTaskMessage(spec({ expires: new Date(Date.now() + 120_000) }));
  // JS dates carry milliseconds and `expiration` is computed from now: pin both to the capture.
  message.headers.expires = '2026-11-23T06:50:53.669501+00:00';
  message.properties.expiration = '120000';
  assert.equal(encodeEnvelope(message, celery, { deliveryTag: tag }), raw);
});

test('08_priority_5: priority 5 in the properties, byte-identical', () => {
  const { raw, tag } = captured('08_priority_5');
  assert.equal(encodeEnvelope(buildTaskMessage(spec({ priority: 5 })), celery, { deliveryTag: tag }), raw);
  // A route priority wins over the message's.
  const viaRoute = encodeEnvelope(buildTaskMessage(spec({})), { ...celery, priority: 5 }, { deliveryTag: tag });
  assert.equal(viaRoute, raw);
});

test('11_link_link_error: callbacks and errbacks, byte-identical', () => {
  const { raw, tag } = captured('11_link_link_error');
  const message = buildTaskMessage(spec({ callbacks: [signature('tasks.add', [16])], errbacks: [signature('tasks.on_error', [])] }));
  assert.equal(encodeEnvelope(message, celery, { deliveryTag: tag }), raw);
});

test('12_custom_headers: custom headers after the protocol ones, byte-identical', () => {
  const { raw, tag } = captured('12_custom_headers');
  const message = buildTaskMessage(spec({ headers: { 'x-trace-id': 'abc123', tenant: 42 } }));
  assert.equal(encodeEnvelope(message, celery, { deliveryTag: tag }), raw);
});

test('28: a named exchange is written into delivery_info', () => {
  const { raw, tag } = captured('28_explicit_exchange_routing_key');
  assert.equal(encodeEnvelope(buildTaskMessage(spec({})), { exchange: 'celery', routingKey: 'celery' }, { deliveryTag: tag }), raw);
});

test('each publish gets a fresh uuid4 delivery tag', () => {
  const message = buildTaskMessage(spec({}));
  const a = decodeEnvelope(encodeEnvelope(message, celery)).deliveryTag;
  const b = decodeEnvelope(encodeEnvelope(message, celery)).deliveryTag;
  assert.match(a, /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
  assert.notEqual(a, b);
});

test('re-encoding a decoded message does not duplicate transport properties', () => {
  const { raw, tag } = captured('12_custom_headers');
  const decoded = decodeEnvelope(raw);
  assert.equal(encodeEnvelope(decoded.message, { exchange: decoded.exchange, routingKey: decoded.routingKey }, { deliveryTag: tag }), raw);
});

test('every captured producer envelope decodes: body bytes, routing, tag, priority', () => {
  let count = 0;
  for (const name of fixtureNames('producer-redis')) {
    const fx = fixture<Captured>(`producer-redis/${name}`);
    for (const m of fx.messages) {
      const env = JSON.parse(m.raw) as { body: string; headers: Record<string, unknown>; properties: Record<string, unknown> & { delivery_info: { exchange: string; routing_key: string } } };
      const d = decodeEnvelope(m.raw);
      assert.deepEqual(d.message.body, Buffer.from(env.body, 'base64'), `${fx.case}: body`);
      assert.deepEqual(d.message.headers, env.headers, `${fx.case}: headers`);
      assert.equal(d.exchange, env.properties.delivery_info.exchange);
      assert.equal(d.routingKey, env.properties.delivery_info.routing_key);
      assert.equal(d.deliveryTag, env.properties.delivery_tag);
      assert.equal(d.priority, env.properties.priority ?? 0);
      assert.equal(d.redelivered, false);
      assert.equal('delivery_info' in d.message.properties, false);
      count++;
    }
  }
  assert.ok(count >= 40, `decoded ${count} envelopes`);
});

test('interop envelopes: accepted where kombu accepts, MessageDecodeError where kombu crashes', () => {
  const results = new Map<string, string>();
  for (const name of fixtureNames('interop').filter((n) => /^i\d+_/.test(n))) {
    const fx = fixture<Interop>(`interop/${name}`);
    try {
      decodeEnvelope(fx.raw);
      results.set(fx.case, 'ok');
    } catch (err) {
      assert.ok(err instanceof MessageDecodeError, `${fx.case}: ${String(err)}`);
      results.set(fx.case, (err as Error).message);
    }
  }
  assert.match(results.get('i04_no_delivery_info')!, /delivery_info/);
  assert.match(results.get('i05_no_delivery_tag')!, /delivery_tag/);
  for (const [name, outcome] of results) if (!/^i0[45]_/.test(name)) assert.equal(outcome, 'ok', name);
  assert.ok(results.size >= 13);

  const plain = decodeEnvelope(fixture<Interop>('interop/i06_plain_body_no_body_encoding.json').raw);
  assert.equal(plain.message.body.toString('utf8'), '[[1, 2], {}, {"callbacks": null, "errbacks": null, "chain": null, "chord": null}]');
  const minimal = decodeEnvelope(fixture<Interop>('interop/i03_minimal_properties.json').raw);
  assert.equal(minimal.priority, 0);
});

test('malformed envelopes throw MessageDecodeError with a useful message', () => {
  const good = JSON.parse(captured('01_delay').raw) as Record<string, unknown> & { properties: Record<string, unknown> };
  const cases: [string, string, RegExp][] = [
    ['not JSON', '{"body": ', /not valid JSON/],
    ['array', '[1, 2]', /JSON object/],
    ['bad base64 (junk char)', JSON.stringify({ ...good, body: 'W1sy!LCAy' }), /base64/],
    ['bad base64 (length)', JSON.stringify({ ...good, body: 'W1syL' }), /base64/],
    ['bad base64 (padding in the middle)', JSON.stringify({ ...good, body: 'W1==LCAy' }), /base64/],
    ['unknown body_encoding', JSON.stringify({ ...good, properties: { ...good.properties, body_encoding: 'rot13' } }), /body_encoding/],
    ['no properties', JSON.stringify({ ...good, properties: undefined }), /properties/],
    ['non-string body', JSON.stringify({ ...good, body: [1, 2] }), /body/],
  ];
  for (const [label, raw, pattern] of cases) {
    assert.throws(() => decodeEnvelope(raw), (err: unknown) => err instanceof MessageDecodeError && pattern.test(err.message), label);
  }
});

test('redelivered flags set by a kombu restore are reported', () => {
  const raw = captured('01_delay').raw.replace('"ignore_result": false}', '"ignore_result": false, "redelivered": true}');
  assert.equal(decodeEnvelope(raw).redelivered, true);
});
