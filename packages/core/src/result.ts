import type { ResultBackend, ResultDocument, ResultTuple } from './backends/backend.js';

/** Anything in a result tree: a task's result or a group's (`GroupResult`). */
export interface ResultNode {
  readonly id: string;
  parent: ResultNode | null;
  asTuple(): ResultTuple;
  ready(): Promise<boolean>;
}
import type { RemoteTaskError } from './errors.js';
import { fromExceptionDocument } from './protocol/exceptions.js';
import { parseWireDate } from './protocol/time.js';
import { EXCEPTION_STATES, PROPAGATE_STATES, READY_STATES, States, type TaskState } from './states.js';

/** Options of `AsyncResult.get`. */
export interface GetOptions {
  /** Milliseconds to wait before rejecting with `TimeoutError`. Default: wait forever. */
  timeout?: number;
  /** Re-raise the task's failure (default true); false resolves with the exception instead. */
  propagate?: boolean;
  /** Polling interval in ms for backends without push (Redis and memory push; unused there). */
  interval?: number;
}

/** Where an AsyncResult reads from: the app's result backend, created lazily. */
export interface ResultSource {
  getBackend(): Promise<ResultBackend>;
}

/** A snapshot of what the backend says about a task. */
export interface ResultSnapshot<T> {
  state: TaskState;
  /** Return value (SUCCESS), exception (FAILURE/RETRY/REVOKED) or meta (custom states). */
  result: T | Error | unknown;
  traceback: string | null;
  dateDone: Date | null;
  children: AsyncResult[];
  parentId: string | null;
}

const PENDING_DOC = (taskId: string): ResultDocument => ({
  status: States.PENDING,
  result: null,
  traceback: null,
  children: [],
  date_done: null,
  task_id: taskId,
});

/**
 * The handle on a sent task. Reading its state asks the result backend (an
 * unknown id is PENDING, as in Celery); `get()` waits for a push from the
 * backend rather than polling.
 */
export class AsyncResult<T = unknown> {
  private cached: ResultDocument | null = null;

  constructor(
    /** The task id. */
    readonly id: string,
    private readonly source: ResultSource,
    /** The previous step of a chain (or a chord body's header group), when known. */
    public parent: ResultNode | null = null,
  ) {}

  /** Celery's `as_tuple()`: `[[id, parent tuple or null], null]`, as saved in group results and `children`. */
  asTuple(): ResultTuple {
    return [[this.id, this.parent ? this.parent.asTuple() : null], null];
  }

  /** @internal Where this result reads from (shared with the results built from it). */
  get resultSource(): ResultSource {
    return this.source;
  }

  /** Fetch the stored document (cached once ready). */
  async refresh(): Promise<ResultSnapshot<T>> {
    return this.snapshot(await this.document());
  }

  private async document(): Promise<ResultDocument> {
    if (this.cached) return this.cached;
    const backend = await this.source.getBackend();
    const doc = (await backend.getResult(this.id)) ?? PENDING_DOC(this.id);
    if (READY_STATES.has(doc.status)) this.cached = doc;
    return doc;
  }

  private snapshot(doc: ResultDocument): ResultSnapshot<T> {
    const state = doc.status;
    const result = EXCEPTION_STATES.has(state) && isExceptionDocument(doc.result) ? fromExceptionDocument(doc.result, doc.traceback, this.id) : (doc.result as T);
    return {
      state,
      result,
      traceback: doc.traceback ?? null,
      dateDone: doc.date_done ? parseWireDate(doc.date_done) : null,
      children: (doc.children ?? []).map((c) => new AsyncResult(childId(c), this.source)),
      parentId: doc.parent_id ?? null,
    };
  }

