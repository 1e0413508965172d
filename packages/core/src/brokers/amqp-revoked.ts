/**
 * Revoked task ids kept in RabbitMQ, so a worker that starts after a revoke was
 * broadcast (every worker offline then) still discards the task: the AMQP side of
 * `ControlChannel.persistRevoked` / `loadRevoked` (the Redis transport keeps them in
 * the `_celeriac.revoked` sorted set). Beyond Celery; Python workers never touch it.
 *
 * - The store is a stream queue `celeriac.revoked` (durable, `x-queue-type: stream`,
 *   `x-max-age` Celery's revoke expiry of 3 hours, 1 MB segments so retention drops
 *   old entries in small steps). Nothing is bound to it: messages reach it through
 *   the default exchange, so no Celery exchange or queue changes.
 * - `persist` appends one message per call, `{"task_ids": [...], "expires": <unix
 *   ms>}` (JSON), on a confirm channel: resolved once RabbitMQ has it on disk.
 *   `app.control.revoke` writes it before the broadcast, and every Celeriac worker
 *   that hears a revoke (from Python's `celery control revoke` too) writes it again.
 * - `load` reads the stream without consuming it (a stream keeps its messages;
 *   `x-stream-offset: first`, consumer prefetch set, acks to get more credit). To
 *   know it has caught up it first appends a marker `{"sync": "<uuid>"}` (confirmed)
 *   and reads until that marker comes back: the stream is ordered, so every entry
 *   written before the read started comes before it. Entries whose `expires` has
 *   passed are skipped (retention deletes whole segments only, later).
 * - A RabbitMQ without streams (before 3.9, or the `stream_queue` feature flag
 *   off), or one where the name is taken by another kind of queue, refuses the
 *   declaration: one warning per process (`CELERIAC_REVOKED_STREAM`), then `persist`
 *   and `load` do nothing, as before this store existed (`--statedb` and mingle
 *   still carry revokes between workers).
 */
import { randomUUID } from 'node:crypto';
import type { Channel, ConfirmChannel, ConsumeMessage, Options } from 'amqplib';
import { REVOKE_EXPIRES_SECONDS } from '../control/revoked-set.js';
import type { AmqpConnection } from './amqp-connection.js';
import { AmqpConnectionError, describeAmqpError } from './amqp-connection.js';

/** The stream queue the revoked ids are kept in. */
export const REVOKED_STREAM = 'celeriac.revoked';

/** How the stream is declared (a second declaration must match, or RabbitMQ refuses it). */
export const REVOKED_STREAM_ARGUMENTS: Readonly<Record<string, string | number>> = {
  'x-queue-type': 'stream',
  'x-max-age': `${REVOKE_EXPIRES_SECONDS}s`,
  'x-stream-max-segment-size-bytes': 1_000_000,
};

/** Options of an `AmqpRevokedStream`. */
export interface RevokedStreamOptions {
  /** Consumer prefetch while reading the stream. Default 1000. */
  prefetch?: number;
  /** Give up reading when nothing arrives for this long, ms. Default 30000. */
  idleTimeoutMs?: number;
}

/** One message of the stream. */
type StreamEntry = { kind: 'revoke'; taskIds: string[]; expiresAtMs: number } | { kind: 'sync'; marker: string };

/** Encode a revoke entry (see the top of this file). */
export function encodeRevokeEntry(taskIds: readonly string[], expiresAtMs: number): Buffer {
  return Buffer.from(JSON.stringify({ task_ids: taskIds, expires: expiresAtMs }));
}

/** Decode a stream message; null for anything that is not one of ours (skipped). */
export function decodeStreamEntry(content: Buffer): StreamEntry | null {
  let body: unknown;
  try {
    body = JSON.parse(content.toString('utf8'));
  } catch {
    return null;
  }
  if (typeof body !== 'object' || body === null) return null;
  const { task_ids: taskIds, expires, sync } = body as Record<string, unknown>;
  if (typeof sync === 'string') return { kind: 'sync', marker: sync };
  if (!Array.isArray(taskIds) || typeof expires !== 'number' || !Number.isFinite(expires)) return null;
  return { kind: 'revoke', taskIds: taskIds.filter((id): id is string => typeof id === 'string' && id !== ''), expiresAtMs: expires };
}

const WARNED = Symbol.for('celeriac.amqpRevokedStreamWarned');
type WarnedRegistry = { [WARNED]?: boolean };

