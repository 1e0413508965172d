import { randomUUID } from 'node:crypto';
import type { ApplyOptions } from './apply-options.js';
import { Signature, type SignatureSender } from './canvas/signature.js';
import { Chunks, xmap, xstarmap } from './canvas/map.js';
import { Retry } from './errors.js';
import type { AsyncResult } from './result.js';
import type { TaskState } from './states.js';
import { runInTaskContext, type TaskContext } from './task-context.js';
import { currentRequestContext } from './web/request-context.js';

/** An Error class, for `autoretryFor`. */
export type ErrorClass = abstract new (...args: never[]) => Error;

/** Per-task options (Celery's task attributes, camelCase). */
export interface TaskOptions<A extends unknown[] = unknown[], R = unknown> {
  /** Do not store results. Default: app `taskIgnoreResult` (false). */
  ignoreResult?: boolean;
  /** Store STARTED before running. Default: app `taskTrackStarted` (false). */
  trackStarted?: boolean;
  /** Retries allowed before failing for good; null = unlimited. Default 3. */
  maxRetries?: number | null;
  /** Seconds before a retry when no countdown is given. Default 180. */
  defaultRetryDelay?: number;
  /** Retry automatically when the task throws one of these (or the predicate says so). */
  autoretryFor?: ErrorClass[] | ((error: unknown) => boolean);
  /** Exponential backoff for autoretry: true = 1 s factor, a number = that factor in seconds. */
  retryBackoff?: boolean | number;
  /** Cap of the backoff in seconds. Default 600. */
  retryBackoffMax?: number;
  /** Randomize the backoff (full jitter). Default true. */
  retryJitter?: boolean;
  /** Ack after the task finished instead of before it starts. Default: app `taskAcksLate`. */
  acksLate?: boolean;
  /**
   * With `acksLate`: requeue the message (instead of acking it) when the worker is
   * lost mid-run (killed, or its event loop hung past `workerHangTimeout`).
   * Default: app `taskRejectOnWorkerLost`.
   */
  rejectOnWorkerLost?: boolean;
  /** Serializer for messages of this task (`json`, `msgpack`, `yaml`, or a registered one). Default: app `taskSerializer`. */
  serializer?: string;
  /** Compression of this task's message bodies (`zlib`, `gzip`, `bzip2`, `xz`, `lzma`, `brotli`). Default: app `taskCompression`. */
  compression?: string;
  /** Hard time limit in seconds. */
  timeLimit?: number;
  /** Soft time limit in seconds (the task's AbortSignal fires). */
  softTimeLimit?: number;
  /**
   * Celery's `rate_limit` on each worker: `'10/s'`, `'100/m'`, `'1000/h'` (or a
   * number per second). Messages over it wait in the worker (never dropped) while
   * other tasks go on. Default: app `taskDefaultRateLimit` (none).
   */
  rateLimit?: string | number | null;
  /** Default queue for this task. */
  queue?: string;
  /** Default priority (0–9). */
  priority?: number;
  /**
   * Pass the message's kwargs as a trailing object parameter: the function's last
   * parameter receives them (`{}` when none), and `delay(a, b, { k: v })` sends the
   * last argument as kwargs. Without it, kwargs not named by `argNames` fail the task
   * unless `acceptKwargs` is set.
   */
  trailingKwargs?: boolean;
  /**
   * Names of the positional parameters, so a Python caller's keyword arguments
   * (`add.delay(x=1, y=2)`) fill the matching positions.
   */
  argNames?: string[];
  /**
   * Accept keyword arguments that neither `argNames` nor `trailingKwargs` places:
   * the task reads them from `this.kwargs`. Without it (and without
   * `trailingKwargs`), such kwargs fail the task with a `TypeError` naming them, as
   * an unexpected keyword argument does in Python — never dropped silently.
   */
  acceptKwargs?: boolean;
  /** Called in the worker after success. */
  onSuccess?: (retval: R, taskId: string, args: A, kwargs: Record<string, unknown>) => void | Promise<void>;
  /** Called in the worker after failure. */
  onFailure?: (error: unknown, taskId: string, args: A, kwargs: Record<string, unknown>, traceback: string | null) => void | Promise<void>;
  /** Called in the worker when the task is retried. */
  onRetry?: (error: unknown, taskId: string, args: A, kwargs: Record<string, unknown>) => void | Promise<void>;
  /** Called in the worker after every run, whatever the outcome. */
  afterReturn?: (state: TaskState, retval: unknown, taskId: string, args: A, kwargs: Record<string, unknown>) => void | Promise<void>;
}

