/**
 * kombu's Redis envelope: the JSON document stored in a Redis list for one message.
 *
 * ```
 * {"body": "<base64>", "content-encoding": "utf-8", "content-type": "application/json",
 *  "headers": {...}, "properties": {"correlation_id": ..., "reply_to": ..., "delivery_mode": 2,
 *  ["expiration": "120000",] "delivery_info": {"exchange": "", "routing_key": "celery"},
 *  "priority": 0, "body_encoding": "base64", "delivery_tag": "<uuid4>"}}
 * ```
 *
 * Writing is byte-identical to kombu 5.2 (Python `json.dumps` formatting, key order
 * as above). Reading accepts anything a kombu 5.2 worker accepts (e.g. no
 * `body_encoding` ⇒ the body is used as-is) and rejects, with a
 * `MessageDecodeError`, what would make a kombu worker crash.
 */
import { randomUUID } from 'node:crypto';
import { MessageDecodeError } from '../errors.js';
import type { MessageProperties, TaskHeaders, TaskMessage } from '../protocol/message.js';
import { dumpsPython, loadsPython, loadsPythonScanningFrom } from '../protocol/python-json.js';
import { EnvelopeWriter } from './envelope-writer.js';
import type { Route } from './broker.js';

/** Properties the Redis transport owns: never copied from `message.properties`. */
const TRANSPORT_PROPERTIES = new Set(['delivery_info', 'body_encoding', 'delivery_tag', 'priority']);

/** Strict base64 (what Python's `b64encode` writes): alphabet, length multiple of 4, ≤ 2 pad chars. */
const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/;

/** Options for `encodeEnvelope`. */
export interface EncodeEnvelopeOptions {
  /** The delivery tag to write. Default: a fresh uuid4, as kombu does. */
  deliveryTag?: string;
}

/** The effective priority of a message on a route (route first, then the message's property, then 0). */
export function messagePriority(message: TaskMessage, route: Route): number {
  const p = route.priority ?? message.properties.priority;
  return typeof p === 'number' && Number.isFinite(p) ? p : 0;
}

/**
 * Encode a message into kombu's envelope string, byte-identical to what a Python
 * producer LPUSHes for the same message. Always ASCII (`json.dumps` escapes
 * everything else), so `Buffer.from(envelope, 'latin1')` is its exact bytes.
 */
export function encodeEnvelope(message: TaskMessage, route: Route, options: EncodeEnvelopeOptions = {}): string {
  const target = { exchange: route.exchange, routingKey: route.routingKey, priority: messagePriority(message, route) };
  if (writer.idle && EnvelopeWriter.fits(message, target)) return writer.encode(message, target, TRANSPORT_PROPERTIES, options.deliveryTag);
  return encodeEnvelopeWhole(message, route, options);
}

/**
 * The process's envelope writer: it reuses the text of the headers and properties
 * the previous message had (see envelope-writer.ts), so a batch of one task, and
 * one-by-one sends of it, write mostly what changed.
 */
const writer = new EnvelopeWriter();

/** `encodeEnvelope` through one `dumpsPython` of the whole document (messages not shaped as `TaskMessage` says). */
/**
 * `encodeEnvelope` without the writer's reuse: one `dumpsPython` of the whole envelope
 * document (for messages the writer does not take, and the reference its tests compare with).
 */
export function encodeEnvelopeWhole(message: TaskMessage, route: Route, options: EncodeEnvelopeOptions = {}): string {
  const properties: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(message.properties)) {
    if (!TRANSPORT_PROPERTIES.has(key)) properties[key] = value;
  }
  properties.delivery_info = { exchange: route.exchange, routing_key: route.routingKey };
  properties.priority = messagePriority(message, route);
  properties.body_encoding = 'base64';
  properties.delivery_tag = options.deliveryTag ?? randomUUID();
  return dumpsPython({
    body: message.body.toString('base64'),
    'content-encoding': message.contentEncoding,
    'content-type': message.contentType,
    headers: message.headers,
    properties,
  });
}

