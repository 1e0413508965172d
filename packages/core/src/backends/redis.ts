/**
 * Redis result backend — Celery 5.2's layout and write sequence, so Python clients
 * read Celeriac's results and Celeriac reads Python workers' results.
 *
 * Connection string: `redis://[[user]:password@]host[:port][/db]`, `rediss://` for TLS.
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
import { maskUrl } from '../mask-url.js';
import { Redis, type RedisOptions } from 'ioredis';
import { CeleriacError, MessageDecodeError, TimeoutError } from '../errors.js';
import { dumpsPython, loadsPython } from '../protocol/python-json.js';
import { READY_STATES } from '../states.js';
import type { EncodedResult, ResultBackend, ResultDocument, WaitOptions } from './backend.js';

/** Options of the Redis result backend. */
export interface RedisBackendOptions {
  /** `result_expires` in seconds; 0 or null = keep forever. Default 86400 (1 day). */
  resultExpires?: number | null;
  /** Extra ioredis options (TLS certificates, timeouts...). */
  redis?: RedisOptions;
}

/**
 * storeResult — Celery's write: skip when SUCCESS is already stored, else
 * SETEX (SET when the TTL is 0) and PUBLISH the same JSON.
 * KEYS[1] `celery-task-meta-<id>`. ARGV[1] document JSON, ARGV[2] TTL seconds.
 * Returns 1 when written, 0 when an earlier SUCCESS was kept.
 */
const STORE_RESULT_LUA = `
local current = redis.call('GET', KEYS[1])
if current then
  local status
  if string.sub(current, 1, 12) == '{"status": "' then
    status = string.match(current, '^{"status": "([^"]*)"')
  else
    local ok, doc = pcall(cjson.decode, current)
    if ok and type(doc) == 'table' then status = doc['status'] end
  end
  if status == 'SUCCESS' then return 0 end
end
if tonumber(ARGV[2]) > 0 then
  redis.call('SETEX', KEYS[1], ARGV[2], ARGV[1])
else
  redis.call('SET', KEYS[1], ARGV[1])
end
redis.call('PUBLISH', KEYS[1], ARGV[1])
return 1
`;

/**
 * storeResults — storeResult for a batch in one call: one MGET per 500 keys, then
 * SETEX (or SET) + PUBLISH for each document whose key does not hold SUCCESS (also
 * one written earlier in the same batch). KEYS: `celery-task-meta-<id>` each.
 * ARGV[1] TTL seconds, ARGV[1 + i] the document for KEYS[i]. Returns how many were
 * written. Per task that is 2 commands (SETEX, PUBLISH) instead of 4 (EVALSHA,
 * GET, SETEX, PUBLISH).
 */
const STORE_RESULTS_LUA = `
local ttl = tonumber(ARGV[1])
local current = {}
for c = 1, #KEYS, 500 do
  local got = redis.call('MGET', unpack(KEYS, c, math.min(#KEYS, c + 499)))
  for j = 1, #got do current[c + j - 1] = got[j] end
end
local latest, written = {}, 0
for i, key in ipairs(KEYS) do
  local cur = latest[key] or current[i]
  local status
  if cur then
    if string.sub(cur, 1, 12) == '{"status": "' then
      status = string.match(cur, '^{"status": "([^"]*)"')
    else
      local ok, doc = pcall(cjson.decode, cur)
      if ok and type(doc) == 'table' then status = doc['status'] end
    end
  end
  if status ~= 'SUCCESS' then
    if ttl > 0 then
      redis.call('SETEX', key, ttl, ARGV[i + 1])
    else
      redis.call('SET', key, ARGV[i + 1])
    end
    redis.call('PUBLISH', key, ARGV[i + 1])
    latest[key] = ARGV[i + 1]
    written = written + 1
  end
end
return written
`;

/** Celery's key (and pub/sub channel) for a task's result. */
export function resultKey(taskId: string): string {
  return `celery-task-meta-${taskId}`;
}

type StoreCall = (key: string, json: string, ttl: number) => Promise<unknown>;

interface Waiter {
  resolve(doc: ResultDocument): void;
  reject(err: Error): void;
}

interface Channel {
  waiters: Set<Waiter>;
  subscribed: Promise<unknown>;
}

/** Celery-compatible Redis result backend with pub/sub wake-ups. */
export class RedisBackend implements ResultBackend {
  readonly displayUrl: string;
  private readonly redis: Redis;
  private subscriber: Redis | undefined;
  private readonly ttl: number;
  private readonly channels = new Map<string, Channel>();
  private closed = false;
  private closing: Promise<void> | undefined;

