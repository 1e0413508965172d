import type { FastifyRequest } from 'fastify';
import type { RequestContext } from './core-link.js';

/** A `traceparent` / `tracestate` value worth forwarding: one header line of sane length. */
function headerValue(value: string | string[] | undefined): string | undefined {
  const one = Array.isArray(value) ? value[0] : value;
  return typeof one === 'string' && one.length > 0 && one.length <= 512 ? one : undefined;
}

/**
 * The request context a Fastify request hands to the tasks it sends: `request.id`
 * (Fastify's, so `genReqId` / `requestIdHeader` decide it) and the W3C trace
 * context headers as received.
 */
export function requestContextOf(request: FastifyRequest, extraHeaders?: Record<string, unknown>): RequestContext {
  const context: RequestContext = { requestId: String(request.id) };
  const traceparent = headerValue(request.headers.traceparent);
  const tracestate = headerValue(request.headers.tracestate);
  if (traceparent !== undefined) context.traceparent = traceparent;
  if (tracestate !== undefined) context.tracestate = tracestate;
  if (extraHeaders) context.headers = extraHeaders;
  return context;
}
