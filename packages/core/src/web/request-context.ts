/**
 * The web request a task is sent from: filled by a web adapter around each
 * request (AsyncLocalStorage), read by the task producer, carried in the task
 * message's headers, and exposed in the worker as `currentTask().requestContext`.
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import { processWide } from '../process-state.js';

/** What a task learns about the web request that sent it. */
export interface RequestContext {
  /** The request id (`X-Request-Id`, Fastify's `request.id`...). Header `request_id`. */
  readonly requestId?: string;
  /** W3C trace context of the request (or of the server span). Header `traceparent`. */
  readonly traceparent?: string;
  /** W3C vendor trace state. Header `tracestate`. */
  readonly tracestate?: string;
  /**
   * The incoming HTTP request's headers (lower-case names), for the producer's
   * `headers` hook. Not sent with the task; in the worker this is undefined.
   */
  readonly headers?: Readonly<Record<string, string | string[] | undefined>>;
}

/** Message header names of the request context (Python producers may set them too). */
export const REQUEST_CONTEXT_HEADERS = { requestId: 'request_id', traceparent: 'traceparent', tracestate: 'tracestate' } as const;

/** One per process, shared by every copy of the package (see process-state.ts). */
const storage = processWide('request-context', () => new AsyncLocalStorage<RequestContext>());

/** Run `fn` with `ctx` as the current request context (adapters wrap each request in it). */
export function runWithRequestContext<T>(ctx: RequestContext, fn: () => T): T {
  return storage.run(ctx, fn);
}

/** The request context of this async call chain, if an adapter set one. */
export function currentRequestContext(): RequestContext | undefined {
  return storage.getStore();
}

const first = (v: string | string[] | undefined): string | undefined => (Array.isArray(v) ? v[0] : v) || undefined;

/**
 * A request context from incoming HTTP headers (Node's lower-case
 * `IncomingHttpHeaders`): `x-request-id` (or `requestId` when the framework made
 * one), `traceparent`, `tracestate`. A malformed `traceparent` is dropped.
 */
export function requestContextFromHeaders(headers: Readonly<Record<string, string | string[] | undefined>>, requestId?: string): RequestContext {
  const traceparent = first(headers.traceparent);
  const valid = traceparent !== undefined && isTraceparent(traceparent);
  return {
    requestId: requestId ?? first(headers['x-request-id']),
    traceparent: valid ? traceparent : undefined,
    tracestate: valid ? first(headers.tracestate) : undefined,
    headers,
  };
}

/** Whether `value` is a W3C `traceparent` (version-traceid-parentid-flags, ids not all zero). */
export function isTraceparent(value: string): boolean {
  const m = /^([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$/.exec(value.trim());
  return !!m && m[1] !== 'ff' && !/^0+$/.test(m[2]!) && !/^0+$/.test(m[3]!);
}

/** The request context a worker reads back from a message's headers, or undefined when none is there. */
export function requestContextFromMessage(headers: Readonly<Record<string, unknown>>): RequestContext | undefined {
  const str = (v: unknown) => (typeof v === 'string' && v !== '' ? v : undefined);
  const requestId = str(headers[REQUEST_CONTEXT_HEADERS.requestId]);
  const traceparent = str(headers[REQUEST_CONTEXT_HEADERS.traceparent]);
  const tracestate = str(headers[REQUEST_CONTEXT_HEADERS.tracestate]);
  if (requestId === undefined && traceparent === undefined) return undefined;
  return { requestId, traceparent, tracestate };
}