/** The one process-wide warning that the broker cannot keep revoked ids. */
function warnUnavailable(displayUrl: string, reason: string): void {
  const registry = globalThis as WarnedRegistry;
  if (registry[WARNED]) return;
  registry[WARNED] = true;
  process.emitWarning(
    `RabbitMQ at ${displayUrl} cannot keep revoked task ids: declaring the stream queue ${JSON.stringify(REVOKED_STREAM)} was refused (${reason}). ` +
      `A task revoked while no worker is online will run when a worker starts. Streams need RabbitMQ 3.9 or later with the stream_queue feature flag enabled ` +
      `(rabbitmqctl enable_feature_flag stream_queue); if another queue has that name, delete it. Until then run workers with --statedb and keep mingle on.`,
    { code: 'CELERIAC_REVOKED_STREAM' },
  );
}

const PUBLISH_OPTIONS: Options.Publish = { contentType: 'application/json', contentEncoding: 'utf-8', deliveryMode: 2, appId: 'celeriac' };

/** The revoked-ids stream of one AMQP connection (see the top of this file). */
export class AmqpRevokedStream {
  private publisher: Promise<ConfirmChannel> | undefined;
  /** Whether the stream could be declared, per connection generation. */
  private declared: { generation: number; ok: Promise<boolean> } | undefined;
  /** Why RabbitMQ refused the stream (then nothing is kept). */
  private refused: string | undefined;
  private readonly readers = new Set<Channel>();
  private closed = false;
  private readonly prefetch: number;
  private readonly idleTimeoutMs: number;

  constructor(
    private readonly connection: AmqpConnection,
    private readonly displayUrl: string,
    private readonly connectTimeoutMs: number,
    options: RevokedStreamOptions = {},
  ) {
    this.prefetch = options.prefetch ?? 1000;
    this.idleTimeoutMs = options.idleTimeoutMs ?? 30_000;
  }

  /** False when RabbitMQ refused the stream (the warning has been given). */
  get available(): boolean {
    return this.refused === undefined;
  }

  private async live(): Promise<void> {
    if (this.closed) throw new AmqpConnectionError(`The revoked-ids stream on ${this.displayUrl} is closed`);
    if (!this.connection.live) await this.connection.whenConnected(this.connectTimeoutMs);
  }

  private async openChannel(): Promise<Channel> {
    await this.live();
    const ch = await this.connection.require().createChannel();
    ch.on('error', () => undefined); // reported through the failed operation
    return ch;
  }

  /** Declare the stream once per connection; false (and the warning) when RabbitMQ refuses it. */
  private ensureDeclared(): Promise<boolean> {
    if (this.refused !== undefined) return Promise.resolve(false);
    const generation = this.connection.generation;
    if (this.declared && this.declared.generation === generation) return this.declared.ok;
    const ok = this.declare();
    this.declared = { generation, ok };
    ok.catch(() => {
      if (this.declared?.ok === ok) this.declared = undefined; // a lost connection: declare again next time
    });
    return ok;
  }

  private async declare(): Promise<boolean> {
    const ch = await this.openChannel();
    try {
      await ch.assertQueue(REVOKED_STREAM, { durable: true, exclusive: false, autoDelete: false, arguments: { ...REVOKED_STREAM_ARGUMENTS } });
      return true;
    } catch (err) {
      // A channel error (406 unknown queue type / other arguments, 403, 540): RabbitMQ will not keep them.
      if (typeof (err as { code?: unknown }).code === 'number' && this.connection.live) {
        this.refused = describeAmqpError(err);
        warnUnavailable(this.displayUrl, this.refused);
        return false;
      }
      throw new AmqpConnectionError(`Could not declare the revoked-ids stream ${JSON.stringify(REVOKED_STREAM)} on ${this.displayUrl}: ${describeAmqpError(err)}`);
    } finally {
      await ch.close().catch(() => undefined);
    }
  }

  private publishChannel(): Promise<ConfirmChannel> {
    if (this.publisher) return this.publisher;
    const opening = this.live().then(async () => {
      const ch = await this.connection.require().createConfirmChannel();
      ch.on('error', () => undefined);
      ch.on('close', () => {
        if (this.publisher === opening) this.publisher = undefined;
      });
      return ch;
    });
    opening.catch(() => {
      if (this.publisher === opening) this.publisher = undefined;
    });
    return (this.publisher = opening);
  }

