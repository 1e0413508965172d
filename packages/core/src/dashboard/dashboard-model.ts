/**
 * What the dashboard shows, kept live from Celery's events (so Python workers and
 * their tasks appear as Celeriac's do): the event receiver's cluster model, a
 * throughput series, the children of each task (canvas links), the queues seen
 * and their depths, and the workers' `inspect` replies (Flower's `/api/workers`).
 */
import { EventEmitter } from 'node:events';
import type { Celeriac } from '../app.js';
import type { CeleryEvent } from '../events/event-message.js';
import type { EventReceiver } from '../events/event-receiver.js';
import type { EventState, TaskInfo } from '../events/event-state.js';
import { RateSeries } from './rate-series.js';

/** Options of the live model. */
export interface DashboardModelOptions {
  /** Tasks kept in memory (oldest forgotten first). Default 10,000. */
  maxTasks?: number;
  /** Milliseconds between queue-depth reads while someone watches. Default 2,000. */
  queuePollMs?: number;
  /** Milliseconds to wait for `inspect` replies. Default 1,000. */
  inspectTimeoutMs?: number;
  /** Queues always shown (besides the app's default queue, those in `taskQueues`, and those workers or events name). */
  queues?: string[];
}

/** The `inspect` methods Flower asks every worker for `/api/workers`. */
const INSPECT_METHODS = ['stats', 'active_queues', 'registered', 'scheduled', 'active', 'reserved', 'revoked', 'conf'] as const;

/** The cluster as the dashboard sees it. */
export class DashboardModel extends EventEmitter {
  readonly receiver: EventReceiver;
  readonly series = new RateSeries();
  /** Parent task id → its children's ids (from task-sent/received `parent_id`). */
  readonly children = new Map<string, Set<string>>();
  /** Queue name → messages waiting (the last read). */
  readonly queueDepths = new Map<string, number>();
  /** Worker name → Flower's inspect record (`stats`, `active_queues`, `registered`, ..., `timestamp`). */
  readonly workerInfo = new Map<string, Record<string, unknown>>();
  /** Counts the model's changes; a rendered view is current while it is unchanged. */
  version = 0;
  private readonly knownQueues = new Set<string>();
  private queueTimer: NodeJS.Timeout | undefined;
  private changeTimer: NodeJS.Timeout | undefined;
  private inspectTimer: NodeJS.Timeout | undefined;
  private inspecting: Promise<void> | undefined;
  private started: Promise<void> | undefined;
  private closed = false;
  private watchers = 0;

  constructor(
    private readonly app: Celeriac,
    private readonly options: DashboardModelOptions = {},
  ) {
    super();
    this.setMaxListeners(0);
    this.receiver = app.events.receiver();
    this.receiver.state.maxTasks = options.maxTasks ?? 10_000;
    this.receiver.on('*', (e) => this.onEvent(e));
    this.knownQueues.add(app.settings.taskDefaultQueue);
    for (const q of app.settings.taskQueues ?? []) this.knownQueues.add(q.name);
    for (const q of options.queues ?? []) this.knownQueues.add(q);
  }

  /** The events model (workers, tasks). */
  get state(): EventState {
    return this.receiver.state;
  }

  /** Subscribe to events and ask the workers what they are (once; later calls wait for the first). */
  start(): Promise<void> {
    return (this.started ??= (async () => {
      await this.receiver.start();
      void this.refreshWorkers();
      await this.readQueueDepths();
    })());
  }

  /** Someone is watching (an open live stream): keep queue depths fresh while anyone does. Returns the stop function. */
  watch(): () => void {
    this.watchers++;
    if (!this.queueTimer && !this.closed) {
      this.queueTimer = setInterval(() => void this.readQueueDepths(), this.options.queuePollMs ?? 2_000);
      this.queueTimer.unref();
    }
    let stopped = false;
    return () => {
      if (stopped) return;
      stopped = true;
      if (--this.watchers === 0) {
        clearInterval(this.queueTimer);
        this.queueTimer = undefined;
      }
    };
  }

