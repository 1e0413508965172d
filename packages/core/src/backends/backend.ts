export type { ExceptionDocument, ResultDocument, ResultTuple } from '../protocol/result-document.js';
import type { ResultDocument, ResultTuple } from '../protocol/result-document.js';
import type { RedisConnectionSettings } from '../redis-connection.js';
import type { TaskState } from '../states.js';

/** A result document serialized by `ResultBackend.encodeResult`, ready to write. */
export interface EncodedResult {
  readonly taskId: string;
  readonly status: TaskState;
  /** The bytes to store (for Redis: the JSON or YAML text, or msgpack bytes). */
  readonly payload: string | Buffer;
}

/** One chord header member's outcome, as `onChordPartReturn` records it. */
export interface ChordPart {
  taskId: string;
  /** The chord's group id (the header message's `group`). */
  groupId: string;
  /** Position in the header (`group_index`); null sorts last, as Celery's `+inf`. */
  groupIndex: number | null;
  state: TaskState;
  /** The return value, or the exception document for FAILURE/REVOKED. */
  result: unknown;
}

/** A member of a completed chord: `[1, task id, state, result]` decoded. */
export interface ChordMember {
  taskId: string;
  state: TaskState;
  result: unknown;
}

/** Options for waiting on a result. */
export interface WaitOptions {
  /** Give up after this many milliseconds (undefined = wait forever). */
  timeoutMs?: number;
  /** Polling interval for backends without push notifications. */
  intervalMs?: number;
}

/** A subscription to every document stored for one task (`ResultBackend.watch`). */
export interface ResultWatch {
  /** Resolves once the subscription is live: documents stored after it are delivered. */
  readonly ready: Promise<void>;
  /** Stop delivering; idempotent. */
  close(): void;
}

/**
 * A result backend. Celery's key-value backends need only get / set / delete and a
 * way to wait; everything else is shared in `result.ts` and the worker.
 */
/** A Redis result backend, as a worker's heartbeat thread reaches it (see `ResultBackend.threadTarget`). */
export interface ThreadResultTarget {
  connection: RedisConnectionSettings;
  /** `result_expires` in seconds (0: keep forever). */
  expiresSeconds: number;
}

export interface ResultBackend {
  /** URL with any password masked. */
  readonly displayUrl: string;
  /**
   * Store a document (and wake waiters). Like Celery, a task that already reached
   * SUCCESS is never overwritten.
   */
  storeResult(doc: ResultDocument): Promise<void>;
  /** Several documents at once (the worker batches its writes). */
  storeResults?(docs: readonly ResultDocument[]): Promise<void>;
  /**
   * Serialize one document for `storeEncoded`; throws when it cannot be encoded.
   * The worker encodes each result on its own, so one bad value fails one task,
   * not the batch it would have been written with. Backends that keep documents
   * as objects (memory) leave it out.
   */
  encodeResult?(doc: ResultDocument): EncodedResult;
  /**
   * Write documents already encoded by `encodeResult`, in one round trip.
   * Resolves with one entry per document: null when written, or the error the
   * backend gave for that document alone (the others are still written). Rejects
   * when the round trip itself fails (connection lost).
   */
  storeEncoded?(results: readonly EncodedResult[]): Promise<(Error | null)[]>;
  /**
   * Where a worker's heartbeat thread may write results itself, over its own socket:
   * FAILURE (WorkerLostError) for the tasks it settles after the event loop hung (the
   * loop cannot). Redis backends only; without it no FAILURE is stored for them.
   */
  threadTarget?(): ThreadResultTarget;
  /** The stored document, or null when none (= PENDING). */
  getResult(taskId: string): Promise<ResultDocument | null>;
  /**
   * Resolve with the first document in a ready state (SUCCESS, FAILURE, REVOKED).
   * Rejects with `TimeoutError` after `timeoutMs`.
   */
  waitForResult(taskId: string, options: WaitOptions): Promise<ResultDocument>;
  /** Delete the stored result. */
  forget(taskId: string): Promise<void>;
  /**
   * Called by the app before it publishes task messages whose results come back to
   * this process as messages (`rpc://`: declare the reply queue first, remember the
   * ids). Backends that store results leave it out.
   */
  prepareSend?(taskIds: readonly string[]): Promise<void>;
  /**
   * Deliver every document stored for `taskId` from now on (every state:
   * STARTED, PROGRESS and other custom states, the final one), pushed by the
   * backend (Redis pub/sub; memory: directly), never polled. Read the current
   * document after `ready` to close the race with a write just before.
   */
  watch?(taskId: string, onDocument: (doc: ResultDocument) => void): ResultWatch;
  /**
   * Chord counting. A backend without these cannot run chords, and sending one
   * through it fails at call time. `setChordSize` stores the header size
   * (Celery's `.s` key) before the header is published.
   */
  setChordSize?(groupId: string, size: number): Promise<void>;
  /**
   * Record one header member's outcome; resolves with every member's outcome
   * (ordered by group index) for exactly one call — the one that completed the
   * chord — and null for all others.
   */
  onChordPartReturn?(part: ChordPart): Promise<ChordMember[] | null>;
  /** One more member expected (Celery's `add_to_chord`: the `.t` counter). */
  addToChord?(groupId: string): Promise<void>;
  /** Save a group result (`celery-taskset-meta-<id>`, Celery's `{"result": tuple}`). */
  saveGroup?(groupId: string, tuple: ResultTuple): Promise<void>;
  /** The saved tuple of a group, or null. */
  restoreGroup?(groupId: string): Promise<ResultTuple | null>;
  /** Delete a saved group. */
  deleteGroup?(groupId: string): Promise<void>;
  /** Close connections. */
  close(): Promise<void>;
}
