/**
 * Redis result backend — Celery 5.2's layout and write sequence, so Python clients
 * read Celeriac's results and Celeriac reads Python workers' results.
 *
 * Connection string: `redis://[[user]:password@]host[:port][/db]`, `rediss://` for TLS,
 * `sentinel://host:26379;sentinel://host2:26379` with `masterName` (Celery's
 * SentinelBackend); then a stored result resolves only once a replica has it
 * (`waitForReplicas`, see redis-replication.ts).
 * Options: `resultExpires` (seconds, default 86400; 0 or null = never expire).
 *
 * Keys: `celery-task-meta-<task id>` — the JSON result document (Python `json.dumps`
 * formatting, Celery's field order). Every write is `SETEX` (or `SET`) plus
 * `PUBLISH` of the same JSON on the channel named like the key, which is what a
 * Python `AsyncResult.get()` waits on. A stored SUCCESS is never overwritten.
 *
 * Waiting is push-based: one subscriber connection per backend multiplexes all
 * waiters (SUBSCRIBE per task id, refcounted), with one GET after subscribing to
 * close the race, and one GET per waiter after a reconnect.
 */
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { maskUrl } from '../mask-url.js';
import { moduleRoot } from '../module-root.cjs';
import type { Redis, RedisOptions } from 'ioredis';
import { closeRedisClient, createRedisClient, dropRedisClient, duplicateRedisClient, type ConnectionEvents } from '../redis-client.js';
import { resolveRedisConnection, type RedisConnectionSettings } from '../redis-connection.js';
import { ReplicationBarrier, replicaWaitFrom } from '../redis-replication.js';
import type { SentinelKwargs } from '../redis-sentinel.js';
import { RedisScript, replies } from '../brokers/redis-scripts.js';
import { runScriptNow } from '../brokers/redis-script-now.js';

const BACKEND_LUA_DIR = pathToFileURL(join(moduleRoot, 'backends', 'redis-lua') + '/');
import { CeleriacError, ConfigurationError, MessageDecodeError, TimeoutError } from '../errors.js';
import { dumpsPython, loadsPython } from '../protocol/python-json.js';
import { getSerializer } from '../protocol/serialization.js';
import { READY_STATES } from '../states.js';
import type { ChordMember, ChordPart, EncodedResult, ResultBackend, ResultDocument, ResultTuple, ResultWatch, ThreadResultTarget, WaitOptions } from './backend.js';
import type { TaskState } from '../states.js';

/** Options of the Redis result backend. */
export interface RedisBackendOptions {
  /** `result_expires` in seconds; 0 or null = keep forever. Default 86400 (1 day). */
  resultExpires?: number | null;
  /** Extra ioredis options (TLS certificates, timeouts...). `keyPrefix` is refused. */
  redis?: RedisOptions;
  /** Where connection outages are reported (one line down, one on recovery). */
  connectionEvents?: ConnectionEvents;
  /**
   * Celery's `result_backend_transport_options.result_chord_ordered`: chord results
   * in a sorted set by group index (true, the default) or a list in finishing order.
   */
  result_chord_ordered?: boolean;
  /** `result_serializer`: how documents are written and read. Default `json`. */
  serializer?: string;
  /** `result_accept_content`: what a stored document may be decoded as; must include `serializer`. Default: `[serializer]`. */
  accept?: readonly string[];
  /** `sentinel://` URLs: the master group the sentinels watch (Celery's `master_name`). */
  masterName?: string;
  master_name?: string;
  /** `sentinel://` URLs: the sentinels' own login (Celery's `sentinel_kwargs`). */
  sentinelKwargs?: SentinelKwargs;
  sentinel_kwargs?: SentinelKwargs;
  /** Replicas that must have a stored result before `storeResult` resolves. Default 1 with `sentinel://`, else 0 (see redis-replication.ts). */
  waitForReplicas?: number;
  /** How long to wait for them (ms). Default 1000. */
  waitForReplicasTimeoutMs?: number;
}

/** How result documents become bytes and back (Celery keeps no content type with them: both sides use result_serializer). */
interface ResultCodec {
  /** The serializer's name (errors name it). */
  name: string;
  /** Binary (msgpack): read with GETBUFFER and `messageBuffer`. */
  binary: boolean;
  encode(doc: ResultDocument): string | Buffer;
  decode(raw: string | Buffer): unknown;
}

