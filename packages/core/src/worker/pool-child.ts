/**
 * The entry of a pool thread (`--pool threads`) or child process
 * (`--pool processes`): load the same app module as the worker (`-A`), say
 * "ready", then run one task at a time as the parent asks; a task sent while one
 * runs is held and started as soon as that one ends, without waiting for the
 * parent (which hears of it in the `done` message). The parent keeps the
 * broker connection: `retry()` and `updateState()` are forwarded to it, and the
 * outcome goes back as data. The soft time limit is armed here (the task's
 * `signal` aborts with `SoftTimeLimitExceeded`); the hard limit is the parent's:
 * it terminates this thread or process.
 */
import { getHeapStatistics } from 'node:v8';
import { parentPort, workerData } from 'node:worker_threads';
import type { Celeriac } from '../app.js';
import type { Signature } from '../canvas/signature.js';
import type { WireSignature } from '../protocol/message.js';
import { registerCanvasBuiltins } from '../canvas/builtins.js';
import { loadApp } from '../cli/load-app.js';
import { NotRegistered, SoftTimeLimitExceeded } from '../errors.js';
import type { TaskState } from '../states.js';
import { runInTaskContext, type DeliveryInfo, type RetryOptions, type TaskContext } from '../task-context.js';
import { callArguments } from './call-arguments.js';
import { longTimeout } from './long-timeout.js';
import { rebuildError, transferError, type ChildConfig, type FromChild, type JobRequest, type ToChild } from './pool-protocol.js';
import { requestContextFromMessage } from '../web/request-context.js';
import { shouldAutoretry } from './run-task.js';
import { emitSignal } from '../signals.js';
import { failureAfterAbort } from './time-limits.js';

const config: ChildConfig = parentPort ? (workerData as ChildConfig) : (JSON.parse(process.argv[2] ?? '{}') as ChildConfig);

function send(message: FromChild): void {
  if (parentPort) parentPort.postMessage(message);
  else process.send!(message);
}

function memoryKiB(): number {
  // A thread shares the process's RSS: its own V8 heap is what it can be judged by.
  return Math.round((config.kind === 'threads' ? getHeapStatistics().used_heap_size : process.memoryUsage().rss) / 1024);
}

const pendingCalls = new Map<number, { resolve: (value: unknown) => void; reject: (err: unknown) => void; exc?: unknown }>();
let nextCall = 0;

type CallMessage = Extract<FromChild, { type: 'call' }>;
type CallBody = CallMessage extends infer M ? (M extends CallMessage ? Omit<M, 'call' | 'job'> : never) : never;

function callParent(job: number, message: CallBody, exc?: unknown): Promise<unknown> {
  const call = nextCall++;
  return new Promise((resolve, reject) => {
    pendingCalls.set(call, { resolve, reject, exc });
    send({ ...message, call, job } as FromChild);
  });
}

/** The task's `this` in a pool thread or child. */
class ChildContext implements TaskContext {
  readonly calledDirectly = false;
  constructor(
    private readonly app: Celeriac,
    private readonly request: JobRequest,
    private readonly job: number,
    readonly signal: AbortSignal,
  ) {}
  get id() {
    return this.request.id;
  }
  get name() {
    return this.request.name;
  }
  get args() {
    return this.request.args;
  }
  get kwargs() {
    return this.request.kwargs;
  }
  get retries() {
    return this.request.retries;
  }
  get eta() {
    return this.request.eta;
  }
  get expires() {
    return this.request.expires;
  }
  get deliveryInfo(): DeliveryInfo {
    return this.request.deliveryInfo;
  }
  get hostname() {
    return this.request.hostname;
  }
  get headers() {
    return this.request.headers;
  }
  get properties() {
    return this.request.properties;
  }
  get parentId() {
    return this.request.parentId;
  }
  get rootId() {
    return this.request.rootId;
  }
  get groupId() {
    return this.request.groupId;
  }
  /** Celery's `Task.replace`, done by the parent (it holds the broker connection); rejects with the `Ignore` that ends the run. */
  async replace(sig: Signature): Promise<never> {
    await callParent(this.job, { type: 'call', method: 'replace', sig: sig.toJSON() });
    throw new Error('replace() returned: the parent should always answer with an error');
  }
  /** Celery's `Task.add_to_chord`, done by the parent; returns the added task's result handle, or the signature when `lazy`. */
  async addToChord(sig: Signature, lazy = false): Promise<unknown> {
    const added = this.app.signatureFromWire((await callParent(this.job, { type: 'call', method: 'addToChord', sig: sig.toJSON(), lazy })) as WireSignature);
    return lazy ? added : added.freeze();
  }
  get groupIndex() {
    return this.request.groupIndex;
  }
  async retry(options: RetryOptions = {}): Promise<never> {
    const { exc, ...rest } = options;
    await callParent(this.job, { type: 'call', method: 'retry', options: { ...rest, exc: exc === undefined ? undefined : transferError(exc) } }, exc);
    throw new Error('retry() returned: the parent should always answer with an error');
  }
  async updateState(state: TaskState, meta: unknown = null): Promise<void> {
    await callParent(this.job, { type: 'call', method: 'updateState', state, meta });
  }
  get requestContext() {
    return requestContextFromMessage(this.request.headers);
  }
}