  private onEvent(e: CeleryEvent): void {
    if (e.type === 'task-succeeded') this.series.add(e.timestamp, 'succeeded');
    else if (e.type === 'task-failed') this.series.add(e.timestamp, 'failed');
    const parent = e.parent_id;
    if (typeof parent === 'string' && typeof e.uuid === 'string' && parent !== e.uuid) {
      let set = this.children.get(parent);
      if (!set) {
        this.children.set(parent, (set = new Set()));
        // Bounded like the task model: the oldest parents are forgotten first.
        if (this.children.size > this.state.maxTasks) this.children.delete(this.children.keys().next().value as string);
      }
      set.add(e.uuid);
    }
    const queue = typeof e.queue === 'string' ? e.queue : typeof e.routing_key === 'string' && e.exchange === '' ? e.routing_key : undefined;
    if (queue) this.knownQueues.add(queue);
    if (e.type === 'worker-online' || (e.type.startsWith('worker-') && !this.workerInfo.has(e.hostname))) this.scheduleInspect();
    this.changed();
  }

  /** Mark the model changed; listeners of `change` hear it at most every 250 ms. */
  changed(): void {
    this.version++;
    this.changeTimer ??= setTimeout(() => {
      this.changeTimer = undefined;
      this.emit('change');
    }, 250);
  }

  private scheduleInspect(): void {
    if (this.inspectTimer || this.closed) return;
    this.inspectTimer = setTimeout(() => {
      this.inspectTimer = undefined;
      void this.refreshWorkers();
    }, 500);
  }

  /** Ask every worker (or `worker`) Flower's inspect questions; the replies fill `workerInfo`. */
  refreshWorkers(worker?: string): Promise<void> {
    return (this.inspecting ??= (async () => {
      try {
        const inspect = this.app.control.inspect({ timeout: this.options.inspectTimeoutMs ?? 1_000, destination: worker ? [worker] : undefined });
        const replies = await Promise.all(
          INSPECT_METHODS.map((m) => {
            const call = { stats: () => inspect.stats(), active_queues: () => inspect.activeQueues(), registered: () => inspect.registered(), scheduled: () => inspect.scheduled(), active: () => inspect.active(), reserved: () => inspect.reserved(), revoked: () => inspect.revoked(), conf: () => inspect.conf() }[m];
            return call().catch(() => null);
          }),
        );
        const now = Date.now() / 1000;
        INSPECT_METHODS.forEach((method, i) => {
          for (const [node, reply] of Object.entries(replies[i] ?? {})) {
            const info = this.workerInfo.get(node) ?? {};
            info[method] = reply;
            info.timestamp = now;
            this.workerInfo.set(node, info);
            if (method === 'active_queues' && Array.isArray(reply)) {
              for (const q of reply as { name?: unknown }[]) if (typeof q.name === 'string') this.knownQueues.add(q.name);
            }
          }
        });
        this.changed();
      } finally {
        this.inspecting = undefined;
      }
    })());
  }

  /** Read each known queue's depth from the broker (errors leave the last value). */
  async readQueueDepths(): Promise<void> {
    if (this.closed) return;
    let broker;
    try {
      broker = await this.app.getBroker();
    } catch {
      return;
    }
    let moved = false;
    await Promise.all(
      [...this.knownQueues].map(async (q) => {
        try {
          const n = await broker.queueLength(q);
          if (this.queueDepths.get(q) !== n) moved = true;
          this.queueDepths.set(q, n);
        } catch {
          // the broker is away: keep the last value
        }
      }),
    );
    if (moved) this.changed();
  }

  /** A task and the ids of its children (canvas). */
  task(id: string): { task: TaskInfo; children: string[] } | undefined {
    const task = this.state.tasks.get(id);
    return task ? { task, children: [...(this.children.get(id) ?? [])] } : undefined;
  }

  /** How many tasks are in each state. */
  countsByState(): Record<string, number> {
    const out: Record<string, number> = {};
    for (const t of this.state.tasks.values()) out[t.state] = (out[t.state] ?? 0) + 1;
    return out;
  }

  /** Task names seen, sorted. */
  taskNames(): string[] {
    const names = new Set<string>();
    for (const t of this.state.tasks.values()) if (t.name) names.add(t.name);
    return [...names].sort();
  }

  /** Stop listening. */
  async close(): Promise<void> {
    this.closed = true;
    clearInterval(this.queueTimer);
    clearTimeout(this.changeTimer);
    clearTimeout(this.inspectTimer);
    this.removeAllListeners();
    await this.receiver.stop();
  }
}
