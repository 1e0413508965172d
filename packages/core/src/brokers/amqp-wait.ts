/**
 * A worker's start-up connection to RabbitMQ, as Celery's consumer does it with
 * kombu's `ensure_connection`: connect (AMQP handshake, login, vhost) and hang up;
 * until that works print
 * `Cannot connect to amqp://guest:**@host:5672//: Connection refused. Trying again in 2.00 seconds... (1/100)`
 * and wait 2, 4, 6 ... up to 30 s. With a failover list (`amqp://a;amqp://b`)
 * every URL is tried in turn: a failure before the end of the list says
 * `Will retry using next failover.` and tries the next one at once; the wait
 * comes after a full round. As kombu counts them, every failed attempt counts
 * towards `brokerConnectionMaxRetries` (the number shown is the round, as
 * Celery's line shows it). A refused login, a vhost the user may not open or a
 * TLS certificate problem is not retried: it throws at once with the reason.
 */
import { connect } from 'amqplib';
import { ConnectError, TLS_ERROR_CODES } from '../errors.js';
import type { WaitForRedisOptions } from '../wait-for-redis.js';
import { startupRetryInterval } from '../wait-for-redis.js';
import { describeAmqpError } from './amqp-connection.js';
import { parseAmqpUrls, type AmqpEndpoint } from './amqp-url.js';

/** RabbitMQ could not be reached (or refused us) at start-up. */
export class AmqpConnectError extends ConnectError {
  override name = 'AmqpConnectError';
}


/** Is this failure something waiting can fix? Logins, vhost permissions and TLS certificates are not. */
function classify(err: unknown): { reason: string; retryable: boolean; fix: string } {
  const reason = describeAmqpError(err);
  const code = String((err as NodeJS.ErrnoException | undefined)?.code ?? '');
  if (TLS_ERROR_CODES.test(code)) return { reason, retryable: false, fix: 'Check the TLS certificates (brokerTransportOptions.socketOptions: ca, cert, key).' };
  if (/\b403\b|ACCESS.REFUSED/i.test(reason)) return { reason, retryable: false, fix: 'Check the user name and password in the broker URL.' };
  if (/\b530\b|NOT.ALLOWED/i.test(reason)) return { reason, retryable: false, fix: 'Check the vhost in the broker URL and that the user may open it (rabbitmqctl set_permissions).' };
  return { reason, retryable: true, fix: '' };
}

/** Connect once to `endpoint` and hang up; rejects with the classified failure. */
export async function probeAmqp(endpoint: AmqpEndpoint, timeoutMs: number, socketOptions: Record<string, unknown> = {}): Promise<void> {
  let model;
  try {
    model = await connect(endpoint.connect, { timeout: timeoutMs, ...socketOptions });
  } catch (err) {
    const { reason, retryable, fix } = classify(err);
    throw new AmqpConnectError(endpoint.displayUrl, reason, retryable, fix);
  }
  await model.close().catch(() => undefined);
}

/**
 * Resolve once one URL of the (failover) list `url` accepts an AMQP connection.
 * Throws an `AmqpConnectError` when the failure is not retryable or the retries
 * run out (see the file comment).
 */
export async function waitForAmqp(url: string, transportOptions: Record<string, unknown>, options: WaitForRedisOptions): Promise<void> {
  const heartbeat = typeof transportOptions.heartbeat === 'number' ? transportOptions.heartbeat : undefined;
  const endpoints = parseAmqpUrls(url, { heartbeatSeconds: heartbeat });
  const socketOptions = (transportOptions.socketOptions as Record<string, unknown> | undefined) ?? {};
  const max = options.maxRetries && options.maxRetries > 0 ? Math.trunc(options.maxRetries) : Infinity;
  const shownMax = max === Infinity ? 'inf' : String(max);
  let failures = 0;
  for (let round = 1; ; round++) {
    for (let i = 0; i < endpoints.length; i++) {
      const endpoint = endpoints[i]!;
      try {
        await probeAmqp(endpoint, options.timeoutMs, socketOptions);
        return;
      } catch (err) {
        if (!(err instanceof AmqpConnectError) || !err.retryable) throw err;
        if (!options.retry) throw new AmqpConnectError(err.displayUrl, err.reason, false, 'Not retrying: brokerConnectionRetry is false.');
        failures++;
        if (failures > max) {
          throw new AmqpConnectError(err.displayUrl, err.reason, false, `Gave up after ${max} retries (brokerConnectionMaxRetries); start RabbitMQ or fix the URL.`);
        }
        const lastOfRound = i === endpoints.length - 1;
        const seconds = lastOfRound ? startupRetryInterval(round) : 0;
        const next = lastOfRound ? `Trying again in ${seconds.toFixed(2)} seconds... (${round}/${shownMax})` : 'Will retry using next failover.';
        options.log.error(
          { url: err.displayUrl, reason: err.reason, retry: failures, maxRetries: max === Infinity ? null : max },
          `Cannot connect to ${err.displayUrl}: ${err.reason}. ${next}`,
        );
        if (seconds > 0) await new Promise((r) => setTimeout(r, seconds * 1000));
      }
    }
  }
}