/** The function behind a task. Use `function` syntax to get the context as `this`. */
export type TaskFunction<A extends unknown[], R> = (this: TaskContext, ...args: A) => R;

/** What a task needs from its app. */
export interface TaskHost extends SignatureSender {
  sendTask<R>(name: string, args?: readonly unknown[], kwargs?: Record<string, unknown>, options?: ApplyOptions): Promise<AsyncResult<R>>;
  sendMany<R>(items: readonly { name: string; args?: readonly unknown[]; kwargs?: Record<string, unknown>; options?: ApplyOptions }[]): Promise<AsyncResult<R>[]>;
}

/** One call of `applyAsyncMany`: what `applyAsync(args, kwargs, options)` takes. */
export interface ApplyCall<A extends unknown[] = unknown[]> {
  args?: A;
  kwargs?: Record<string, unknown>;
  /** Per-call options, over the batch's shared options. */
  options?: ApplyOptions;
}

/**
 * A registered task. Call it to run in-process; `delay` / `applyAsync` send it to
 * a worker. Types flow from the function: `add.delay(2, 2)` is
 * `Promise<AsyncResult<number>>`, and `add.delay('x')` does not compile.
 */
export interface Task<A extends unknown[] = unknown[], R = unknown> {
  /** Run in this process, now (like calling a Celery task). */
  (...args: A): R;
  /** The registered name (what other languages send). */
  readonly taskName: string;
  /** The options it was registered with. */
  readonly options: Readonly<TaskOptions<A, Awaited<R>>>;
  /** The implementation. */
  readonly fn: TaskFunction<A, R>;
  /** Send with positional arguments. */
  delay(...args: A): Promise<AsyncResult<Awaited<R>>>;
  /** Send with arguments, keyword arguments and options. */
  applyAsync(args?: A, kwargs?: Record<string, unknown>, options?: ApplyOptions): Promise<AsyncResult<Awaited<R>>>;
  /**
   * Send one message per argument list in one batch (one Redis pipeline); each
   * message is what `delay(...args)` sends. Resolves with the results in order.
   * `add.delayMany([[1, 2], [3, 4]])`.
   */
  delayMany(argsList: readonly A[]): Promise<AsyncResult<Awaited<R>>[]>;
  /**
   * `applyAsync` for a batch: one message per call, sent together (one Redis
   * pipeline), `options` shared by all calls under each call's own options.
   * Resolves with the results in order.
   */
  applyAsyncMany(calls: readonly ApplyCall<A>[], options?: ApplyOptions): Promise<AsyncResult<Awaited<R>>[]>;
  /** A signature; as a callback it receives the parent's result before these args. */
  s(...args: unknown[]): Signature<Awaited<R>>;
  /** An immutable signature: the parent's result is not prepended. */
  si(...args: Partial<A>): Signature<Awaited<R>>;
  /**
   * One `celery.map` message: a worker calls this task once per item and returns
   * the list. `xsum.map([[1, 2], [3, 4]])` → `[3, 7]`.
   */
  map(items: readonly A[0][]): Signature<Awaited<R>[]>;
  /** One `celery.starmap` message: each item spread as the arguments. `add.starmap([[1, 2], [3, 4]])` → `[3, 7]`. */
  starmap(argLists: readonly A[]): Signature<Awaited<R>[]>;
  /**
   * The argument lists in parts of `n`, each part one `celery.starmap` message,
   * sent as a group: `get()` gives one result list per part. `.group()` gives the group.
   */
  chunks(argLists: readonly A[], n: number): Chunks<Awaited<R>>;
}