function resultCodec(name: string, accept: readonly string[]): ResultCodec {
  const serializer = getSerializer(name);
  // Celery refuses to decode a result whose serializer result_accept_content does not list.
  if (!accept.some((a) => a === serializer.name || a === serializer.contentType)) {
    throw new ConfigurationError(
      `resultSerializer ${serializer.name} is not in resultAcceptContent (${accept.join(', ')}): results could be written but never read back. Add "${serializer.name}" to resultAcceptContent (or acceptContent).`,
    );
  }
  if (serializer.name === 'json') return { name: 'json', binary: false, encode: (doc) => dumpsPython(doc), decode: (raw) => loadsPython(String(raw)) };
  const binary = serializer.contentEncoding === 'binary';
  return {
    name: serializer.name,
    binary,
    encode: (doc) => (binary ? serializer.encode(doc) : serializer.encode(doc).toString('utf8')),
    decode: (raw) => serializer.decode(typeof raw === 'string' ? Buffer.from(raw, 'utf8') : raw),
  };
}

/** The backend's Lua scripts (see each file's header in `redis-lua/` for KEYS and ARGV). */
const backendScripts = {
  /** 1 when written, 0 when an earlier SUCCESS was kept. */
  storeResult: new RedisScript<readonly [key: string], readonly [document: string | Buffer, ttlSeconds: number], number>('storeResult-1', replies.integer, BACKEND_LUA_DIR),
  /** Per document: 1 written, 0 earlier SUCCESS kept, or Redis's error message. */
  storeResults: new RedisScript<readonly [], readonly (string | Buffer | number)[], unknown[]>('storeResults-0', replies.array, BACKEND_LUA_DIR),
  /** {0, count} while the chord waits, {1, count, member...} to the one call that completed it. */
  chordPartReturn: new RedisScript<
    readonly [j: string, t: string, s: string],
    readonly [member: string, score: string, ttl: number, ordered: string],
    unknown[]
  >('chordPartReturn-3', replies.array, BACKEND_LUA_DIR),
};

/** Celery's key for a saved group result and, with a suffix (`.j`, `.t`, `.s`), its chord counters. */
export function groupKey(groupId: string, suffix = ''): string {
  return `celery-taskset-meta-${groupId}${suffix}`;
}

/** Celery's key (and pub/sub channel) for a task's result. */
export function resultKey(taskId: string): string {
  return `celery-task-meta-${taskId}`;
}

interface Waiter {
  resolve(doc: ResultDocument): void;
  reject(err: Error): void;
}

interface Channel {
  waiters: Set<Waiter>;
  /** `watch` listeners: every document published on the channel. */
  watchers: Set<(doc: ResultDocument) => void>;
  subscribed: Promise<unknown>;
}

/** Celery-compatible Redis result backend with pub/sub wake-ups. */
export class RedisBackend implements ResultBackend {
  readonly displayUrl: string;
  private readonly redis: Redis;
  private subscriber: Redis | undefined;
  private readonly ttl: number;
  private readonly chordOrdered: boolean;
  private readonly channels = new Map<string, Channel>();
  private closed = false;
  /** false once the server turned out not to support the batch write (Redis < 6.2). */
  private batchScript: boolean | undefined;
  private closing: Promise<void> | undefined;
  private readonly connection: RedisConnectionSettings;
  private readonly codec: ResultCodec;
  /** `waitForReplicas`: stores resolve once replicas have them (on by default with Sentinel). */
  private readonly replication: ReplicationBarrier | null;

  constructor(url: string, options: RedisBackendOptions = {}) {
    this.displayUrl = maskUrl(url);
    this.ttl = Math.max(0, Math.trunc(options.resultExpires ?? 86400));
    this.chordOrdered = options.result_chord_ordered !== false;
    const serializer = options.serializer ?? 'json';
    this.codec = resultCodec(serializer, options.accept ?? [serializer]);
    const connection = resolveRedisConnection(url, options.redis, options);
    this.connection = connection;
    this.redis = createRedisClient(connection, { redis: { enableAutoPipelining: true, ...options.redis }, events: options.connectionEvents });
    const wait = replicaWaitFrom(options as Record<string, unknown>, connection.sentinel !== undefined, this.displayUrl);
    this.replication = wait && new ReplicationBarrier(this.redis, wait, this.displayUrl);
  }

