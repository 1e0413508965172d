/**
 * The worker's result writes: batched (one round trip for up to `maxBatch`
 * documents), each document encoded on its own first, and kept through a result
 * backend outage.
 *
 * - Encoding happens in `add`, per task. A result that cannot be encoded (a `Set`,
 *   a cycle...) is stored as FAILURE `EncodeError` (kombu's exception, which
 *   Python Celery rebuilds) for that task alone; it never reaches a batch, so it
 *   cannot fail the other tasks' writes.
 * - A batch the backend refuses as a whole (an outage) goes back to the front of
 *   a bounded queue; the writer then sends one probe batch at a time with capped
 *   exponential backoff until one lands. A write refused for one document only
 *   (e.g. WRONGTYPE on its key) is retried on its own timer, not holding back the
 *   rest. A document still unwritten `retryWindowMs` after its first failure is
 *   dropped, logged by task id, and its `add` promise rejects (a late-ack worker
 *   then gives the message back).
 */
import type { EncodedResult, ExceptionDocument, ResultBackend, ResultDocument } from '../backends/backend.js';
import type { Logger } from '../logger.js';
import { States } from '../states.js';
import { resultDocument } from './result-document.js';

/** Options of a `ResultWriter`. */
export interface ResultWriterOptions {
  log: Logger;
  /** How long a refused write is retried before it is dropped (`resultBackendRetryWindow`, in ms). */
  retryWindowMs: number;
  /** Documents per round trip. Default 256. */
  maxBatch?: number;
  /** Documents kept while the backend is unreachable; past this the oldest are dropped. Default 10,000. */
  maxQueued?: number;
  /** First retry delay in ms (doubles up to `maxRetryDelayMs`). Default 100. */
  firstRetryDelayMs?: number;
  /** Longest delay between retries in ms. Default 2,000. */
  maxRetryDelayMs?: number;
}

const STOPPED_COLD = 'the worker was stopped cold before the result backend accepted it';

/** A result the backend did not accept within the retry window. */
export class ResultDropped extends Error {
  override name = 'ResultDropped';
}

/**
 * A result the serializer cannot write — kombu's `EncodeError`. Stored in the
 * task's place as FAILURE with `exc_module: kombu.exceptions`, which Python
 * Celery rebuilds as `kombu.exceptions.EncodeError`.
 */
export class EncodeError extends Error {
  override name = 'EncodeError';
  /** The stored exception document. */
  get document(): ExceptionDocument {
    return { exc_type: 'EncodeError', exc_message: [this.message], exc_module: 'kombu.exceptions' };
  }
}

interface Entry {
  readonly taskId: string;
  readonly status: string;
  /** What the backend stores: encoded text, or the document for backends without `encodeResult`. */
  readonly write: EncodedResult | ResultDocument;
  /** Set when `write` is the FAILURE that replaced an unencodable document. */
  readonly replacedBy?: EncodeError;
  /** When a write of this entry first failed (undefined until then). */
  failedSince?: number;
  /** Failed writes of this entry alone (its own backoff). */
  attempts: number;
  /** Why its last write failed, when it failed alone. */
  lastError?: Error;
  /** Called once: stored (with the `EncodeError` stored in its place, if any), or dropped / unencodable (`err`). */
  done: ResultWritten;
}

/** How a `ResultWriter` reports one document: stored (`replacedBy` when FAILURE EncodeError was stored in its place) or not (`err`). */
export type ResultWritten = (err: Error | undefined, replacedBy?: EncodeError) => void;

/** Batched, per-document-encoded, outage-tolerant result writes for one worker. */
export class ResultWriter {
  private readonly maxBatch: number;
  private readonly maxQueued: number;
  private readonly firstRetryDelayMs: number;
  private readonly maxRetryDelayMs: number;
  private queue: Entry[] = [];
  private inFlight = 0;
  private scheduled = false;
  /** Set while the backend is failing: no new batches until it fires. */
  private retryTimer: NodeJS.Timeout | undefined;
  private failures = 0;
  private lastError: Error | undefined;
  private idleWaiters: (() => void)[] = [];
  /** After a cold stop: failed writes are dropped instead of retried. */
  private abandoned = false;
  /** Entries refused alone, waiting for their own retry. */
  private readonly delayed = new Map<NodeJS.Timeout, Entry>();

  constructor(
    private readonly backend: ResultBackend,
    private readonly options: ResultWriterOptions,
  ) {
    this.maxBatch = options.maxBatch ?? 256;
    this.maxQueued = options.maxQueued ?? 10_000;
    this.firstRetryDelayMs = options.firstRetryDelayMs ?? 100;
    this.maxRetryDelayMs = options.maxRetryDelayMs ?? 2_000;
  }

  /** Documents waiting to be written (queued or retrying), for tests and stats. */
  get pending(): number {
    return this.queue.length + this.inFlight + this.delayed.size;
  }

