import { BrokerUnavailable, httpErrorOf, ResultBackendUnavailable } from '@celeriac/core';
import { Catch, type ArgumentsHost, type ExceptionFilter } from '@nestjs/common';
import { HttpAdapterHost } from '@nestjs/core';

/**
 * Answers HTTP 503 with a JSON body (`{ statusCode, code, error, message }`, no
 * broker address) when a request could not reach the broker or the result
 * backend once the publish retry policy ran out: never a hang, never a 500. The
 * module installs it globally (`APP_FILTER`); it answers through the HTTP
 * adapter, so Express and Fastify alike.
 */
@Catch(BrokerUnavailable, ResultBackendUnavailable)
export class BrokerUnavailableFilter implements ExceptionFilter {
  constructor(private readonly adapterHost: HttpAdapterHost) {}

  catch(error: BrokerUnavailable | ResultBackendUnavailable, host: ArgumentsHost): void {
    const http = httpErrorOf(error);
    if (host.getType() !== 'http' || !http) throw error;
    this.adapterHost.httpAdapter.reply(host.switchToHttp().getResponse(), http.body, http.status);
  }
}
