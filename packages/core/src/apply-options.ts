import type { Signature } from './canvas/signature.js';
import type { RetryPolicy } from './config.js';
import type { WireSignature } from './protocol/message.js';

/** Options of `applyAsync` / `sendTask`: Celery's `apply_async` options, camelCase. */
export interface ApplyOptions {
  /** Use this id instead of a random uuid4. */
  taskId?: string;
  /** Run no earlier than this many seconds from now. */
  countdown?: number;
  /** Run no earlier than this time (Date or ISO 8601 string). */
  eta?: Date | string;
  /** Seconds from now, or an absolute time, after which the task is REVOKED instead of run. */
  expires?: number | Date | string;
  /** Target queue (on the default exchange, like Celery). */
  queue?: string;
  routingKey?: string;
  exchange?: string;
  /** 0–9. On Redis 0 is consumed first (Celery/kombu semantics). */
  priority?: number;
  /** Custom message headers (visible to the task as `this.headers`). */
  headers?: Record<string, unknown>;
  /** Name shown in logs and events instead of the task name. */
  shadow?: string;
  /** Celery's `argsrepr` / `kwargsrepr`: the display form of the arguments in the message headers (default: their Python repr). */
  argsrepr?: string;
  kwargsrepr?: string;
  /** Serializer for this message (`json`). */
  serializer?: string;
  /** Compression for this message (`zlib`, `gzip`, `brotli`). */
  compression?: string;
  /** Task(s) to send with this task's return value prepended, after success. */
  link?: Signature | Signature[];
  /** Task(s) to send with this task's id, after failure. */
  linkError?: Signature | Signature[];
  /** Do not store the result. */
  ignoreResult?: boolean;
  /** `[hard, soft]` time limits in seconds for this call. */
  timeLimit?: number;
  softTimeLimit?: number;
  /** Group membership (set by canvas). */
  groupId?: string;
  groupIndex?: number;
  /** Override the parent/root ids (otherwise taken from the running task, if any). */
  parentId?: string;
  rootId?: string;
  /** Celery's `retry`: retry the publish while the broker is unreachable. Default: app `taskPublishRetry` (true). */
  retry?: boolean;
  /** Celery's `retry_policy` for this call, over the app's `taskPublishRetryPolicy`. */
  retryPolicy?: Partial<RetryPolicy>;
  /** Retry counter to put on the message (used by `retry()`). */
  retries?: number;
  /** @internal Remaining chain steps, last-to-run first (set by canvas and the worker). */
  chain?: WireSignature[] | null;
  /** @internal Chord body for chord header members (set by canvas). */
  chord?: WireSignature | null;
}
