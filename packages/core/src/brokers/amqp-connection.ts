/**
 * One AMQP connection that comes back: amqplib's `connect` to the first reachable
 * endpoint of the failover list (round robin from the one that failed), then, when
 * the connection drops (RabbitMQ restarted, network lost, heartbeat missed),
 * reconnecting with backoff (0.1 s doubling to 2 s) for as long as it is open. Each
 * live connection has a `generation`; whatever belonged to an older one (channels,
 * delivery tags) is void. An outage is reported once (`ConnectionEvents.onDown`)
 * and its end once (`onRecovered`).
 */
import { EventEmitter } from 'node:events';
import { connect, type ChannelModel } from 'amqplib';
import type { ConnectionEvents } from '../redis-client.js';
import type { AmqpEndpoint } from './amqp-url.js';

/** "No usable AMQP connection": callers retry (publish retry policy) or wait. */
export class AmqpConnectionError extends Error {
  override name = 'AmqpConnectionError';
}

/** Options of an `AmqpConnection`. */
export interface AmqpConnectionOptions {
  /** Connect timeout per attempt, ms. Default 4000. */
  connectTimeoutMs?: number;
  events?: ConnectionEvents;
  /** Extra socket options (TLS certificates for amqps://). */
  socketOptions?: Record<string, unknown>;
}

const BACKOFF_START_MS = 100;
const BACKOFF_MAX_MS = 2000;

/** Reason text of an amqplib / socket error, fit to log. */
export function describeAmqpError(err: unknown): string {
  if (!(err instanceof Error)) return String(err);
  const code = (err as NodeJS.ErrnoException).code;
  if (code === 'ECONNREFUSED') return 'Connection refused';
  if (code === 'ECONNRESET') return 'Connection reset by peer';
  if (code === 'ETIMEDOUT') return 'Connection timed out';
  return err.message.split('\n', 1)[0]!.replace(/\.+$/, '');
}

/**
 * Events: `connected` (model, generation) after each (re)connect; `lost` (reason)
 * when a live connection drops.
 */
export class AmqpConnection extends EventEmitter {
  private model: ChannelModel | undefined;
  private gen = 0;
  private next = 0;
  private closed = false;
  private connecting: Promise<void> | undefined;
  private waiters = new Set<(ok: boolean) => void>();
  private downSince = 0;
  private lastError: string | undefined;
  /** Endpoint of the current (or last) connection. */
  current: AmqpEndpoint;

  constructor(
    readonly endpoints: readonly AmqpEndpoint[],
    private readonly options: AmqpConnectionOptions = {},
  ) {
    super();
    this.setMaxListeners(0);
    this.current = endpoints[0]!;
    this.connecting = this.loop();
  }

  /** The live connection's generation (0 before the first). */
  get generation(): number {
    return this.gen;
  }

  /** The live connection, or undefined while down. */
  get live(): ChannelModel | undefined {
    return this.model;
  }

  /** Why the last attempt failed, if it did. */
  get lastFailure(): string | undefined {
    return this.lastError;
  }

  /** The live connection; throws `AmqpConnectionError` while down. */
  require(): ChannelModel {
    if (this.model) return this.model;
    throw new AmqpConnectionError(`Not connected to ${this.current.displayUrl}${this.lastError ? ` (${this.lastError})` : ''}`);
  }

  /** Resolves true once connected, false after `timeoutMs` or when closed. */
  whenConnected(timeoutMs: number): Promise<boolean> {
    if (this.model) return Promise.resolve(true);
    if (this.closed || timeoutMs <= 0) return Promise.resolve(false);
    return new Promise<boolean>((resolve) => {
      const done = (ok: boolean) => {
        clearTimeout(timer);
        this.waiters.delete(done);
        resolve(ok);
      };
      const timer = setTimeout(() => done(false), timeoutMs);
      this.waiters.add(done);
    });
  }

  private async loop(): Promise<void> {
    let delay = BACKOFF_START_MS;
    while (!this.closed) {
      const endpoint = this.endpoints[this.next % this.endpoints.length]!;
      try {
        const model = await connect(endpoint.connect, { timeout: this.options.connectTimeoutMs ?? 4000, ...this.options.socketOptions });
        if (this.closed) {
          await model.close().catch(() => undefined);
          return;
        }
        this.adopt(model, endpoint);
        return;
      } catch (err) {
        this.lastError = describeAmqpError(err);
        this.markDown(endpoint, this.lastError);
        this.next++;
        // A full round of the list failed: back off before the next round.
        if (this.next % this.endpoints.length === 0) {
          await new Promise((r) => setTimeout(r, delay));
          delay = Math.min(delay * 2, BACKOFF_MAX_MS);
        }
      }
    }
  }

  private adopt(model: ChannelModel, endpoint: AmqpEndpoint): void {
    this.model = model;
    this.current = endpoint;
    this.gen++;
    this.lastError = undefined;
    const generation = this.gen;
    model.on('error', (err: Error) => (this.lastError = describeAmqpError(err)));
    model.on('close', (err?: Error) => {
      if (this.gen !== generation || this.model !== model) return;
      this.model = undefined;
      if (this.closed) return;
      const reason = err ? describeAmqpError(err) : (this.lastError ?? 'connection closed');
      this.lastError = reason;
      this.markDown(endpoint, reason);
      this.emit('lost', reason);
      this.connecting = this.loop();
    });
    if (this.downSince) {
      this.options.events?.onRecovered(endpoint.displayUrl, Date.now() - this.downSince);
      this.downSince = 0;
    }
    for (const w of [...this.waiters]) w(true);
    this.emit('connected', model, generation);
  }

  private markDown(endpoint: AmqpEndpoint, reason: string): void {
    if (this.downSince) return;
    this.downSince = Date.now();
    this.options.events?.onDown(endpoint.displayUrl, reason);
  }

  /** Close for good (no reconnect). */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const w of [...this.waiters]) w(false);
    const model = this.model;
    this.model = undefined;
    if (this.downSince) this.options.events?.onClosedWhileDown?.(this.current.displayUrl);
    if (model) await model.close().catch(() => undefined);
    await this.connecting?.catch(() => undefined);
  }
}
