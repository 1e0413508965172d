/**
 * RabbitMQ broker URLs as kombu reads them: `amqp://user:pass@host:5672/vhost`,
 * `amqps://` for TLS, `pyamqp://` (kombu's name for the same transport), and a
 * failover list `amqp://a;amqp://b` (tried in turn, round robin). The vhost is the
 * path without its first slash: `//` and `/` and no path all mean `/`, `/%2F` too.
 */
import type { Options } from 'amqplib';
import { ConfigurationError } from '../errors.js';
import { maskUrl } from '../mask-url.js';

/** One broker of the (failover) list, ready for amqplib's `connect`. */
export interface AmqpEndpoint {
  connect: Options.Connect;
  /** The URL with its password masked. */
  displayUrl: string;
  tls: boolean;
}

/** Options that apply to every endpoint. */
export interface AmqpUrlOptions {
  /** AMQP heartbeat in seconds (kombu's `broker_heartbeat`, 120 for Celery workers; 0 = off). Default 60. */
  heartbeatSeconds?: number;
}

/** Split a `;`-separated failover list and parse each URL. */
export function parseAmqpUrls(url: string, options: AmqpUrlOptions = {}): AmqpEndpoint[] {
  const parts = url.split(';').map((u) => u.trim()).filter(Boolean);
  if (parts.length === 0) throw new ConfigurationError('The broker URL is empty: give amqp://user:password@host:5672/vhost.');
  return parts.map((u) => parseOne(u, options));
}

function parseOne(raw: string, options: AmqpUrlOptions): AmqpEndpoint {
  let url: URL;
  try {
    url = new URL(raw.replace(/^pyamqp:/i, 'amqp:'));
  } catch {
    throw new ConfigurationError(`Cannot parse the broker URL ${JSON.stringify(maskUrl(raw))}: use amqp://user:password@host:5672/vhost.`);
  }
  const scheme = url.protocol.replace(/:$/, '').toLowerCase();
  if (scheme !== 'amqp' && scheme !== 'amqps') {
    throw new ConfigurationError(`Every URL of an AMQP failover list must be amqp://, amqps:// or pyamqp://, got ${JSON.stringify(maskUrl(raw))}.`);
  }
  const tls = scheme === 'amqps';
  const path = url.pathname;
  let vhost = path.length <= 1 ? '/' : decodeURIComponent(path.slice(1));
  if (vhost === '') vhost = '/';
  const heartbeat = Number(url.searchParams.get('heartbeat') ?? options.heartbeatSeconds ?? 60);
  return {
    tls,
    displayUrl: maskUrl(raw),
    connect: {
      protocol: scheme,
      hostname: url.hostname || 'localhost',
      port: url.port ? Number(url.port) : tls ? 5671 : 5672,
      username: url.username ? decodeURIComponent(url.username) : 'guest',
      password: url.password ? decodeURIComponent(url.password) : 'guest',
      vhost,
      heartbeat: Number.isFinite(heartbeat) ? heartbeat : 60,
      frameMax: 131072,
    },
  };
}
