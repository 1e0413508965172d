/**
 * One connection factory for every Redis client Celeriac opens: the broker's
 * connections, the result backend's, and the heartbeat thread's raw socket.
 *
 * `resolveRedisConnection` turns a URL plus the `redis` transport option into one
 * plain, cloneable description (host, port, user, password, db, TLS); every client
 * is built from it, so the same password, database and CA reach all of them.
 *
 * URL forms: `redis://[[user]:password@]host[:port][/db]` and `rediss://` for TLS;
 * `sentinel://[[user]:password@]host[:port][/db];sentinel://host2...` for Redis
 * Sentinel with the `master_name` transport option (see redis-sentinel.ts): then
 * `sentinel` holds the sentinels and the login/db are the master's.
 * Query parameters (kombu/redis-py names): `password`, `db`, and for TLS
 * `ssl_ca_certs`, `ssl_certfile`, `ssl_keyfile` (file paths) and `ssl_cert_reqs`
 * (`required` | `optional` | `none`). Values in the URL win over `redis` options.
 *
 * The ioredis clients themselves are made in redis-client.ts; this module does not
 * load ioredis, so the heartbeat thread can use it.
 *
 * Refused with a clear error: ioredis's `keyPrefix` (Celery/kombu peers use
 * unprefixed keys, and pub/sub channels are never prefixed) and ioredis's own
 * Sentinel/Cluster options (Sentinel is configured by the `sentinel://` URL). A server in cluster mode is refused when probed (see redis-probe.ts).
 */
import { readFileSync } from 'node:fs';
import type { RedisOptions } from 'ioredis';
import { ConfigurationError } from './errors.js';
import { maskUrl } from './mask-url.js';
import { isSentinelUrl, parseSentinelUrl, type RedisSentinelSettings, type SentinelTransportOptions } from './redis-sentinel.js';

/** TLS settings for a `rediss://` connection (node `tls.connect` options). */
export interface RedisTlsSettings {
  ca?: string | Buffer | (string | Buffer)[];
  cert?: string | Buffer;
  key?: string | Buffer;
  servername?: string;
  rejectUnauthorized?: boolean;
}

/** Where and how to connect: the same for every client of one URL. Structured-cloneable. */
export interface RedisConnectionSettings {
  host: string;
  port: number;
  username?: string;
  password?: string;
  db: number;
  tls?: RedisTlsSettings;
  /** The URL with its secrets masked, for messages. */
  displayUrl: string;
  /**
   * Set for `sentinel://` URLs: the master is found through these sentinels, and
   * `host`/`port` (the first sentinel) must not be connected to as the server.
   */
  sentinel?: RedisSentinelSettings;
}

const REFUSED_OPTIONS: Record<string, string> = {
  keyPrefix:
    'redis.keyPrefix is not supported: Celery/kombu peers read unprefixed keys and Redis pub/sub channels are never prefixed, ' +
    'so requeued messages and results would be lost. Remove keyPrefix and separate apps with a Redis database number instead (redis://host:6379/<db>).',
  sentinels:
    "Give Redis Sentinel in the URL, not as redis.sentinels: brokerUrl 'sentinel://host1:26379;sentinel://host2:26379' with the transport option " +
    "masterName (Celery's broker_transport_options = {'master_name': 'mymaster'}).",
  clusterNodes: 'Redis Cluster is not supported (kombu does not support it either): point the URL at a single, non-cluster Redis node.',
};

/**
 * Parse a Redis URL and the `redis` transport option into connection settings.
 * `transportOptions` (the whole `broker_transport_options` or
 * `result_backend_transport_options`) is read for `sentinel://` URLs only:
 * `master_name` and `sentinel_kwargs`.
 */
export function resolveRedisConnection(url: string, redisOptions: RedisOptions = {}, transportOptions: SentinelTransportOptions | object = {}): RedisConnectionSettings {
  const displayUrl = maskUrl(url);
  for (const [option, why] of Object.entries(REFUSED_OPTIONS)) {
    if ((redisOptions as Record<string, unknown>)[option] !== undefined) throw new ConfigurationError(`${why} (connection ${displayUrl})`);
  }
  if (isSentinelUrl(url)) return resolveSentinelConnection(url, redisOptions, transportOptions as SentinelTransportOptions, displayUrl);
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new ConfigurationError(`Cannot parse the Redis URL ${displayUrl}: use redis://[[user]:password@]host[:port][/db] or rediss://... for TLS.`);
  }
  const scheme = parsed.protocol.replace(/:$/, '').toLowerCase();
  if (scheme !== 'redis' && scheme !== 'rediss') {
    throw new ConfigurationError(`Not a Redis URL: ${displayUrl}. Use redis://host:6379/0, or rediss:// for TLS.`);
  }
  const query = parsed.searchParams;
  const username = decodeURIComponent(parsed.username) || query.get('username') || redisOptions.username || undefined;
  const password = decodeURIComponent(parsed.password) || query.get('password') || redisOptions.password || undefined;
  const dbText = parsed.pathname.replace(/^\/+/, '') || query.get('db') || undefined;
  const db = dbText === undefined ? (redisOptions.db ?? 0) : Number(dbText);
  if (!Number.isInteger(db) || db < 0) {
    throw new ConfigurationError(`The database in ${displayUrl} must be a non-negative integer (the URL path, e.g. redis://host:6379/0), got ${JSON.stringify(dbText ?? db)}.`);
  }
  const settings: RedisConnectionSettings = {
    host: parsed.hostname.replace(/^\[|\]$/g, '') || String(redisOptions.host ?? '127.0.0.1'),
    port: parsed.port ? Number(parsed.port) : Number(redisOptions.port ?? 6379),
    db,
    displayUrl,
  };
  if (username) settings.username = username;
  if (password) settings.password = password;
  const tls = resolveTls(scheme === 'rediss', query, redisOptions.tls as RedisTlsSettings | undefined, displayUrl);
  if (tls) settings.tls = tls;
  return settings;
}

