/**
 * A task message in native AMQP fields, as Celery 5.2 publishes it over RabbitMQ
 * (py-amqp): protocol headers as `application_headers`, `content_type`,
 * `content_encoding`, `delivery_mode` 2, `priority`, `correlation_id`, `reply_to`,
 * `expiration`; the body is the serialized bytes (no envelope, no base64). Message
 * properties AMQP has no field for (5.2's retry puts `origin` there) are dropped,
 * as py-amqp drops them.
 */
import type { ConsumeMessage, Message, Options } from 'amqplib';
import type { MessageProperties, TaskHeaders, TaskMessage } from '../protocol/message.js';
import type { Route } from './broker.js';

/** A header value with its AMQP field type spelled out (amqplib's `{'!': type, value}`). */
type TypedField = { '!': 'int' | 'long'; value: number };

/**
 * Header values typed as py-amqp reads them. amqplib writes a small integer as
 * `b` / `s` (RabbitMQ's short-short / short int), but py-amqp reads `b` unsigned
 * and `s` as a short *string*: a header like `clock: 200` or `timelimit: [300,
 * 600]` then makes a Python consumer fail to decode the whole frame (Celery's
 * worker dies with UnicodeDecodeError). Integers go out as py-amqp writes them:
 * `I` (signed 32-bit), or a 64-bit long beyond that; floats stay doubles.
 */
export function amqpHeaders(value: unknown): unknown {
  if (typeof value === 'number') {
    if (!Number.isInteger(value)) return value;
    const typed: TypedField = { '!': value >= -0x80000000 && value < 0x80000000 ? 'int' : 'long', value };
    return typed;
  }
  if (Array.isArray(value)) return value.map(amqpHeaders);
  if (value !== null && typeof value === 'object' && !Buffer.isBuffer(value) && !(value instanceof Date) && !Object.hasOwn(value, '!')) {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) out[k] = amqpHeaders(v);
    return out;
  }
  return value;
}

/** amqplib publish options for a task message on `route`. */
export function publishOptions(message: TaskMessage, route: Route): Options.Publish {
  const p = message.properties;
  const options: Options.Publish = {
    contentType: message.contentType,
    contentEncoding: message.contentEncoding,
    headers: amqpHeaders(message.headers) as Options.Publish['headers'],
    deliveryMode: typeof p.delivery_mode === 'number' ? p.delivery_mode : 2,
  };
  const priority = route.priority ?? p.priority;
  if (typeof priority === 'number') options.priority = priority;
  if (typeof p.correlation_id === 'string') options.correlationId = p.correlation_id;
  if (typeof p.reply_to === 'string') options.replyTo = p.reply_to;
  if (typeof p.expiration === 'string' || typeof p.expiration === 'number') options.expiration = String(p.expiration);
  return options;
}

/** Publish options that resend a received message unchanged (ETA parking), minus RabbitMQ's dead-letter trail. */
export function republishOptions(msg: Message): Options.Publish {
  const p = msg.properties;
  const headers = { ...(p.headers ?? {}) } as Record<string, unknown>;
  delete headers['x-death'];
  delete headers['x-first-death-exchange'];
  delete headers['x-first-death-queue'];
  delete headers['x-first-death-reason'];
  delete headers['x-delivery-count'];
  const options: Options.Publish = { headers: amqpHeaders(headers) as Options.Publish['headers'], deliveryMode: p.deliveryMode ?? 2 };
  if (p.contentType !== undefined) options.contentType = p.contentType;
  if (p.contentEncoding !== undefined) options.contentEncoding = p.contentEncoding;
  if (p.priority !== undefined) options.priority = p.priority;
  if (p.correlationId !== undefined) options.correlationId = p.correlationId;
  if (p.replyTo !== undefined) options.replyTo = p.replyTo;
  if (p.expiration !== undefined) options.expiration = p.expiration;
  return options;
}

/** The task message carried by an AMQP delivery. */
export function decodeDelivery(msg: ConsumeMessage | Message): TaskMessage {
  const p = msg.properties;
  const properties: MessageProperties = {};
  if (p.correlationId !== undefined) properties.correlation_id = String(p.correlationId);
  if (p.replyTo !== undefined) properties.reply_to = String(p.replyTo);
  if (p.deliveryMode !== undefined) properties.delivery_mode = Number(p.deliveryMode);
  if (p.priority !== undefined) properties.priority = Number(p.priority);
  if (p.expiration !== undefined) properties.expiration = String(p.expiration);
  return {
    headers: (p.headers ?? {}) as TaskHeaders,
    properties,
    contentType: typeof p.contentType === 'string' ? p.contentType : '',
    contentEncoding: typeof p.contentEncoding === 'string' ? p.contentEncoding : 'utf-8',
    body: msg.content,
  };
}