  /** Store a document and wake waiters, unless SUCCESS is already stored. */
  async storeResult(doc: ResultDocument): Promise<void> {
    await backendScripts.storeResult.run(this.redis, [resultKey(doc.task_id)], [this.codec.encode(doc), this.ttl]);
    if (this.replication) await this.replication.afterWrites();
  }

  /**
   * Store many documents in one round trip. Throws before writing anything if one
   * cannot be encoded, and with the first error Redis gave for a document.
   */
  async storeResults(docs: readonly ResultDocument[]): Promise<void> {
    const errors = await this.storeEncoded(docs.map((doc) => this.encodeResult(doc)));
    const first = errors.find((e) => e !== null);
    if (first) throw first;
  }

  /** Python `json.dumps` of the document; throws a TypeError naming the unencodable value. */
  encodeResult(doc: ResultDocument): EncodedResult {
    return { taskId: doc.task_id, status: doc.status, payload: this.codec.encode(doc) };
  }

  /** Write encoded documents in one pipeline; one error (or null) per document. */
  async storeEncoded(results: readonly EncodedResult[]): Promise<(Error | null)[]> {
    const errors = await this.writeEncoded(results);
    if (!this.replication || errors.every((e) => e !== null)) return errors;
    // Written, but only counted as stored once replicas have it (Sentinel).
    const replicated = await this.replication.afterWrites().then(() => null, (err: Error) => err);
    return replicated ? errors.map((e) => e ?? replicated) : errors;
  }

  private async writeEncoded(results: readonly EncodedResult[]): Promise<(Error | null)[]> {
    if (results.length === 0) return [];
    if (this.batchScript !== false) {
      const errors = await this.storeBatch(results);
      // Redis < 6.2 has no SET ... GET (nothing was written): one script per document from now on.
      if (!errors.some((e) => e !== null && /syntax error/i.test(e.message))) return errors;
      this.batchScript = false;
    }
    // Auto-pipelining sends these together: still one round trip.
    const written = await Promise.allSettled(results.map((r) => backendScripts.storeResult.run(this.redis, [resultKey(r.taskId)], [r.payload, this.ttl])));
    return written.map((w) => (w.status === 'rejected' ? (w.reason instanceof Error ? w.reason : new Error(String(w.reason))) : null));
  }

  /** One storeResults script call for the whole batch; one error (or null) per document. */
  private async storeBatch(results: readonly EncodedResult[]): Promise<(Error | null)[]> {
    const keys = results.map((r) => resultKey(r.taskId));
    const args: (string | Buffer | number)[] = [this.ttl];
    for (const r of results) args.push(r.payload);
    // Written now (not at the auto-pipeline's setImmediate): waiters and freed slots wait on it.
    const reply = await runScriptNow(this.redis, backendScripts.storeResults, [], args, keys);
    if (reply.length !== results.length) throw new CeleriacError(`Result backend ${this.displayUrl}: unexpected reply to the batch write.`);
    return reply.map((r) => (typeof r === 'string' ? new Error(r) : null));
  }

  /** See `ResultBackend.threadTarget`. */
  threadTarget(): ThreadResultTarget {
    return { connection: this.connection, expiresSeconds: this.ttl };
  }

  /** The stored document, or null (PENDING). */
  async getResult(taskId: string): Promise<ResultDocument | null> {
    return parseDocument(await this.read(resultKey(taskId)), taskId, this.codec);
  }