/** `sentinel://` URLs: the sentinels, plus the master's login, database and TLS. */
function resolveSentinelConnection(url: string, redisOptions: RedisOptions, transportOptions: SentinelTransportOptions, displayUrl: string): RedisConnectionSettings {
  const { sentinel, master } = parseSentinelUrl(url, transportOptions, displayUrl);
  const query = master.query;
  const username = master.username || query.get('username') || redisOptions.username || undefined;
  const password = master.password || query.get('password') || redisOptions.password || undefined;
  const dbText = master.dbText ?? query.get('db') ?? undefined;
  const db = dbText === undefined ? (redisOptions.db ?? 0) : Number(dbText);
  if (!Number.isInteger(db) || db < 0) {
    throw new ConfigurationError(`The database in ${displayUrl} must be a non-negative integer (the first URL's path, e.g. sentinel://host:26379/0), got ${JSON.stringify(dbText ?? db)}.`);
  }
  const first = sentinel.sentinels[0]!;
  const settings: RedisConnectionSettings = { host: first.host, port: first.port, db, displayUrl, sentinel };
  if (username) settings.username = username;
  if (password) settings.password = password;
  const tls = resolveTls(false, query, redisOptions.tls as RedisTlsSettings | undefined, displayUrl);
  if (tls) settings.tls = tls;
  return settings;
}

function resolveTls(secure: boolean, query: URLSearchParams, given: RedisTlsSettings | undefined, displayUrl: string): RedisTlsSettings | undefined {
  if (!secure && !given) return undefined;
  const tls: RedisTlsSettings = {};
  for (const key of ['ca', 'cert', 'key', 'servername', 'rejectUnauthorized'] as const) {
    if (given?.[key] !== undefined) (tls as Record<string, unknown>)[key] = given[key];
  }
  const readPem = (param: string): Buffer | undefined => {
    const path = query.get(param);
    if (!path) return undefined;
    try {
      return readFileSync(path);
    } catch (err) {
      throw new ConfigurationError(`Cannot read ${param}=${path} given in ${displayUrl}: ${(err as Error).message}. Fix the path or remove the parameter.`);
    }
  };
  tls.ca = readPem('ssl_ca_certs') ?? tls.ca;
  tls.cert = readPem('ssl_certfile') ?? tls.cert;
  tls.key = readPem('ssl_keyfile') ?? tls.key;
  const reqs = query.get('ssl_cert_reqs')?.toLowerCase().replace(/^cert_/, '');
  if (reqs !== undefined) {
    if (!['required', 'optional', 'none'].includes(reqs)) {
      throw new ConfigurationError(`ssl_cert_reqs in ${displayUrl} must be required, optional or none, got ${JSON.stringify(query.get('ssl_cert_reqs'))}.`);
    }
    tls.rejectUnauthorized = reqs !== 'none';
  }
  for (const key of Object.keys(tls) as (keyof RedisTlsSettings)[]) if (tls[key] === undefined) delete tls[key];
  return tls;
}

const SOCKET_REASONS: Record<string, string> = {
  ECONNREFUSED: 'Connection refused',
  ECONNRESET: 'Connection reset by peer',
  ETIMEDOUT: 'Connection timed out',
  EHOSTUNREACH: 'Host unreachable',
  ENETUNREACH: 'Network unreachable',
  ENOTFOUND: 'Host not found',
  EAI_AGAIN: 'Host name lookup failed (temporary)',
  EPIPE: 'Connection closed by peer',
};

/**
 * A short reason for a Redis or socket error, fit to log: the socket error's
 * meaning or the server's first line. Never the command or its arguments.
 */
export function describeRedisError(err: unknown): string {
  if (!(err instanceof Error)) return String(err);
  const code = (err as NodeJS.ErrnoException).code;
  if (code && SOCKET_REASONS[code]) return SOCKET_REASONS[code];
  if (err.name === 'MaxRetriesPerRequestError') return 'No connection (gave up waiting for a reconnect)';
  return err.message.split('\n', 1)[0]!.replace(/\.+$/, '');
}

const CONNECTION_ERROR_NAMES = new Set(['MaxRetriesPerRequestError', 'AbortError', 'ClusterAllFailedError', 'AmqpConnectionError', 'ReplicationWaitError']);
const CONNECTION_ERROR_MESSAGES = ['Connection is closed', "Stream isn't writeable", 'Connection in subscriber mode'];
/** Replies that mean the connection cannot be used (ioredis fails every queued command with them). */
const UNUSABLE_CONNECTION_REPLIES = /^(WRONGPASS|NOAUTH|LOADING|MASTERDOWN|READONLY|UNBLOCKED)\b|^ERR invalid password|^ERR WAIT cannot be used with replica/;

/**
 * True for errors that mean "no usable connection" (refused, reset, closed, gave
 * up reconnecting, the login refused) rather than a command the server refused. Callers log these at
 * debug level: the outage itself is reported once by the connection.
 */
export function isConnectionError(err: unknown): boolean {
  if (!(err instanceof Error)) return false;
  const code = (err as NodeJS.ErrnoException).code;
  if (code && SOCKET_REASONS[code]) return true;
  if (CONNECTION_ERROR_NAMES.has(err.name)) return true;
  return CONNECTION_ERROR_MESSAGES.some((m) => err.message.startsWith(m)) || UNUSABLE_CONNECTION_REPLIES.test(err.message);
}