  /** Append `content` to the stream; resolves once RabbitMQ confirmed it. */
  private async append(content: Buffer): Promise<void> {
    const ch = await this.publishChannel();
    await new Promise<void>((resolve, reject) => {
      try {
        ch.publish('', REVOKED_STREAM, content, PUBLISH_OPTIONS, (err: unknown) => (err ? reject(err) : resolve()));
      } catch (err) {
        reject(err);
      }
    }).catch((err: unknown) => {
      throw new AmqpConnectionError(`Could not append to the revoked-ids stream ${JSON.stringify(REVOKED_STREAM)} on ${this.displayUrl}: ${describeAmqpError(err)}`);
    });
  }

  /** Keep `ids` as revoked until `expiresAtMs` (unix ms). Does nothing when RabbitMQ refused the stream. */
  async persist(ids: readonly string[], expiresAtMs: number): Promise<void> {
    if (ids.length === 0 || !(await this.ensureDeclared())) return;
    await this.append(encodeRevokeEntry(ids, expiresAtMs));
  }

  /**
   * Every id kept and not expired: id → unix seconds it was revoked (its expiry less
   * Celery's 3 hours, as the Redis transport reports it). Empty when RabbitMQ refused the stream.
   */
  async load(): Promise<Map<string, number>> {
    if (!(await this.ensureDeclared())) return new Map();
    const marker = randomUUID();
    await this.append(Buffer.from(JSON.stringify({ sync: marker })));
    const expiries = await this.readUntil(marker);
    const out = new Map<string, number>();
    for (const [id, expiresAtMs] of expiries) out.set(id, (expiresAtMs - REVOKE_EXPIRES_SECONDS * 1000) / 1000);
    return out;
  }

  /** Read the stream from its first message up to `marker`: id → latest expiry, unexpired only. */
  private async readUntil(marker: string): Promise<Map<string, number>> {
    const ch = await this.openChannel();
    this.readers.add(ch);
    const expiries = new Map<string, number>();
    let read = 0;
    try {
      await ch.prefetch(this.prefetch, false);
      await new Promise<void>((resolve, reject) => {
        let settled = false;
        const finish = (err?: Error) => {
          if (settled) return;
          settled = true;
          clearTimeout(idle);
          if (err) reject(err);
          else resolve();
        };
        const fail = (why: string) =>
          finish(new AmqpConnectionError(`Could not read the revoked-ids stream ${JSON.stringify(REVOKED_STREAM)} on ${this.displayUrl}: ${why} (${read} message(s) read)`));
        let idle = setTimeout(() => fail(`nothing arrived for ${this.idleTimeoutMs} ms`), this.idleTimeoutMs);
        ch.once('close', () => fail('the channel closed'));
        const onMessage = (msg: ConsumeMessage | null) => {
          if (!msg) return fail('RabbitMQ cancelled the consumer');
          if (settled) return;
          read++;
          clearTimeout(idle);
          idle = setTimeout(() => fail(`nothing arrived for ${this.idleTimeoutMs} ms`), this.idleTimeoutMs);
          const entry = decodeStreamEntry(msg.content);
          const done = entry?.kind === 'sync' && entry.marker === marker;
          // Acks give the consumer more credit (a stream keeps the messages); one ack per batch.
          if (done || read % Math.max(1, Math.floor(this.prefetch / 2)) === 0) ch.ack(msg, true);
          if (done) return finish();
          if (entry?.kind !== 'revoke' || entry.expiresAtMs <= Date.now()) return;
          for (const id of entry.taskIds) expiries.set(id, Math.max(expiries.get(id) ?? 0, entry.expiresAtMs));
        };
        ch.consume(REVOKED_STREAM, onMessage, { noAck: false, arguments: { 'x-stream-offset': 'first' } }).catch((err: unknown) => fail(describeAmqpError(err)));
      });
    } finally {
      this.readers.delete(ch);
      await ch.close().catch(() => undefined);
    }
    const now = Date.now();
    for (const [id, expiresAtMs] of expiries) if (expiresAtMs <= now) expiries.delete(id);
    return expiries;
  }

  /** Close the channels (a read under way fails). */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    const publisher = this.publisher;
    this.publisher = undefined;
    await Promise.all([...this.readers].map((ch) => ch.close().catch(() => undefined)));
    this.readers.clear();
    if (publisher) await (await publisher.catch(() => undefined))?.close().catch(() => undefined);
  }
}