  constructor(url: string, options: RedisBackendOptions = {}) {
    this.displayUrl = maskUrl(url);
    this.ttl = Math.max(0, Math.trunc(options.resultExpires ?? 86400));
    this.redis = new Redis(url, { enableAutoPipelining: true, ...options.redis });
    this.redis.defineCommand('storeResult', { lua: STORE_RESULT_LUA, numberOfKeys: 1 });
    this.redis.defineCommand('storeResultsBatch', { lua: STORE_RESULTS_LUA });
  }

  /** Store a document and wake waiters, unless SUCCESS is already stored. */
  async storeResult(doc: ResultDocument): Promise<void> {
    const store = (this.redis as unknown as { storeResult: StoreCall }).storeResult.bind(this.redis);
    await store(resultKey(doc.task_id), dumpsPython(doc), this.ttl);
  }

  /** Store many documents in one round trip. Throws before writing anything if one cannot be encoded. */
  async storeResults(docs: readonly ResultDocument[]): Promise<void> {
    await this.storeEncoded(docs.map((doc) => this.encodeResult(doc)));
  }

  /** Python `json.dumps` of the document; throws a TypeError naming the unencodable value. */
  encodeResult(doc: ResultDocument): EncodedResult {
    return { taskId: doc.task_id, status: doc.status, payload: dumpsPython(doc) };
  }

  /** Write encoded documents in one script call (see STORE_RESULTS_LUA); rejects with its error. */
  async storeEncoded(results: readonly EncodedResult[]): Promise<void> {
    if (results.length === 0) return;
    const args: (string | number)[] = new Array(results.length * 2 + 2);
    args[0] = results.length;
    for (let i = 0; i < results.length; i++) {
      args[1 + i] = resultKey(results[i]!.taskId);
      args[2 + results.length + i] = results[i]!.payload;
    }
    args[1 + results.length] = this.ttl;
    await (this.redis as unknown as { storeResultsBatch: (...a: (string | number)[]) => Promise<unknown> }).storeResultsBatch(...args);
  }

  /** The stored document, or null (PENDING). */
  async getResult(taskId: string): Promise<ResultDocument | null> {
    return parseDocument(await this.redis.get(resultKey(taskId)), taskId);
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
        if (channel.waiters.size === 0) this.unsubscribe(key, channel);
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

  /** Delete the stored result. */
  async forget(taskId: string): Promise<void> {
    await this.redis.del(resultKey(taskId));
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
    this.subscriber?.disconnect();
    await this.redis.quit().catch(() => this.redis.disconnect());
  }

  private async checkStored(key: string, taskId: string, waiter: Waiter): Promise<void> {
    const doc = parseDocument(await this.redis.get(key), taskId);
    if (doc && READY_STATES.has(doc.status)) waiter.resolve(doc);
  }

  private subscriberConnection(): Redis {
    if (this.subscriber) return this.subscriber;
    const sub = this.redis.duplicate({ enableAutoPipelining: false });
    sub.on('message', (channelName: string, payload: string) => this.onMessage(channelName, payload));
    // After a reconnect (ioredis resubscribes by itself) a PUBLISH may have been missed.
    let connectedOnce = false;
    sub.on('ready', () => {
      if (!connectedOnce) return void (connectedOnce = true);
      for (const [key, channel] of this.channels) {
        const taskId = key.slice('celery-task-meta-'.length);
        for (const waiter of channel.waiters) void this.checkStored(key, taskId, waiter).catch(() => undefined);
      }
    });
    return (this.subscriber = sub);
  }

  private onMessage(key: string, payload: string): void {
    const channel = this.channels.get(key);
    if (!channel) return;
    let doc: ResultDocument | null;
    try {
      doc = parseDocument(payload, key);
    } catch {
      return; // not a result document: ignore, like Celery's consumer
    }
    if (!doc || !READY_STATES.has(doc.status)) return;
    for (const waiter of [...channel.waiters]) waiter.resolve(doc);
  }

  private subscribe(key: string): Channel {
    let channel = this.channels.get(key);
    if (!channel) {
      channel = { waiters: new Set(), subscribed: this.subscriberConnection().subscribe(key) };
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

function parseDocument(text: string | null, taskId: string): ResultDocument | null {
  if (text === null) return null;
  let doc: unknown;
  try {
    doc = loadsPython(text);
  } catch (err) {
    throw new MessageDecodeError(`Stored result of task ${taskId} is not valid JSON (${(err as Error).message}).`);
  }
  if (typeof doc !== 'object' || doc === null || Array.isArray(doc) || typeof (doc as { status?: unknown }).status !== 'string') {
    throw new MessageDecodeError(`Stored result of task ${taskId} is not a Celery result document (no "status").`);
  }
  return doc as ResultDocument;
}