  /**
   * Queue a document. Resolves once it is stored — with undefined, or with the
   * `EncodeError` stored as FAILURE in its place when it could not be encoded.
   * Rejects with `ResultDropped` if the backend refused it for the whole retry
   * window, or with the encoding error if not even the replacement encodes.
   */
  add(doc: ResultDocument): Promise<EncodeError | undefined> {
    return new Promise<EncodeError | undefined>((resolve, reject) => this.write(doc, (err, replacedBy) => (err ? reject(err) : resolve(replacedBy))));
  }

  /**
   * `add` without a promise (the worker's hot path): `done` is called once, never in
   * this synchronous step.
   */
  write(doc: ResultDocument, done: ResultWritten): void {
    let encoded: { write: EncodedResult | ResultDocument; replacedBy?: EncodeError };
    try {
      encoded = this.encode(doc);
    } catch (err) {
      queueMicrotask(() => done(err as Error));
      return;
    }
    this.queue.push({ taskId: doc.task_id, status: doc.status, write: encoded.write, replacedBy: encoded.replacedBy, attempts: 0, done });
    if (this.queue.length > this.maxQueued) this.dropOldest();
    if (this.retryTimer) return; // the retry sends it
    if (this.queue.length >= this.maxBatch) this.sendBatches();
    else if (!this.scheduled) {
      this.scheduled = true;
      // Nothing in flight: write once this step's results are in (a waiter is waiting on
      // it). A batch in flight: gather until the next loop turn, for a larger batch.
      if (this.inFlight === 0) process.nextTick(this.sendScheduled);
      else setImmediate(this.sendScheduled);
    }
  }

  private readonly sendScheduled = (): void => {
    this.scheduled = false;
    if (!this.retryTimer) this.sendBatches();
  };

