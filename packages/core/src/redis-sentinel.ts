/**
 * Redis Sentinel settings, read as kombu's `SentinelChannel` and Celery's
 * `SentinelBackend` read them, so one configuration serves Python and Celeriac.
 *
 * URL: `sentinel://[[user]:password@]host[:port][/db];sentinel://host2[:port]...`:
 * one `sentinel://` address per sentinel (port 26379 when left out), joined by `;`.
 * The userinfo, database and query of the first URL that has them are the
 * *master's* (as kombu and Celery take them from the first URL); the sentinels'
 * own login is `sentinel_kwargs`.
 *
 * Transport options (`broker_transport_options` / `result_backend_transport_options`,
 * snake_case or camelCase):
 * - `master_name` / `masterName` (required): the master group the sentinels watch.
 * - `sentinel_kwargs` / `sentinelKwargs`: `{ password, username, socket_timeout }` for
 *   the connections to the sentinels (redis-py's `Sentinel(sentinel_kwargs=...)`).
 * - `min_other_sentinels`: only 0 (ioredis has no such check); anything else is refused.
 */
import { ConfigurationError } from './errors.js';

/** Port of a `sentinel://` address without one (kombu's `SentinelTransport.default_port`). */
export const SENTINEL_DEFAULT_PORT = 26379;

/** One sentinel's address. */
export interface SentinelAddress {
  host: string;
  port: number;
}

/** Where the sentinels are and which master to ask them for. Structured-cloneable. */
export interface RedisSentinelSettings {
  /** The sentinels, in the order given: asked in turn for the master's address. */
  sentinels: SentinelAddress[];
  /** `master_name`: the master group the sentinels watch. */
  masterName: string;
  /** `sentinel_kwargs.username`, for sentinels with ACL users. */
  sentinelUsername?: string;
  /** `sentinel_kwargs.password`: the sentinels' own password (not the master's). */
  sentinelPassword?: string;
  /** `sentinel_kwargs.socket_timeout` in ms: how long a sentinel may take to answer. */
  sentinelCommandTimeoutMs?: number;
}

/** The Sentinel transport options, as Celery users write them (snake_case) or camelCase. */
export interface SentinelTransportOptions {
  masterName?: string;
  master_name?: string;
  sentinelKwargs?: SentinelKwargs;
  sentinel_kwargs?: SentinelKwargs;
  minOtherSentinels?: number;
  min_other_sentinels?: number;
  [option: string]: unknown;
}

/** redis-py's `sentinel_kwargs`: connection options for the sentinels themselves. */
export interface SentinelKwargs {
  password?: string;
  username?: string;
  /** Seconds. */
  socket_timeout?: number;
  [option: string]: unknown;
}

/** The master's login and database, from the URLs (the first URL that gives each). */
export interface SentinelMasterLogin {
  username?: string;
  password?: string;
  /** The URL path or `?db=`, undefined when no URL gives one. */
  dbText?: string;
  query: URLSearchParams;
}

const KNOWN_KWARGS = new Set(['password', 'username', 'socket_timeout']);

/** True for `sentinel://...` (also a `;` list). */
export function isSentinelUrl(url: string): boolean {
  return /^sentinel:/i.test(url.trimStart());
}

/**
 * Parse a `sentinel://` URL list and the transport options. `displayUrl` is the
 * masked URL for messages. Throws a `ConfigurationError` naming the fix.
 */
