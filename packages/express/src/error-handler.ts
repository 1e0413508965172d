/**
 * `celeriacErrorHandler()`: mount after the routes. A broker (or result backend)
 * outage becomes HTTP 503 with a JSON body (`{ statusCode, code, error, message }`,
 * no broker address) and `err.status = 503` for handlers after it; every other error
 * goes on to the next error handler untouched.
 */
import type { ErrorRequestHandler } from 'express';
import { httpErrorOf } from '@celeriac/core';

/** Options of `celeriacErrorHandler`. */
export interface ErrorHandlerOptions {
  /** `Retry-After` seconds sent with a 503 (default 5; 0 = none). */
  retryAfterSeconds?: number;
}

/** Answer Celeriac's outage errors with 503 JSON; pass on the rest. */
export function celeriacErrorHandler(options: ErrorHandlerOptions = {}): ErrorRequestHandler {
  const retryAfter = options.retryAfterSeconds ?? 5;
  return function celeriacErrors(err, _req, res, next) {
    const answer = httpErrorOf(err);
    if (!answer) return next(err);
    (err as { status?: number }).status = answer.status;
    if (res.headersSent) return next(err);
    if (retryAfter > 0) res.setHeader('Retry-After', String(retryAfter));
    res.status(answer.status).json(answer.body);
  };
}
