/**
 * Celery's remote-control messages (the pidbox), as Celery 5.2 writes them:
 *
 * - request, to the fanout exchange `celery.pidbox`: body `{"method", "arguments",
 *   "destination", "pattern", "matcher"[, "ticket", "reply_to": {"exchange":
 *   "reply.celery.pidbox", "routing_key": <requester id>}]}`, headers `{"clock",
 *   "expires"}` (unix seconds; 0 = never), delivery_mode 2;
 * - reply, to the direct exchange `reply.celery.pidbox` under the requester's id:
 *   body `{"<node name>": <reply>}`, headers `{"ticket", "clock"}`, delivery_mode 1.
 */
import { MessageDecodeError } from '../errors.js';
import type { TaskMessage } from '../protocol/message.js';
import { dumpsPython, loadsPython } from '../protocol/python-json.js';

/** The fanout exchange requests are broadcast on. */
export const PIDBOX_EXCHANGE = 'celery.pidbox';
/** The direct exchange replies go to. */
export const REPLY_EXCHANGE = 'reply.celery.pidbox';

/** A decoded remote-control request. */
export interface ControlRequest {
  method: string;
  arguments: Record<string, unknown>;
  /** Node names the request is for; null = every node. */
  destination: string[] | null;
  /** With `matcher` (`glob` default, `pcre`): node names matching it. */
  pattern: string | null;
  matcher: string | null;
  /** Present when a reply is wanted. */
  ticket?: string;
  replyTo?: { exchange: string; routingKey: string };
  /** Unix seconds after which the request is ignored; 0/undefined: never. */
  expires?: number;
  clock?: number;
}

function jsonMessage(body: unknown, headers: Record<string, unknown>, deliveryMode: number): TaskMessage {
  return {
    headers: headers as TaskMessage['headers'],
    properties: { delivery_mode: deliveryMode },
    contentType: 'application/json',
    contentEncoding: 'utf-8',
    body: Buffer.from(dumpsPython(body), 'utf8'),
  };
}

/** Encode a request exactly as Celery's `Mailbox._broadcast` does. */
export function encodeControlRequest(request: ControlRequest): TaskMessage {
  const body: Record<string, unknown> = {
    method: request.method,
    arguments: request.arguments,
    destination: request.destination,
    pattern: request.pattern,
    matcher: request.matcher,
  };
  if (request.ticket) {
    body.ticket = request.ticket;
    body.reply_to = { exchange: request.replyTo?.exchange ?? REPLY_EXCHANGE, routing_key: request.replyTo?.routingKey };
  }
  return jsonMessage(body, { clock: request.clock ?? 0, expires: request.expires ?? 0 }, 2);
}

function parseBody(message: TaskMessage): unknown {
  if (message.contentType !== 'application/json') {
    throw new MessageDecodeError(`Remote-control message has content type ${JSON.stringify(message.contentType)}; only application/json is read (set Celery's control serializer to json).`);
  }
  return loadsPython(message.body.toString('utf8'));
}

/** Decode a request; throws `MessageDecodeError` for anything that is not one. */
export function decodeControlRequest(message: TaskMessage): ControlRequest {
  const body = parseBody(message);
  if (typeof body !== 'object' || body === null || Array.isArray(body)) throw new MessageDecodeError('Remote-control request body must be a JSON object.');
  const b = body as Record<string, unknown>;
  if (typeof b.method !== 'string') throw new MessageDecodeError('Remote-control request has no "method".');
  const args = b.arguments ?? {};
  if (typeof args !== 'object' || args === null || Array.isArray(args)) throw new MessageDecodeError(`Remote-control request ${b.method}: "arguments" must be an object.`);
  const destination = Array.isArray(b.destination) ? b.destination.filter((d): d is string => typeof d === 'string') : typeof b.destination === 'string' ? [b.destination] : null;
  const replyTo = b.reply_to as Record<string, unknown> | undefined;
  const headers = message.headers as Record<string, unknown>;
  return {
    method: b.method,
    arguments: args as Record<string, unknown>,
    destination: destination && destination.length > 0 ? destination : null,
    pattern: typeof b.pattern === 'string' ? b.pattern : null,
    matcher: typeof b.matcher === 'string' ? b.matcher : null,
    ...(typeof b.ticket === 'string' ? { ticket: b.ticket } : {}),
    ...(replyTo && typeof replyTo.routing_key === 'string'
      ? { replyTo: { exchange: typeof replyTo.exchange === 'string' ? replyTo.exchange : REPLY_EXCHANGE, routingKey: replyTo.routing_key } }
      : {}),
    ...(typeof headers.expires === 'number' ? { expires: headers.expires } : {}),
    ...(typeof headers.clock === 'number' ? { clock: headers.clock } : {}),
  };
}

/** Encode a worker's reply: `{"<node>": reply}`. */
export function encodeControlReply(node: string, reply: unknown, ticket: string, clock: number): TaskMessage {
  return jsonMessage({ [node]: reply }, { ticket, clock }, 1);
}

/** Decode a reply: the ticket it answers and `{node: reply}`; null when it is not one. */
export function decodeControlReply(message: TaskMessage): { ticket: string | undefined; replies: Record<string, unknown> } | null {
  let body: unknown;
  try {
    body = parseBody(message);
  } catch {
    return null;
  }
  if (typeof body !== 'object' || body === null || Array.isArray(body)) return null;
  const ticket = (message.headers as Record<string, unknown>).ticket;
  return { ticket: typeof ticket === 'string' ? ticket : undefined, replies: body as Record<string, unknown> };
}
