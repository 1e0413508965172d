/**
 * Celery's signals as typed hooks, per app: `app.signals.connect('taskPrerun',
 * (p) => ...)`. Names follow Celery's (`task_prerun` → `taskPrerun`), payloads
 * carry Celery's arguments in camelCase. A handler that throws (or rejects) is
 * logged and never breaks the task or the worker. Handlers may be async; the
 * worker awaits them, so keep them short.
 */
import type { Celeriac } from './app.js';
import type { TaskMessage } from './protocol/message.js';
import type { Route } from './brokers/broker.js';
import type { TaskState } from './states.js';
import type { TaskContext } from './task-context.js';

/** The payload of each signal. */
export interface SignalPayloads {
  /** Before a task message is published (Celery: `before_task_publish`). Headers and properties may be changed here. */
  beforeTaskPublish: { sender: string; body: unknown; exchange: string; routingKey: string; headers: Record<string, unknown>; properties: Record<string, unknown>; message: TaskMessage; route: Route };
  /** After a task message was published (`after_task_publish`). */
  afterTaskPublish: { sender: string; body: unknown; exchange: string; routingKey: string; headers: Record<string, unknown> };
  /** A worker received a task message and will run it (`task_received`). */
  taskReceived: { request: TaskContext };
  /** Right before the task function runs (`task_prerun`). */
  taskPrerun: { sender: string; taskId: string; task: TaskContext; args: readonly unknown[]; kwargs: Readonly<Record<string, unknown>> };
  /** After the outcome was recorded (`task_postrun`). */
  taskPostrun: { sender: string; taskId: string; task: TaskContext; args: readonly unknown[]; kwargs: Readonly<Record<string, unknown>>; retval: unknown; state: TaskState };
  /** The task succeeded (`task_success`). */
  taskSuccess: { sender: string; result: unknown; request: TaskContext };
  /** The task failed (`task_failure`). */
  taskFailure: { sender: string; taskId: string; exception: unknown; args: readonly unknown[]; kwargs: Readonly<Record<string, unknown>>; traceback: string | null; request: TaskContext };
  /** The task will be retried (`task_retry`). */
  taskRetry: { sender: string; request: TaskContext; reason: unknown };
  /** The task was revoked or expired (`task_revoked`). */
  taskRevoked: { sender: string; request: TaskContext; terminated: boolean; signum: string | null; expired: boolean };
  /** A message was rejected (`task_rejected`): undecodable, disallowed content, too large. */
  taskRejected: { message: TaskMessage | undefined; exc: unknown };
  /** A message for a task nobody registered (`task_unknown`). */
  taskUnknown: { name: string; id: string | null; message: TaskMessage; exc: unknown };
  /** The worker is starting (`worker_init`). */
  workerInit: { sender: { hostname: string } };
  /** The worker is consuming (`worker_ready`). */
  workerReady: { sender: { hostname: string } };
  /** The worker is stopping (`worker_shutdown`). */
  workerShutdown: { sender: { hostname: string } };
  /** In each pool thread or child process, after it loaded the app (`worker_process_init`). */
  workerProcessInit: { kind: 'threads' | 'processes'; pid: number };
  /** The worker's consumer sent a liveness heartbeat (`heartbeat_sent`). */
  heartbeatSent: { sender: { hostname: string } };
}

/** A signal name. */
export type SignalName = keyof SignalPayloads;

/** A handler of signal `N`. */
export type SignalHandler<N extends SignalName> = (payload: SignalPayloads[N]) => void | Promise<void>;

/** The signals of one app. */
export class Signals {
  private readonly handlers = new Map<SignalName, Set<SignalHandler<never>>>();

  constructor(private readonly report: (name: SignalName, err: unknown) => void) {}

  /** Call `handler` on every `name`; returns the function that disconnects it. */
  connect<N extends SignalName>(name: N, handler: SignalHandler<N>): () => void {
    let set = this.handlers.get(name);
    if (!set) this.handlers.set(name, (set = new Set()));
    set.add(handler as SignalHandler<never>);
    return () => this.disconnect(name, handler);
  }

  /** Stop calling `handler`. */
  disconnect<N extends SignalName>(name: N, handler: SignalHandler<N>): void {
    this.handlers.get(name)?.delete(handler as SignalHandler<never>);
  }

  /** Is anyone listening? (Lets hot paths skip building the payload.) */
  has(name: SignalName): boolean {
    return (this.handlers.get(name)?.size ?? 0) > 0;
  }

  /** Call every handler in order; a failing handler is reported, never thrown. */
  async send<N extends SignalName>(name: N, payload: SignalPayloads[N]): Promise<void> {
    const set = this.handlers.get(name);
    if (!set || set.size === 0) return;
    for (const handler of [...set]) {
      try {
        await (handler as SignalHandler<N>)(payload);
      } catch (err) {
        this.report(name, err);
      }
    }
  }
}

const byApp = new WeakMap<Celeriac, Signals>();

/** The signals of `app` (created on first use; failures logged on the app's logger). */
export function signalsOf(app: Celeriac): Signals {
  let signals = byApp.get(app);
  if (!signals) {
    signals = new Signals((name, err) => app.logger.error({ err, signal: name }, `Signal handler for ${name} raised: ${(err as Error)?.message ?? String(err)}; ignored`));
    byApp.set(app, signals);
  }
  return signals;
}

/** Is anyone listening to `name` on `app`? (Hot paths check before building a payload.) */
export function hasSignal(app: Celeriac, name: SignalName): boolean {
  return byApp.get(app)?.has(name) ?? false;
}

/** Send `name` on `app`'s signals when anyone listens. Never throws. */
export function emitSignal<N extends SignalName>(app: Celeriac, name: N, payload: SignalPayloads[N]): Promise<void> {
  const signals = byApp.get(app);
  if (!signals || !signals.has(name)) return Promise.resolve();
  return signals.send(name, payload);
}
