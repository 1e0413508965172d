/**
 * The ioredis clients of the broker and result backend, built from one
 * `RedisConnectionSettings` (redis-connection.ts), each with an error listener so
 * ioredis never prints "Unhandled error event": an outage is reported once per
 * component through `ConnectionEvents`, and once more on recovery.
 */
import { Redis, type RedisOptions } from 'ioredis';
import { describeRedisError, type RedisConnectionSettings } from './redis-connection.js';

const CONNECTION_KEYS = ['host', 'port', 'path', 'username', 'password', 'db', 'tls', 'sentinels', 'name', 'role', 'sentinelUsername', 'sentinelPassword'] as const;

/**
 * Sentinel: a command refused by a master demoted in a failover (READONLY), or by a
 * master without its replicas (MASTERDOWN): reconnect (ioredis asks the sentinels
 * again) and send the command once more. Nothing was written, so resending is safe.
 */
const reconnectOnFailover = (err: Error): 2 | false => (/^(READONLY|MASTERDOWN)\b/.test(err.message) ? 2 : false);

/** Reports a client group's outages: one line when it goes down, one when it is back. */
export interface ConnectionEvents {
  /** The first connection error of an outage (never called again until `onRecovered`). */
  onDown(displayUrl: string, reason: string): void;
  /** Every client of the group is connected again after `downMs`. */
  onRecovered(displayUrl: string, downMs: number): void;
  /** The outage ended because the clients still down were closed on purpose (no recovery to report). */
  onClosedWhileDown?(displayUrl: string): void;
}

/** Tracks which clients of one component are down, so an outage is reported once. */
class OutageTracker {
  private readonly down = new Set<Redis>();
  private since = 0;

  constructor(
    private readonly displayUrl: string,
    private readonly events: ConnectionEvents | undefined,
  ) {}

  watch(client: Redis): void {
    client.on('error', (err: Error) => this.failed(client, err));
    client.on('ready', () => this.recovered(client));
    client.on('end', () => this.closed(client)); // closed on purpose
  }

  /** `client` was closed on purpose (also between reconnect attempts, where ioredis emits no 'end'). */
  closed(client: Redis): void {
    if (this.down.delete(client) && this.down.size === 0) this.events?.onClosedWhileDown?.(this.displayUrl);
  }

  private failed(client: Redis, err: Error): void {
    if (this.down.has(client)) return;
    this.down.add(client);
    if (this.down.size > 1) return;
    this.since = Date.now();
    this.events?.onDown(this.displayUrl, describeRedisError(err));
  }

  private recovered(client: Redis): void {
    if (!this.down.delete(client) || this.down.size > 0) return;
    this.events?.onRecovered(this.displayUrl, Date.now() - this.since);
  }
}

const trackers = new WeakMap<Redis, { tracker: OutageTracker; options: RedisOptions }>();

/** Options for the ioredis client beside the connection settings. */
export interface RedisClientOptions {
  /** Extra ioredis options (timeouts, offline queue...); connection fields are taken from the settings. */
  redis?: RedisOptions;
  /** Where outages are reported; nothing is printed by ioredis either way. */
  events?: ConnectionEvents;
}

/** An ioredis client for the settings, with an error listener (no "Unhandled error event"). */
export function createRedisClient(settings: RedisConnectionSettings, options: RedisClientOptions = {}): Redis {
  const passThrough: RedisOptions = { ...options.redis };
  for (const key of CONNECTION_KEYS) delete (passThrough as Record<string, unknown>)[key];
  const sentinel = settings.sentinel;
  const clientOptions: RedisOptions = {
    ...passThrough,
    ...(sentinel
      ? {
          // ioredis asks the sentinels for the master, and again on every reconnect.
          sentinels: sentinel.sentinels.map((a) => ({ ...a })),
          name: sentinel.masterName,
          role: 'master' as const,
          ...(sentinel.sentinelUsername ? { sentinelUsername: sentinel.sentinelUsername } : {}),
          ...(sentinel.sentinelPassword ? { sentinelPassword: sentinel.sentinelPassword } : {}),
          ...(sentinel.sentinelCommandTimeoutMs ? { sentinelCommandTimeout: sentinel.sentinelCommandTimeoutMs } : {}),
          reconnectOnError: passThrough.reconnectOnError ?? reconnectOnFailover,
        }
      : { host: settings.host, port: settings.port }),
    db: settings.db,
    ...(settings.username ? { username: settings.username } : {}),
    ...(settings.password ? { password: settings.password } : {}),
    ...(settings.tls ? { tls: { ...settings.tls } } : {}),
  };
  const client = new Redis(clientOptions);
  const tracker = new OutageTracker(settings.displayUrl, options.events);
  tracker.watch(client);
  trackers.set(client, { tracker, options: clientOptions });
  return client;
}

/** A second connection like `client` (same settings and outage reporting), e.g. for blocking or pub/sub. */
export function duplicateRedisClient(client: Redis, overrides: RedisOptions = {}): Redis {
  const known = trackers.get(client);
  if (!known) throw new Error('duplicateRedisClient: the client was not made by createRedisClient');
  const copy = new Redis({ ...known.options, ...overrides });
  known.tracker.watch(copy);
  trackers.set(copy, { tracker: known.tracker, options: { ...known.options, ...overrides } });
  return copy;
}

/** Resolves true once `client` is ready, false on its next error or after `timeoutMs`. */
export function whenRedisReady(client: Redis, timeoutMs: number): Promise<boolean> {
  if (client.status === 'ready') return Promise.resolve(true);
  if (client.status === 'end') return Promise.resolve(false);
  const next = nextReadyOutcome(client);
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve(false), Math.max(0, timeoutMs));
    void next.then((ok) => {
      clearTimeout(timer);
      resolve(ok);
    });
  });
}