  /**
   * Resolve with the first ready document (SUCCESS, FAILURE, REVOKED), woken by
   * PUBLISH — no polling. Rejects with `TimeoutError` after `timeoutMs`.
   */
  waitForResult(taskId: string, options: WaitOptions = {}): Promise<ResultDocument> {
    if (this.closed) return Promise.reject(new CeleriacError(`Result backend ${this.displayUrl} is closed.`));
    const key = resultKey(taskId);
    return new Promise<ResultDocument>((resolve, reject) => {
      let timer: NodeJS.Timeout | undefined;
      const finish = (err: Error | null, doc?: ResultDocument) => {
        if (!channel.waiters.delete(waiter)) return;
        clearTimeout(timer);
        if (channel.waiters.size === 0 && channel.watchers.size === 0) this.unsubscribe(key, channel);
        if (err) reject(err);
        else resolve(doc!);
      };
      const waiter: Waiter = { resolve: (doc) => finish(null, doc), reject: (err) => finish(err) };
      const channel = this.subscribe(key);
      channel.waiters.add(waiter);
      if (options.timeoutMs !== undefined) {
        timer = setTimeout(
          () => finish(new TimeoutError(`The result of task ${taskId} was not ready within ${options.timeoutMs} ms (still pending or running).`)),
          options.timeoutMs,
        );
      }
      channel.subscribed
        .then(() => this.checkStored(key, taskId, waiter))
        .catch((err: unknown) => waiter.reject(err instanceof Error ? err : new Error(String(err))));
    });
  }

  /**
   * Every document published for `taskId` from now on (all states: Celery and
   * Celeriac workers PUBLISH each write), on the shared subscriber connection.
   */
  watch(taskId: string, onDocument: (doc: ResultDocument) => void): ResultWatch {
    if (this.closed) return { ready: Promise.reject(new CeleriacError(`Result backend ${this.displayUrl} is closed.`)), close: () => undefined };
    const key = resultKey(taskId);
    const channel = this.subscribe(key);
    const listener = (doc: ResultDocument) => onDocument(doc);
    channel.watchers.add(listener);
    return {
      ready: channel.subscribed.then(() => undefined),
      close: () => {
        if (!channel.watchers.delete(listener)) return;
        if (channel.waiters.size === 0 && channel.watchers.size === 0) this.unsubscribe(key, channel);
      },
    };
  }

  /** Delete the stored result. */
  async forget(taskId: string): Promise<void> {
    await this.redis.del(resultKey(taskId));
  }

  /** Celery's `set_chord_size`: the header size under `.s` (a decimal string), with the results' expiry. */
  async setChordSize(groupId: string, size: number): Promise<void> {
    const key = groupKey(groupId, '.s');
    if (this.ttl > 0) await this.redis.setex(key, this.ttl, String(size));
    else await this.redis.set(key, String(size));
  }

  /** One header result counted by one script (see `redis-lua/chordPartReturn-3.lua`). */
  async onChordPartReturn(part: ChordPart): Promise<ChordMember[] | null> {
    const member = dumpsPython([1, part.taskId, part.state, part.result]);
    const score = part.groupIndex === null ? '+inf' : String(part.groupIndex);
    const keys = [groupKey(part.groupId, '.j'), groupKey(part.groupId, '.t'), groupKey(part.groupId, '.s')] as const;
    const reply = await backendScripts.chordPartReturn.run(this.redis, keys, [member, score, this.ttl, this.chordOrdered ? '1' : '0']);
    if (reply[0] !== 1) return null;
    return reply.slice(2).map((raw) => {
      const [, taskId, state, result] = loadsPython(String(raw)) as [number, string, TaskState, unknown];
      return { taskId, state, result };
    });
  }

  /** Celery's `add_to_chord`: INCR `.t`. */
  async addToChord(groupId: string): Promise<void> {
    await this.redis.incr(groupKey(groupId, '.t'));
  }

  /** `GroupResult.save()`: `celery-taskset-meta-<id>` = `{"result": tuple}`, with the results' expiry. */
  async saveGroup(groupId: string, tuple: ResultTuple): Promise<void> {
    const json = dumpsPython({ result: tuple });
    if (this.ttl > 0) await this.redis.setex(groupKey(groupId), this.ttl, json);
    else await this.redis.set(groupKey(groupId), json);
  }

  async restoreGroup(groupId: string): Promise<ResultTuple | null> {
    const raw = await this.redis.get(groupKey(groupId));
    if (raw === null) return null;
    const doc = loadsPython(raw) as { result?: ResultTuple } | null;
    if (!doc || !Array.isArray(doc.result)) throw new MessageDecodeError(`Saved group ${groupId} is not a Celery group result ({"result": [...]}).`);
    return doc.result;
  }