/** A decoded envelope: the message plus what the transport recorded about it. */
export interface DecodedEnvelope {
  message: TaskMessage;
  /** `properties.delivery_info.exchange`. */
  exchange: string;
  /** `properties.delivery_info.routing_key`. */
  routingKey: string;
  /** `properties.delivery_tag` (kombu's unacked hash field). */
  deliveryTag: string;
  /** 0 when absent. */
  priority: number;
  /** True when kombu (or Celeriac) restored the message after a consumer lost it. */
  redelivered: boolean;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function preview(raw: string): string {
  return raw.length > 120 ? `${JSON.stringify(raw.slice(0, 120))}…` : JSON.stringify(raw);
}

/**
 * Parse an envelope string. Throws `MessageDecodeError` for malformed JSON, a body
 * that is not strict base64 when `body_encoding` says base64, an unknown
 * `body_encoding`, and a missing `delivery_tag` or `delivery_info` (which make a
 * kombu 5.2 worker exit).
 */
export function decodeEnvelope(raw: string): DecodedEnvelope {
  let doc: unknown;
  try {
    doc = loadsEnvelope(raw);
  } catch (err) {
    throw new MessageDecodeError(`Redis message is not valid JSON (${(err as Error).message}): ${preview(raw)}`);
  }
  if (!isRecord(doc)) throw new MessageDecodeError(`Redis message must be a JSON object (kombu envelope), got ${preview(raw)}`);

  const props = doc.properties;
  if (!isRecord(props)) throw new MessageDecodeError('Redis message has no "properties" object (kombu envelope expected).');
  const tag = props.delivery_tag;
  if (typeof tag !== 'string' && typeof tag !== 'number') {
    throw new MessageDecodeError('Redis message has no properties.delivery_tag; kombu needs it to acknowledge the message.');
  }
  const info = props.delivery_info;
  if (!isRecord(info) || typeof info.exchange !== 'string' || typeof info.routing_key !== 'string') {
    throw new MessageDecodeError('Redis message has no properties.delivery_info {exchange, routing_key}; kombu needs it to route acks and restores.');
  }

  const headers = doc.headers ?? {};
  if (!isRecord(headers)) throw new MessageDecodeError('Redis message "headers" must be a JSON object.');
  const contentType = doc['content-type'] ?? '';
  const contentEncoding = doc['content-encoding'] ?? 'utf-8';
  if (typeof contentType !== 'string' || typeof contentEncoding !== 'string') {
    throw new MessageDecodeError('Redis message "content-type" and "content-encoding" must be strings.');
  }

  const body = decodeBodyField(doc.body, props.body_encoding, contentEncoding);
  const properties: MessageProperties = {};
  // A for-in over the parsed (plain, own-keyed) object: no [key, value] array per property.
  for (const key in props) {
    if (key !== 'delivery_info' && key !== 'body_encoding' && key !== 'delivery_tag') properties[key] = props[key];
  }
  const priority = typeof props.priority === 'number' ? props.priority : 0;
  return {
    message: { headers: headers as TaskHeaders, properties, contentType, contentEncoding, body },
    exchange: info.exchange,
    routingKey: info.routing_key,
    deliveryTag: String(tag),
    priority,
    redelivered: headers.redelivered === true || info.redelivered === true,
  };
}

/** How kombu (and `encodeEnvelope`) begin an envelope: the body string first. */
const BODY_FIRST = '{"body": "';

/**
 * `loadsPython` of an envelope. When it starts with the body string (kombu's and our
 * layout) and that string has no escapes (base64 has none), the body's characters
 * are not scanned for what needs the tolerant parser: a string's contents never do.
 */
function loadsEnvelope(raw: string): unknown {
  if (raw.startsWith(BODY_FIRST)) {
    const close = raw.indexOf('"', BODY_FIRST.length);
    if (close > 0 && raw.lastIndexOf('\\', close) < BODY_FIRST.length) return loadsPythonScanningFrom(raw, close + 1);
  }
  return loadsPython(raw);
}

function decodeBodyField(body: unknown, encoding: unknown, contentEncoding: string): Buffer {
  if (body === undefined || body === null) return Buffer.alloc(0);
  if (typeof body !== 'string') throw new MessageDecodeError(`Redis message "body" must be a string, got ${typeof body}.`);
  if (encoding === undefined || encoding === null) {
    return Buffer.from(body, contentEncoding === 'binary' ? 'latin1' : 'utf8');
  }
  if (encoding !== 'base64') {
    throw new MessageDecodeError(`Unsupported properties.body_encoding ${JSON.stringify(encoding)}; kombu writes "base64".`);
  }
  if (body.length % 4 !== 0 || !BASE64.test(body)) {
    throw new MessageDecodeError(`Redis message body is not valid base64 (body_encoding "base64"): ${preview(body)}`);
  }
  return Buffer.from(body, 'base64');
}