/** The pending `nextReadyOutcome` of each client: concurrent waiters share one set of listeners. */
const readyOutcomes = new WeakMap<Redis, Promise<boolean>>();

/**
 * True on the client's next 'ready', false on its next 'error' or 'end'. Shared by
 * every caller until then: a producer's first thousand publishes on a connection
 * still opening add three listeners in all, not three each (removing those was a
 * linear scan per caller).
 */
function nextReadyOutcome(client: Redis): Promise<boolean> {
  let outcome = readyOutcomes.get(client);
  if (outcome === undefined) {
    outcome = new Promise<boolean>((resolve) => {
      const done = (ok: boolean) => {
        readyOutcomes.delete(client);
        client.off('ready', onReady);
        client.off('error', onError);
        client.off('end', onError);
        resolve(ok);
      };
      const onReady = () => done(true);
      const onError = () => done(false);
      client.once('ready', onReady);
      client.once('error', onError);
      client.once('end', onError);
    });
    readyOutcomes.set(client, outcome);
  }
  return outcome;
}

/**
 * Resolves as soon as `client` is not connected (at once if it is not now); `cancel`
 * removes the listener when the caller no longer waits.
 */
export function whenRedisLost(client: Redis): { promise: Promise<void>; cancel(): void } {
  if (client.status !== 'ready') return { promise: Promise.resolve(), cancel: () => undefined };
  let onClose: () => void = () => undefined;
  const promise = new Promise<void>((resolve) => {
    onClose = () => resolve();
    client.once('close', onClose);
  });
  return { promise, cancel: () => void client.off('close', onClose) };
}

/**
 * Close a client without waiting on a server that is not there: QUIT when
 * connected (bounded by `timeoutMs`), otherwise drop the connection at once.
 * Never throws.
 */
export async function closeRedisClient(client: Redis, timeoutMs = 2000): Promise<void> {
  if (client.status !== 'ready') return dropRedisClient(client);
  let timer: NodeJS.Timeout | undefined;
  const timedOut = new Promise<void>((resolve) => (timer = setTimeout(resolve, timeoutMs)));
  await Promise.race([client.quit().then(() => undefined, () => undefined), timedOut]);
  clearTimeout(timer);
  if ((client.status as string) !== 'end') dropRedisClient(client);
}

/** ioredis internals used by `dropRedisClient` (present in ioredis 5, private in its types). */
interface RedisInternals {
  flushQueue(error: Error): void;
}

/**
 * Drop the connection now and fail every command still waiting for it with
 * "Connection is closed.". ioredis's own `disconnect()` leaves the offline queue
 * pending forever when called between reconnect attempts (nothing would settle a
 * pending reserve or ack, and a shutdown would hang on it).
 */
export function dropRedisClient(client: Redis): void {
  const wasReconnecting = client.status === 'reconnecting';
  client.disconnect();
  trackers.get(client)?.tracker.closed(client);
  if (wasReconnecting) (client as unknown as RedisInternals).flushQueue(new Error('Connection is closed.'));
}


/** The minimal logger `loggedConnectionEvents` writes to (pino's shape). */
export interface ConnectionLog {
  warn(fields: object, message: string): void;
  info(fields: object, message: string): void;
}

/**
 * Outage reporting through a logger: one warning when `component` (e.g.
 * "broker") loses its connection, one info line when it is back.
 */
export function loggedConnectionEvents(log: () => ConnectionLog, component: string, onDown?: (reason: string) => void): ConnectionEvents {
  return {
    onDown(url, reason) {
      onDown?.(reason);
      log().warn({ url, reason }, `Connection to ${component} ${url} lost: ${reason}. Trying to re-establish the connection...`);
    },
    onRecovered(url, downMs) {
      log().info({ url, downMs }, `Connected to ${component} ${url} again after ${(downMs / 1000).toFixed(1)} s`);
    },
  };
}

/**
 * One outage report for several components that reach the same server in the
 * same role: a worker's consumer connection and its app's producer (both
 * "broker") each track their own clients, and would otherwise each log the
 * outage. The first member down reports it, the last member back reports the
 * recovery (with the time since the first went down). Per-member hooks run on
 * every member's own report (e.g. a worker's give-up timer on its broker).
 */
export class SharedConnectionEvents {
  private readonly downByUrl = new Map<string, { members: Set<number>; since: number }>();
  private members = 0;

  constructor(private readonly events: ConnectionEvents) {}

  /** The events to give one more component; `own` hooks are called for this member's reports. */
  member(own: Partial<ConnectionEvents> = {}): ConnectionEvents {
    const id = this.members++;
    return {
      onDown: (url, reason) => {
        own.onDown?.(url, reason);
        let state = this.downByUrl.get(url);
        if (!state) this.downByUrl.set(url, (state = { members: new Set(), since: Date.now() }));
        const first = state.members.size === 0;
        state.members.add(id);
        if (first) this.events.onDown(url, reason);
      },
      onRecovered: (url, downMs) => {
        own.onRecovered?.(url, downMs);
        const state = this.downByUrl.get(url);
        if (!state?.members.delete(id) || state.members.size > 0) return;
        this.downByUrl.delete(url);
        this.events.onRecovered(url, Date.now() - state.since);
      },
      // Closed while down (e.g. a stopped worker's connection): it no longer counts,
      // so the others' recovery is still reported, and the next outage too.
      onClosedWhileDown: (url) => {
        own.onClosedWhileDown?.(url);
        const state = this.downByUrl.get(url);
        if (!state?.members.delete(id)) return;
        if (state.members.size === 0) this.downByUrl.delete(url);
      },
    };
  }
}