  async deleteGroup(groupId: string): Promise<void> {
    await this.redis.del(groupKey(groupId));
  }

  /** Close both connections; pending waits reject. */
  close(): Promise<void> {
    return (this.closing ??= this.shutdown());
  }

  private async shutdown(): Promise<void> {
    this.closed = true;
    for (const channel of this.channels.values()) {
      for (const waiter of [...channel.waiters]) waiter.reject(new CeleriacError(`Result backend ${this.displayUrl} was closed while waiting.`));
    }
    if (this.subscriber) dropRedisClient(this.subscriber);
    await closeRedisClient(this.redis);
  }

  private async checkStored(key: string, taskId: string, waiter: Waiter): Promise<void> {
    const doc = parseDocument(await this.read(key), taskId, this.codec);
    if (doc && READY_STATES.has(doc.status)) waiter.resolve(doc);
  }

  private subscriberConnection(): Redis {
    if (this.subscriber) return this.subscriber;
    const sub = duplicateRedisClient(this.redis, { enableAutoPipelining: false });
    if (this.codec.binary) sub.on('messageBuffer', (channelName: Buffer, payload: Buffer) => this.onMessage(channelName.toString('utf8'), payload));
    else sub.on('message', (channelName: string, payload: string) => this.onMessage(channelName, payload));
    // After a reconnect (ioredis resubscribes by itself) a PUBLISH may have been missed.
    let connectedOnce = false;
    sub.on('ready', () => {
      if (!connectedOnce) return void (connectedOnce = true);
      for (const [key, channel] of this.channels) {
        const taskId = key.slice('celery-task-meta-'.length);
        for (const waiter of channel.waiters) void this.checkStored(key, taskId, waiter).catch(() => undefined);
        if (channel.watchers.size > 0) {
          void this.read(key)
            .then((text) => {
              const doc = parseDocument(text, taskId, this.codec);
              if (doc) for (const listener of [...channel.watchers]) listener(doc);
            })
            .catch(() => undefined);
        }
      }
    });
    return (this.subscriber = sub);
  }

  /** The stored bytes: text for JSON and YAML, a Buffer for binary serializers. */
  private read(key: string): Promise<string | Buffer | null> {
    return this.codec.binary ? this.redis.getBuffer(key) : this.redis.get(key);
  }

  private onMessage(key: string, payload: string | Buffer): void {
    const channel = this.channels.get(key);
    if (!channel) return;
    let doc: ResultDocument | null;
    try {
      doc = parseDocument(payload, key, this.codec);
    } catch {
      return; // not a result document: ignore, like Celery's consumer
    }
    if (!doc) return;
    for (const listener of [...channel.watchers]) listener(doc);
    if (!READY_STATES.has(doc.status)) return;
    for (const waiter of [...channel.waiters]) waiter.resolve(doc);
  }

  private subscribe(key: string): Channel {
    let channel = this.channels.get(key);
    if (!channel) {
      channel = { waiters: new Set(), watchers: new Set(), subscribed: this.subscriberConnection().subscribe(key) };
      this.channels.set(key, channel);
    }
    return channel;
  }

  private unsubscribe(key: string, channel: Channel): void {
    if (this.channels.get(key) !== channel) return;
    this.channels.delete(key);
    if (!this.closed) void this.subscriber?.unsubscribe(key).catch(() => undefined);
  }
}

function parseDocument(raw: string | Buffer | null, taskId: string, codec: ResultCodec): ResultDocument | null {
  if (raw === null) return null;
  let doc: unknown;
  try {
    doc = codec.decode(raw);
  } catch (err) {
    const what = codec.name === 'json' ? 'is not valid JSON' : `cannot be decoded as ${codec.name} (resultSerializer)`;
    throw new MessageDecodeError(`Stored result of task ${taskId} ${what} (${(err as Error).message}); every worker and client of this backend must use the same resultSerializer.`);
  }
  if (typeof doc !== 'object' || doc === null || Array.isArray(doc) || typeof (doc as { status?: unknown }).status !== 'string') {
    throw new MessageDecodeError(`Stored result of task ${taskId} is not a Celery result document (no "status").`);
  }
  return doc as ResultDocument;
}
