/**
 * The entry of a pool thread (`--pool threads`) or child process
 * (`--pool processes`): load the same app module as the worker (`-A`), say
 * "ready", then run one task at a time as the parent asks. The parent keeps the
 * broker connection: `retry()` and `updateState()` are forwarded to it, and the
 * outcome goes back as data. The soft time limit is armed here (the task's
 * `signal` aborts with `SoftTimeLimitExceeded`); the hard limit is the parent's:
 * it terminates this thread or process.
 */
import { getHeapStatistics } from 'node:v8';
import { parentPort, workerData } from 'node:worker_threads';
import type { Celeriac } from '../app.js';
import { loadApp } from '../cli/load-app.js';
import type { Settings } from '../config.js';
import { SoftTimeLimitExceeded } from '../errors.js';
import type { TaskState } from '../states.js';
import { runInTaskContext, type DeliveryInfo, type RetryOptions, type TaskContext } from '../task-context.js';
import { callArguments } from './call-arguments.js';
import { longTimeout } from './long-timeout.js';
import { rebuildError, transferError, type FromChild, type JobRequest, type ToChild } from './pool-protocol.js';
import { shouldAutoretry } from './run-task.js';
import { emitSignal } from '../signals.js';
import { failureAfterAbort } from './time-limits.js';

/** What the parent passes at start (workerData for a thread, argv[2] as JSON for a process). */
export interface ChildConfig {
  kind: 'threads' | 'processes';
  /** The `-A` spec: `path/to/module[:export]`. */
  appSpec: string;
  cwd: string;
  /** Settings the worker's app was given on top of the module's (broker and backend URLs from -b). */
  overrides: Partial<Settings>;
}

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
  /** Canvas changes from inside a task need the parent's producer: not available in a pool thread or child yet. */
  replace(): Promise<never> {
    return Promise.reject(new Error(`this.replace() is not supported in the ${config.kind} pool yet (task ${this.request.name}); run this task on the async pool (a worker started without -P ${config.kind}).`));
  }
  addToChord(): Promise<unknown> {
    return Promise.reject(new Error(`this.addToChord() is not supported in the ${config.kind} pool yet (task ${this.request.name}); run this task on the async pool.`));
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
}

async function runJob(app: Celeriac, job: number, request: JobRequest): Promise<void> {
  const controller = new AbortController();
  const cancelSoft =
    request.softTimeLimit === null ? () => undefined : longTimeout(() => controller.abort(new SoftTimeLimitExceeded(request.softTimeLimit!)), request.softTimeLimit * 1000);
  const task = app.getTask(request.name);
  try {
    const ctx = new ChildContext(request, job, controller.signal);
    const args = callArguments(request.name, task.options, request.args, request.kwargs);
    const retval = await runInTaskContext(ctx, () => task.fn.apply(ctx, args as never[]));
    try {
      send({ type: 'done', job, ok: true, retval, memoryKiB: memoryKiB() });
    } catch (err) {
      // Not transferable (a function, a class instance with private state...): kombu's EncodeError, as JSON would fail.
      const error = Object.assign(new Error(`The task's return value cannot be sent from the pool ${config.kind === 'threads' ? 'thread' : 'process'}: ${(err as Error).message}`), {
        excType: 'EncodeError',
        excModule: 'kombu.exceptions',
      });
      send({ type: 'done', job, ok: false, error: transferError(error), memoryKiB: memoryKiB() });
    }
  } catch (caught) {
    const error = failureAfterAbort(caught, controller.signal);
    send({ type: 'done', job, ok: false, error: transferError(error, shouldAutoretry(task.options, error)), memoryKiB: memoryKiB() });
  } finally {
    cancelSoft();
  }
}

function onMessage(app: Celeriac, message: ToChild): void {
  if (message.type === 'run') {
    void runJob(app, message.job, message.request);
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