/** Build the callable task object. */
export function createTask<A extends unknown[], R>(host: TaskHost, name: string, fn: TaskFunction<A, R>, options: TaskOptions<A, Awaited<R>>): Task<A, R> {
  const splitKwargs = (args: unknown[]): [unknown[], Record<string, unknown>] => {
    if (!options.trailingKwargs || args.length === 0) return [args, {}];
    const last = args[args.length - 1];
    return [args.slice(0, -1), (last ?? {}) as Record<string, unknown>];
  };
  const callDirectly = function (...args: A): R {
    const [positional, kwargs] = splitKwargs(args);
    const ctx = directContext(name, positional, kwargs);
    return runInTaskContext(ctx, () => fn.apply(ctx, args));
  };
  const methods = {
    taskName: name,
    options,
    fn,
    delay: (...args: A) => {
      const [positional, kwargs] = splitKwargs(args);
      return host.sendTask<Awaited<R>>(name, positional, kwargs, {});
    },
    applyAsync: (args?: A, kwargs?: Record<string, unknown>, applyOptions?: ApplyOptions) => {
      const [positional, trailing] = splitKwargs(args ?? []);
      return host.sendTask<Awaited<R>>(name, positional, { ...trailing, ...kwargs }, applyOptions);
    },
    delayMany: async (argsList: readonly A[]) => {
      if (!Array.isArray(argsList)) throw new TypeError(`${name}.delayMany() takes an array of argument lists ([[1, 2], [3, 4]]), got ${typeof argsList}.`);
      return host.sendMany<Awaited<R>>(
        argsList.map((args, i) => {
          if (!Array.isArray(args)) throw new TypeError(`${name}.delayMany() item ${i} must be an argument list (an array), got ${JSON.stringify(args)}.`);
          const [positional, kwargs] = splitKwargs(args);
          return { name, args: positional, kwargs, options: {} };
        }),
      );
    },
    applyAsyncMany: async (calls: readonly ApplyCall<A>[], shared: ApplyOptions = {}) => {
      if (!Array.isArray(calls)) throw new TypeError(`${name}.applyAsyncMany() takes an array of { args?, kwargs?, options? }, got ${typeof calls}.`);
      return host.sendMany<Awaited<R>>(
        calls.map((call, i) => {
          if (typeof call !== 'object' || call === null) throw new TypeError(`${name}.applyAsyncMany() item ${i} must be an object { args?, kwargs?, options? }, got ${JSON.stringify(call)}.`);
          const [positional, trailing] = splitKwargs(call.args ?? []);
          return { name, args: positional, kwargs: { ...trailing, ...call.kwargs }, options: { ...shared, ...call.options } };
        }),
      );
    },
    s: (...args: unknown[]) => {
      const [positional, kwargs] = splitKwargs(args);
      return new Signature<Awaited<R>>(name, positional, kwargs, {}, false, null, host);
    },
    si: (...args: unknown[]) => {
      const [positional, kwargs] = splitKwargs(args);
      return new Signature<Awaited<R>>(name, positional, kwargs, {}, true, null, host);
    },
    map: (items: readonly unknown[]) => xmap<Awaited<R>>(new Signature(name, [], {}, {}, false, null, host), items, host),
    starmap: (argLists: readonly (readonly unknown[])[]) => xstarmap<Awaited<R>>(new Signature(name, [], {}, {}, false, null, host), argLists, host),
    chunks: (argLists: readonly (readonly unknown[])[], n: number) => new Chunks<Awaited<R>>(new Signature(name, [], {}, {}, false, null, host), argLists, n, {}, host),
  };
  return Object.assign(callDirectly, methods) as unknown as Task<A, R>;
}

/** Context for a direct (in-process) call: no broker, `retry` just throws. */
function directContext(name: string, args: unknown[], kwargs: Record<string, unknown>): TaskContext {
  const id = randomUUID();
  return {
    id,
    name,
    args,
    kwargs,
    retries: 0,
    eta: null,
    expires: null,
    deliveryInfo: { exchange: '', routingKey: '', priority: null, redelivered: false },
    hostname: '',
    headers: {},
    parentId: null,
    rootId: id,
    groupId: null,
    groupIndex: null,
    calledDirectly: true,
    requestContext: currentRequestContext(),
    signal: new AbortController().signal,
    properties: {},
    async retry(opts) {
      if (opts?.exc !== undefined) throw opts.exc;
      throw new Retry(`Task ${name} called directly cannot be retried`, undefined, new Date());
    },
    async updateState() {},
    async replace() {
      throw new TypeError(`Task ${name} called directly cannot be replaced: replace() works in a worker.`);
    },
    async addToChord() {
      throw new TypeError('Current task is not member of any chord');
    },
  };
}
