import { randomUUID } from 'node:crypto';
import { requestContextFromHeaders, runWithRequestContext } from '@celeriac/core';
import { Inject, Injectable, type CallHandler, type ExecutionContext, type NestInterceptor } from '@nestjs/common';
import { Observable } from 'rxjs';
import { CELERIAC_MODULE_OPTIONS } from './celeriac.module-definition.js';
import type { CeleriacModuleOptions } from './celeriac.options.js';

type IncomingRequest = { headers?: Record<string, string | string[] | undefined>; id?: unknown };

/**
 * Runs each HTTP handler inside a request context (AsyncLocalStorage) holding the
 * request id and W3C trace context, which `TaskProducer` puts in the headers of
 * every task the handler sends. The module installs it globally (`APP_INTERCEPTOR`).
 */
@Injectable()
export class RequestContextInterceptor implements NestInterceptor {
  constructor(@Inject(CELERIAC_MODULE_OPTIONS) private readonly options: CeleriacModuleOptions) {}

  intercept(context: ExecutionContext, next: CallHandler): Observable<unknown> {
    if (context.getType() !== 'http') return next.handle();
    const request = context.switchToHttp().getRequest<IncomingRequest>();
    const headers = request.headers ?? {};
    const ctx = requestContextFromHeaders(headers, this.requestIdOf(request, headers));
    // Nest binds the handler's async context when handle() is called, so call it inside the run.
    return new Observable((subscriber) => runWithRequestContext(ctx, () => next.handle().subscribe(subscriber)));
  }

  private requestIdOf(request: IncomingRequest, headers: Record<string, string | string[] | undefined>): string {
    const custom = this.options.requestId?.(request);
    if (custom) return custom;
    const header = headers['x-request-id'];
    const fromHeader = Array.isArray(header) ? header[0] : header;
    if (fromHeader) return fromHeader;
    if (typeof request.id === 'string' && request.id !== '') return request.id;
    return randomUUID();
  }
}