export function parseSentinelUrl(url: string, options: SentinelTransportOptions, displayUrl: string): { sentinel: RedisSentinelSettings; master: SentinelMasterLogin } {
  const sentinels: SentinelAddress[] = [];
  const master: SentinelMasterLogin = { query: new URLSearchParams() };
  for (const chunk of url.split(';').map((c) => c.trim()).filter(Boolean)) {
    let parsed: URL;
    try {
      parsed = new URL(chunk);
    } catch {
      throw new ConfigurationError(`Cannot parse the Sentinel URL ${displayUrl}: use sentinel://[:password@]host:26379[/db];sentinel://host2:26379 (one sentinel:// address per sentinel, joined by ";").`);
    }
    if (parsed.protocol.toLowerCase() !== 'sentinel:') {
      throw new ConfigurationError(
        `Every address in a Sentinel URL must be sentinel://host:port, got ${parsed.protocol}// in ${displayUrl}. ` +
          'List the sentinels, not the Redis servers: sentinel://host1:26379;sentinel://host2:26379.',
      );
    }
    const host = parsed.hostname.replace(/^\[|\]$/g, '');
    if (!host) throw new ConfigurationError(`A sentinel address in ${displayUrl} has no host: write sentinel://host:26379.`);
    sentinels.push({ host, port: parsed.port ? Number(parsed.port) : SENTINEL_DEFAULT_PORT });
    if (master.username === undefined && parsed.username) master.username = decodeURIComponent(parsed.username);
    if (master.password === undefined && parsed.password) master.password = decodeURIComponent(parsed.password);
    const db = parsed.pathname.replace(/^\/+/, '');
    if (master.dbText === undefined && db) master.dbText = db;
    for (const [key, value] of parsed.searchParams) if (!master.query.has(key)) master.query.set(key, value);
  }
  if (sentinels.length === 0) throw new ConfigurationError(`The Sentinel URL ${displayUrl} names no sentinel: write sentinel://host:26379;sentinel://host2:26379.`);
  return { sentinel: { sentinels, masterName: masterNameOf(options, displayUrl), ...sentinelLogin(options, displayUrl) }, master };
}

function masterNameOf(options: SentinelTransportOptions, displayUrl: string): string {
  const name = options.masterName ?? options.master_name;
  if (typeof name === 'string' && name.trim() !== '') return name;
  throw new ConfigurationError(
    `The Sentinel URL ${displayUrl} needs the name of the master group the sentinels watch: set the master_name transport option ` +
      "(brokerTransportOptions: { masterName: 'mymaster' }, or resultBackendTransportOptions for a sentinel:// result backend; " +
      "Celery's broker_transport_options = {'master_name': 'mymaster'}). It is the name in the sentinels' `sentinel monitor <name> ...` line.",
  );
}

function sentinelLogin(options: SentinelTransportOptions, displayUrl: string): Omit<RedisSentinelSettings, 'sentinels' | 'masterName'> {
  const others = options.minOtherSentinels ?? options.min_other_sentinels;
  if (others !== undefined && Number(others) !== 0) {
    throw new ConfigurationError(
      `min_other_sentinels=${JSON.stringify(others)} is not supported for ${displayUrl} (ioredis's Sentinel client has no such check); remove it or set it to 0.`,
    );
  }
  const kwargs = options.sentinelKwargs ?? options.sentinel_kwargs;
  if (kwargs === undefined || kwargs === null) return {};
  if (typeof kwargs !== 'object' || Array.isArray(kwargs)) {
    throw new ConfigurationError(`sentinel_kwargs for ${displayUrl} must be an object such as { password: '...' }, got ${JSON.stringify(kwargs)}.`);
  }
  const unknown = Object.keys(kwargs).filter((k) => !KNOWN_KWARGS.has(k));
  if (unknown.length > 0) {
    throw new ConfigurationError(
      `sentinel_kwargs for ${displayUrl} has ${unknown.map((k) => JSON.stringify(k)).join(', ')}, which Celeriac does not support: ` +
        'use password, username and socket_timeout (seconds), or remove the others.',
    );
  }
  const login: Omit<RedisSentinelSettings, 'sentinels' | 'masterName'> = {};
  if (kwargs.password !== undefined && kwargs.password !== null) login.sentinelPassword = String(kwargs.password);
  if (kwargs.username !== undefined && kwargs.username !== null) login.sentinelUsername = String(kwargs.username);
  if (kwargs.socket_timeout !== undefined && kwargs.socket_timeout !== null) {
    const seconds = Number(kwargs.socket_timeout);
    if (!(seconds > 0)) throw new ConfigurationError(`sentinel_kwargs.socket_timeout for ${displayUrl} must be a number of seconds > 0, got ${JSON.stringify(kwargs.socket_timeout)}.`);
    login.sentinelCommandTimeoutMs = Math.round(seconds * 1000);
  }
  return login;
}
