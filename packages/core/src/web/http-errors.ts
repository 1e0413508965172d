/**
 * How web adapters answer Celeriac's errors: an unreachable broker or result
 * backend is HTTP 503 with a JSON body in Fastify's error shape
 * (`{ statusCode, code, error, message }`). The body's message is generic: the
 * broker's address stays in the server's logs (`err.message`), not in responses.
 */
import { BrokerUnavailable, ResultBackendUnavailable } from '../errors.js';

/** The JSON body of an error response. */
export interface HttpErrorBody {
  statusCode: number;
  code: string;
  error: string;
  message: string;
}

/** An HTTP status and JSON body for a Celeriac error. */
export interface HttpError {
  status: number;
  body: HttpErrorBody;
}

const named = (err: unknown, name: string, type: abstract new (...args: never[]) => Error) =>
  err instanceof type || (err instanceof Error && err.name === name && (err as { statusCode?: unknown }).statusCode === 503);

/**
 * The HTTP answer for `err` when it is an outage of the broker or the result
 * backend (from this or any other copy of the package), else null (not ours:
 * let the framework handle it).
 */
export function httpErrorOf(err: unknown): HttpError | null {
  if (named(err, 'BrokerUnavailable', BrokerUnavailable)) {
    return { status: 503, body: { statusCode: 503, code: 'CELERIAC_BROKER_UNAVAILABLE', error: 'Service Unavailable', message: 'The task queue is unavailable; try again later.' } };
  }
  if (named(err, 'ResultBackendUnavailable', ResultBackendUnavailable)) {
    return { status: 503, body: { statusCode: 503, code: 'CELERIAC_RESULT_BACKEND_UNAVAILABLE', error: 'Service Unavailable', message: 'Task results are unavailable; try again later.' } };
  }
  return null;
}
