import { httpErrorOf } from '@celeriac/core';

/**
 * What a request sees when the broker or the result backend is down: the core's
 * 503 (`statusCode`, `code`) with its client-safe message, so Fastify's own error
 * handler answers `{ statusCode: 503, code, error: 'Service Unavailable', message }`
 * without the broker's address. The original error is the `cause` (Fastify's
 * logger prints it, address included).
 */
export class ServiceUnavailable extends Error {
  override name = 'ServiceUnavailable';
  readonly statusCode: number;
  readonly code: string;
  constructor(statusCode: number, code: string, message: string, cause: unknown) {
    super(message, { cause });
    this.statusCode = statusCode;
    this.code = code;
  }
}

/** Rethrow `err` as a `ServiceUnavailable` when it is a Celeriac outage; else unchanged. */
export function toHttpError(err: unknown): unknown {
  const http = httpErrorOf(err);
  return http ? new ServiceUnavailable(http.status, http.body.code, http.body.message, err) : err;
}

/** `promise`, with Celeriac outages turned into `ServiceUnavailable`. */
export async function mapOutage<T>(promise: Promise<T>): Promise<T> {
  try {
    return await promise;
  } catch (err) {
    throw toHttpError(err);
  }
}
