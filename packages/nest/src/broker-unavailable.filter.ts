import { BrokerUnavailable, ResultBackendUnavailable } from '@celeriac/core';
import { Catch, type ArgumentsHost, type ExceptionFilter } from '@nestjs/common';
import { HttpAdapterHost } from '@nestjs/core';

/**
 * Answers HTTP 503 with a JSON body when a request could not reach the broker (or
 * the result backend), after the publish retry policy ran out: never a hang, never
 * a 500. The module installs it globally (`APP_FILTER`); it works on Express and
 * Fastify alike (through the HTTP adapter).
 */
@Catch(BrokerUnavailable, ResultBackendUnavailable)
export class BrokerUnavailableFilter implements ExceptionFilter {
  constructor(private readonly adapterHost: HttpAdapterHost) {}

  catch(error: BrokerUnavailable | ResultBackendUnavailable, host: ArgumentsHost): void {
    if (host.getType() !== 'http') throw error;
    const body = typeof (error as { toJSON?: unknown }).toJSON === 'function' ? (error as BrokerUnavailable).toJSON() : defaultBody(error);
    this.adapterHost.httpAdapter.reply(host.switchToHttp().getResponse(), body, 503);
  }
}

function defaultBody(error: { code?: string }) {
  return { statusCode: 503, code: error.code ?? 'CELERIAC_UNAVAILABLE', error: 'Service Unavailable', message: 'The task queue is unavailable; try again later.' };
}