  /** Current state: `PENDING`, `STARTED`, `SUCCESS`, `FAILURE`, `RETRY`, `REVOKED` or a custom one. */
  get state(): Promise<TaskState> {
    return this.document().then((d) => d.status);
  }
  /** Alias of `state`, as in Celery. */
  get status(): Promise<TaskState> {
    return this.state;
  }
  /** The return value, the exception, or a custom state's meta; null while pending. */
  get result(): Promise<T | Error | unknown> {
    return this.refresh().then((s) => s.result);
  }
  /**
   * Celery's alias of `result`: the return value, the exception, or — while the
   * task runs — the meta of its state (`{ current, total }` of a `PROGRESS` set by
   * `updateState`, `{ pid, hostname }` of `STARTED`).
   */
  get info(): Promise<T | Error | unknown> {
    return this.result;
  }
  /** With `resultExtended`: the task name, arguments, worker, queue and retries stored with the result (null otherwise). */
  get extended(): Promise<{ name: string | null; args: unknown[] | null; kwargs: Record<string, unknown> | null; worker: string | null; queue: string | null; retries: number | null }> {
    return this.document().then((d) => {
      const x = d as Partial<Record<'name' | 'args' | 'kwargs' | 'worker' | 'queue' | 'retries', unknown>>;
      return {
        name: typeof x.name === 'string' ? x.name : null,
        args: Array.isArray(x.args) ? x.args : null,
        kwargs: x.kwargs && typeof x.kwargs === 'object' ? (x.kwargs as Record<string, unknown>) : null,
        worker: typeof x.worker === 'string' ? x.worker : null,
        queue: typeof x.queue === 'string' ? x.queue : null,
        retries: typeof x.retries === 'number' ? x.retries : null,
      };
    });
  }
  /** The remote traceback text for failures. */
  get traceback(): Promise<string | null> {
    return this.document().then((d) => d.traceback ?? null);
  }
  /** When the task reached a ready state. */
  get dateDone(): Promise<Date | null> {
    return this.refresh().then((s) => s.dateDone);
  }
  /** Tasks this task sent (callbacks, chain steps, retries). */
  get children(): Promise<AsyncResult[]> {
    return this.refresh().then((s) => s.children);
  }

  /** True once the task succeeded, failed or was revoked. */
  async ready(): Promise<boolean> {
    return READY_STATES.has(await this.state);
  }
  async successful(): Promise<boolean> {
    return (await this.state) === States.SUCCESS;
  }
  async failed(): Promise<boolean> {
    return (await this.state) === States.FAILURE;
  }

  /**
   * Wait for the task to finish and return its value. A failed or revoked task
   * rejects with an Error whose `name` is the remote exception type (e.g.
   * `ZeroDivisionError`), keeping its message, arguments and remote traceback.
   */
  get(options?: GetOptions & { propagate?: true }): Promise<T>;
  /** With `propagate: false` a failure resolves with its error instead of rejecting. */
  get(options: GetOptions & { propagate: false }): Promise<T | RemoteTaskError>;
  async get(options: GetOptions = {}): Promise<T | RemoteTaskError> {
    const doc = this.cached ?? (await (await this.source.getBackend()).waitForResult(this.id, { timeoutMs: options.timeout, intervalMs: options.interval }));
    this.cached = doc;
    if (PROPAGATE_STATES.has(doc.status)) {
      const error = fromExceptionDocument(doc.result, doc.traceback, this.id);
      if (options.propagate ?? true) throw error;
      return error;
    }
    return doc.result as T;
  }

  /** Delete the stored result. */
  async forget(): Promise<void> {
    this.cached = null;
    await (await this.source.getBackend()).forget(this.id);
  }

  toString(): string {
    return `<AsyncResult: ${this.id}>`;
  }
}

function isExceptionDocument(value: unknown): boolean {
  return typeof value === 'object' && value !== null && 'exc_type' in value;
}

function childId(tuple: unknown): string {
  // [[id, parent], children] or [[gid, null], [...]]
  const head = Array.isArray(tuple) ? tuple[0] : null;
  return Array.isArray(head) ? String(head[0]) : String(head);
}