/** The task as this member's app has it; the worker's app may have one the module does not register at import. */
function taskOf(app: Celeriac, name: string): ReturnType<Celeriac['getTask']> {
  if (app.hasTask(name)) return app.getTask(name);
  const err = new NotRegistered(name);
  err.message = `${name}: registered in the worker, but not by the app module ${config.appSpec} as this pool ${config.kind === 'threads' ? 'thread' : 'process'} loads it; register the task when the module is imported`;
  throw err;
}

type Done = Extract<FromChild, { type: 'done' }>;

/** Run one task; what to tell the parent (sent by `startJob`, with the job started next). */
async function runJob(app: Celeriac, job: number, request: JobRequest): Promise<Done> {
  const controller = new AbortController();
  const cancelSoft =
    request.softTimeLimit === null ? () => undefined : longTimeout(() => controller.abort(new SoftTimeLimitExceeded(request.softTimeLimit!)), request.softTimeLimit * 1000);
  let task: ReturnType<Celeriac['getTask']> | undefined;
  try {
    const found = (task = taskOf(app, request.name));
    const ctx = new ChildContext(app, request, job, controller.signal);
    const args = callArguments(request.name, found.options, request.args, request.kwargs);
    const retval = await runInTaskContext(ctx, () => found.fn.apply(ctx, args as never[]));
    return { type: 'done', job, ok: true, retval, memoryKiB: 0 };
  } catch (caught) {
    const error = failureAfterAbort(caught, controller.signal);
    return { type: 'done', job, ok: false, error: transferError(error, task !== undefined && shouldAutoretry(task.options, error)), memoryKiB: 0 };
  } finally {
    cancelSoft();
  }
}

/** Jobs sent ahead, in order (at most one while a job runs: the parent sends no more). */
const heldAhead: { job: number; request: JobRequest }[] = [];
let runningJob = false;
/** Past `maxMemoryKiB` after a task: start nothing more (the parent retires this member). */
let overMemory = false;

/** Send `done`, naming the held-ahead job started right after it (no round trip to the parent between tasks). */
function sendDone(done: Done, next: number | undefined): void {
  const message = next === undefined ? done : { ...done, next };
  try {
    send(message);
  } catch (err) {
    // Not transferable (a function, a class instance with private state...): kombu's EncodeError, as JSON would fail.
    const error = Object.assign(new Error(`The task's return value cannot be sent from the pool ${config.kind === 'threads' ? 'thread' : 'process'}: ${(err as Error).message}`), {
      excType: 'EncodeError',
      excModule: 'kombu.exceptions',
    });
    send({ type: 'done', job: done.job, ok: false, error: transferError(error), memoryKiB: done.memoryKiB, ...(next === undefined ? {} : { next }) });
  }
}

function startJob(app: Celeriac, job: number, request: JobRequest): void {
  runningJob = true;
  // The next job starts after an I/O poll (two setImmediate hops: the first may run in
  // this loop turn's check phase, before any poll): a `cancel` the parent sent while this
  // task kept the event loop busy (a revoke of the held job) is read first.
  void runJob(app, job, request).then((done) => setImmediate(() => setImmediate(() => finishJob(app, done))));
}

function finishJob(app: Celeriac, done: Done): void {
  done.memoryKiB = memoryKiB();
  if (config.maxMemoryKiB && done.memoryKiB > config.maxMemoryKiB) overMemory = true;
  const next = overMemory ? undefined : heldAhead.shift();
  sendDone(done, next?.job);
  runningJob = false;
  if (next) startJob(app, next.job, next.request);
}

function onMessage(app: Celeriac, message: ToChild): void {
  if (message.type === 'run') {
    if (runningJob || overMemory) heldAhead.push({ job: message.job, request: message.request });
    else {
      if (!message.now) send({ type: 'started', job: message.job });
      startJob(app, message.job, message.request);
    }
  } else if (message.type === 'cancel') {
    const i = heldAhead.findIndex((h) => h.job === message.job);
    if (i < 0) return; // started already: its `started` / `done.next` is on its way
    heldAhead.splice(i, 1);
    send({ type: 'cancelled', job: message.job });
  } else if (message.type === 'reply') {
    const pending = pendingCalls.get(message.call);
    if (!pending) return;
    pendingCalls.delete(message.call);
    if (message.ok) pending.resolve(message.value);
    else pending.reject(message.rethrowExc ? pending.exc : rebuildError(message.error, ''));
  } else if (message.type === 'exit') {
    if (parentPort) parentPort.close();
    else process.exit(0);
  }
}

async function main(): Promise<void> {
  let app: Celeriac;
  try {
    app = await loadApp(config.appSpec, config.cwd);
    app.configure(config.overrides);
    // celery.map, celery.accumulate, ... run here as on the worker (those that send run in the worker: child-pool.ts).
    registerCanvasBuiltins(app);
  } catch (err) {
    send({ type: 'load-failed', message: (err as Error).message });
    return;
  }
  if (parentPort) parentPort.on('message', (m: ToChild) => onMessage(app, m));
  else {
    process.on('message', (m: ToChild) => onMessage(app, m));
    // The worker went away: nothing left to run for.
    process.on('disconnect', () => process.exit(0));
  }
  await emitSignal(app, 'workerProcessInit', { kind: config.kind, pid: process.pid });
  send({ type: 'ready', pid: process.pid });
}

void main();