  /** Resolves when every document added so far is written or dropped. */
  flush(): Promise<void> {
    if (!this.retryTimer && this.queue.length > 0) this.sendBatches();
    if (this.pending === 0) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  /**
   * Cold shutdown: stop retrying and drop every document not written yet,
   * logging each task id. Resolves once nothing is in flight.
   */
  abandon(): Promise<void> {
    this.abandoned = true;
    clearTimeout(this.retryTimer);
    this.retryTimer = undefined;
    const waiting = [...this.queue, ...this.delayed.values()];
    for (const timer of this.delayed.keys()) clearTimeout(timer);
    this.delayed.clear();
    this.queue = [];
    for (const e of waiting) this.drop(e, STOPPED_COLD);
    return this.flush();
  }

  /** Encode on its own; an unencodable document becomes FAILURE EncodeError for its task. */
  private encode(doc: ResultDocument): { write: EncodedResult | ResultDocument; replacedBy?: EncodeError } {
    const encoder = this.backend.encodeResult?.bind(this.backend);
    if (!encoder || !this.backend.storeEncoded) return { write: doc };
    try {
      return { write: encoder(doc) };
    } catch (err) {
      // Encoders recurse: a cycle (or absurd nesting) surfaces as a stack overflow; say what it means.
      const message =
        err instanceof RangeError && /call stack/i.test(err.message)
          ? `Cannot serialize the result of task ${doc.task_id}: it contains a circular reference (or is nested too deeply) — return plain data`
          : (err as Error).message;
      const replacedBy = new EncodeError(message, { cause: err });
      this.options.log.error(
        { id: doc.task_id, err },
        `Cannot encode the ${doc.status} result of task ${doc.task_id}: ${replacedBy.message}; stored FAILURE EncodeError instead. Return JSON-serializable values (arrays instead of Sets, no cycles).`,
      );
      try {
        return { write: encoder(resultDocument({ id: doc.task_id, groupId: doc.group_id ?? null, parentId: doc.parent_id ?? null }, States.FAILURE, replacedBy.document)), replacedBy };
      } catch {
        // group_id / parent_id came from the message and are the unencodable part.
        return { write: encoder(resultDocument({ id: doc.task_id, groupId: null, parentId: null }, States.FAILURE, replacedBy.document)), replacedBy };
      }
    }
  }

  private sendBatches(): void {
    while (this.queue.length > 0 && !this.retryTimer) this.send(this.queue.splice(0, this.maxBatch));
  }

  private send(batch: Entry[]): void {
    this.inFlight += batch.length;
    this.store(batch).then(
      (errors) => {
        this.inFlight -= batch.length;
        const refused = batch.filter((_, i) => errors[i]);
        if (refused.length === batch.length) return this.batchRefused(batch, errors[0]!);
        if (this.failures > 0) {
          this.options.log.info({ written: batch.length - refused.length, queued: this.queue.length }, `Result backend ${this.backend.displayUrl} accepts writes again; sending ${this.queue.length} queued result(s)`);
          this.failures = 0;
        }
        batch.forEach((e, i) => (errors[i] ? this.refusedAlone(e, errors[i]) : e.done(undefined, e.replacedBy)));
        if (!this.retryTimer && this.queue.length > 0) this.sendBatches();
        this.checkIdle();
      },
      (err: unknown) => {
        this.inFlight -= batch.length;
        this.batchRefused(batch, err instanceof Error ? err : new Error(String(err)));
      },
    );
  }

  /** The backend refused a whole batch (down?): queue it again and probe with backoff. */
  private batchRefused(batch: Entry[], err: Error): void {
    this.lastError = err;
    if (this.abandoned) {
      for (const e of batch) this.drop(e, STOPPED_COLD);
    } else {
      const now = Date.now();
      for (const e of batch) e.failedSince ??= now;
      this.queue.unshift(...batch);
      this.scheduleRetry();
    }
    this.checkIdle();
  }

  /** The backend refused this document only: retry it on its own timer, not holding back the others. */
  private refusedAlone(e: Entry, err: Error): void {
    const now = Date.now();
    e.failedSince ??= now;
    e.lastError = err;
    e.attempts++;
    if (this.abandoned) return this.drop(e, STOPPED_COLD);
    if (now - e.failedSince >= this.options.retryWindowMs) return this.drop(e, this.windowExpired());
    if (e.attempts === 1) this.options.log.warn({ id: e.taskId, err }, `Cannot write the result of task ${e.taskId} (${err.message}); retrying it for up to ${this.options.retryWindowMs / 1000} s`);
    const timer = setTimeout(() => {
      this.delayed.delete(timer);
      this.queue.push(e);
      if (!this.retryTimer) this.sendBatches();
    }, this.backoff(e.attempts - 1));
    this.delayed.set(timer, e);
  }

  /** Per-document outcome of one round trip: null when written, else the error. */
  private async store(batch: Entry[]): Promise<(Error | null)[]> {
    const backend = this.backend;
    if (backend.storeEncoded && backend.encodeResult) return backend.storeEncoded(batch.map((e) => e.write as EncodedResult));
    const docs = batch.map((e) => e.write as ResultDocument);
    if (backend.storeResults) return backend.storeResults(docs).then(() => docs.map(() => null));
    const settled = await Promise.allSettled(docs.map((d) => backend.storeResult(d)));
    return settled.map((r) => (r.status === 'rejected' ? (r.reason instanceof Error ? r.reason : new Error(String(r.reason))) : null));
  }

  /** Capped exponential backoff with ±20 % jitter. */
  private backoff(failures: number): number {
    return Math.min(this.maxRetryDelayMs, this.firstRetryDelayMs * 2 ** failures) * (0.8 + Math.random() * 0.4);
  }

  private windowExpired(): string {
    return `the result backend refused it for ${this.options.retryWindowMs / 1000} s (resultBackendRetryWindow)`;
  }

  private scheduleRetry(): void {
    if (this.retryTimer) return;
    if (this.failures === 0) {
      this.options.log.warn(
        { err: this.lastError, queued: this.queue.length },
        `Cannot write results to ${this.backend.displayUrl} (${this.lastError?.message}); keeping ${this.queue.length} result(s) and retrying for up to ${this.options.retryWindowMs / 1000} s (resultBackendRetryWindow)`,
      );
    }
    const delay = this.backoff(this.failures);
    this.failures++;
    this.retryTimer = setTimeout(() => {
      this.retryTimer = undefined;
      this.dropExpired();
      // Probe with one batch; the rest follows once it lands.
      if (this.queue.length > 0) this.send(this.queue.splice(0, this.maxBatch));
      this.checkIdle();
    }, delay);
  }

  private dropExpired(): void {
    const cutoff = Date.now() - this.options.retryWindowMs;
    const kept: Entry[] = [];
    for (const e of this.queue) {
      if (e.failedSince !== undefined && e.failedSince <= cutoff) this.drop(e, this.windowExpired());
      else kept.push(e);
    }
    this.queue = kept;
  }

  private dropOldest(): void {
    const oldest = this.queue.shift()!;
    this.drop(oldest, `more than ${this.maxQueued} results are waiting for the result backend`);
  }

  private drop(e: Entry, why: string): void {
    const message = `Result of task ${e.taskId} (${e.status}) dropped: ${why}; last error: ${(e.lastError ?? this.lastError)?.message ?? 'none'}`;
    this.options.log.error({ id: e.taskId, status: e.status }, message);
    e.done(new ResultDropped(message));
  }

  private checkIdle(): void {
    if (this.pending > 0 || this.idleWaiters.length === 0) return;
    const waiters = this.idleWaiters;
    this.idleWaiters = [];
    for (const w of waiters) w();
  }
}
