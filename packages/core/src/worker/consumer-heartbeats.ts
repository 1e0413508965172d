/**
 * Keeps a consumer alive in the broker and runs the broker's periodic upkeep (ETA
 * promotion, restores of dead consumers' messages). Driven by a transport's
 * `Consumer`, not by the worker.
 *
 * Liveness comes from a heartbeat thread when the transport has one, so a task
 * that blocks the event loop is not taken for a dead worker; upkeep stays on the
 * consumer's own connection. While the thread is down (disabled, failed to start,
 * or died) both run from an event-loop timer, said loudly in the log, and a new
 * thread is tried with backoff: the consumer never falls back for good.
 *
 * The thread also watches the loop for a hang (`workerHangTimeout`, see
 * `loop-watch.ts`). When it declares one, messages not started go back to their
 * queues at once, and each started message is settled the way Celery 5.2 settles a
 * message whose worker process was lost (`WorkerLostError` in
 * `celery/worker/request.py`): requeued when the task acks late and rejects on
 * worker lost (`task_reject_on_worker_lost`), otherwise acknowledged (an early-ack
 * message was acknowledged before it ran anyway). If the loop ever comes back, the
 * owner forfeits everything it held (`onReleased`) and consuming goes on.
 */
import type { ThreadResultTarget } from '../backends/backend.js';
import type { IfWorkerLost, RunningTask } from '../brokers/broker.js';
import type { Logger } from '../logger.js';
import { isConnectionError } from '../redis-connection.js';
import { startHeartbeatThread, type HeartbeatThread } from './heartbeat-thread.js';
import { createLoopWatchMemory, LoopState, LoopWatch, LostAction, type LoopWatchMemory } from './loop-watch.js';

/** The hang watch (needs the thread). */
export interface HangWatchOptions {
  /** Seconds without event-loop progress that count as a hang (`workerHangTimeout`). */
  timeoutSeconds: number;
  /** Messages started at once, at most (running + recording + acks in flight): sizes the shared table. */
  startedCapacity: number;
  /**
   * The loop runs again after a released hang: drop every message held (without
   * settling it: the thread settled it, and its lease is gone).
   */
  onReleased: () => void;
  /** Where the thread stores FAILURE (WorkerLostError) for started tasks it settles; absent: nowhere. */
  lostResults?: ThreadResultTarget | null;
}

/** What the heartbeats need. */
export interface ConsumerHeartbeatOptions {
  /** Prove liveness and run upkeep, from the event loop. */
  beat: () => Promise<void>;
  /** Upkeep alone (liveness proven by the thread). */
  upkeep: () => Promise<void>;
  /** Beat from a thread with its own connection to this broker; null: beat from the event loop. */
  thread: { brokerUrl: string; consumerId: string; transportOptions?: Record<string, unknown> } | null;
  /** Watch the event loop for hangs from the thread; null: no watch. */
  hang: HangWatchOptions | null;
  /** Seconds between beats; the consumer counts as dead after 5 missed. */
  intervalSeconds: number;
  log: Logger;
}

/** First and longest wait before trying a new heartbeat thread. */
const THREAD_RETRY_MS = [5_000, 60_000] as const;

/** A consumer's heartbeats, from start to stop. */
export class ConsumerHeartbeats {
  private timer: NodeJS.Timeout | undefined;
  private tickTimer: NodeJS.Timeout | undefined;
  private retryTimer: NodeJS.Timeout | undefined;
  private thread: HeartbeatThread | undefined;
  private started: Promise<void> = Promise.resolve();
  private stopped = false;
  private threadWasDown = false;
  private retryMs: number = THREAD_RETRY_MS[0];
  /** Hangs released so far (see `reserving`). */
  private hangs = 0;
  private readonly intervalMs: number;
  private readonly watch: LoopWatch | null;

  constructor(private readonly options: ConsumerHeartbeatOptions) {
    this.intervalMs = options.intervalSeconds * 1000;
    const { thread, hang } = options;
    this.watch = thread && hang && hang.timeoutSeconds > 0 ? new LoopWatch(createLoopWatchMemory(hang.startedCapacity), (record) => this.thread?.send(record)) : null;
  }

  /** Time-to-live of one beat: 5 intervals. */
  get ttlMs(): number {
    return this.intervalMs * 5;
  }

  /**
   * Beat once now (awaited: before the first reserve, so a crash right away is
   * still noticed), then keep beating; the thread comes up in the background.
   */
  async start(): Promise<void> {
    await this.beat();
    if (this.watch) {
      const watch = this.watch;
      const tickMs = Math.max(10, Math.min(1000, (this.options.hang!.timeoutSeconds * 1000) / 4));
      this.tickTimer = setInterval(() => (watch.tick(), this.settleHang()), tickMs);
      this.tickTimer.unref();
    }
    this.started = this.startRecurring();
  }

  /** Stop beating (call last: a long shutdown must not look like a dead consumer). */
  async stop(): Promise<void> {
    this.stopped = true;
    await this.started;
    clearInterval(this.timer);
    clearInterval(this.tickTimer);
    clearTimeout(this.retryTimer);
    await this.thread?.stop();
  }

  /**
   * `key`'s message (tag `tag`) starts running now; until it is settled a hang acks or
   * requeues it (`ifLost`), or leaves it alone (`none`: acknowledged before the run).
   * False while a hang is being settled: the message may have been given back, so it
   * must not run here.
   */
  taskStarting(key: object, tag: string, ifLost: IfWorkerLost, task?: RunningTask): boolean {
    if (!this.watch) return true;
    this.settleHang();
    if (ifLost === 'none') return this.watch.state === LoopState.Live;
    if (this.watch.begin(key, tag, ifLost === 'requeue' ? LostAction.Requeue : LostAction.Drop, task)) return true;
    this.settleHang();
    return false;
  }

  /** `key`'s message was settled (or settling failed): it is no longer started. */
  settled(key: object): void {
    this.watch?.end(key);
  }

  /**
   * Resolves once no hang is being released (reserve waits here, so nothing it
   * reserves can be caught in the release), or when `keepWaiting` turns false.
   */
  async whileHangReleases(keepWaiting: () => boolean): Promise<void> {
    for (let waits = 0; this.watch && this.watch.state !== LoopState.Live && keepWaiting(); waits++) {
      if (waits % 300 === 299) this.options.log.warn('Still waiting for the heartbeat thread to release the messages of the hung event loop');
      await new Promise((r) => setTimeout(r, 100));
      this.settleHang();
    }
  }

  /**
   * Call before reserving. The returned check says whether what that reserve took is
   * still this consumer's to run: false once a hang was declared meanwhile (the
   * reserve may have run before the release, which gave its messages back).
   */
  reserving(): () => boolean {
    const hangs = this.hangs;
    return () => {
      if (!this.watch) return true;
      this.settleHang();
      return this.watch.state === LoopState.Live && this.hangs === hangs;
    };
  }

  /** The shared memory of the hang watch (handed to each heartbeat thread; tests drive it). */
  get watchMemory(): LoopWatchMemory | null {
    return this.watch?.memory ?? null;
  }

  /** The loop is running again after a released hang: the owner forfeits what it held; go live. */
  private settleHang(): void {
    if (this.watch?.state !== LoopState.Released) return;
    const hang = this.options.hang!;
    this.hangs++;
    hang.onReleased();
    this.watch.reset();
    this.options.log.error(
      `The event loop was blocked for more than workerHangTimeout (${hang.timeoutSeconds} s); the heartbeat thread gave back what this ` +
        'worker held (started messages settled by the acks-late rules). Consuming again. Find the task that blocks the loop, ' +
        'or raise workerHangTimeout if a task legitimately blocks that long.',
    );
  }

  private async startRecurring(): Promise<void> {
    // From the loop until the thread is up (its start-up can take a while under load).
    this.everyInterval(() => this.beat());
    if (this.options.thread) await this.startThread();
  }

  private async startThread(): Promise<void> {
    const { thread: where, log } = this.options;
    try {
      const thread = await startHeartbeatThread(
        {
          ...where!,
          intervalMs: this.intervalMs,
          ttlMs: this.ttlMs,
          watch: this.watch?.memory ?? null,
          hangTimeoutMs: (this.options.hang?.timeoutSeconds ?? 0) * 1000,
          lostResults: this.options.hang?.lostResults ?? null,
        },
        log,
        (why) => this.threadDown(`the heartbeat thread died (${why})`),
      );
      if (this.stopped) return void (await thread.stop());
      if (this.threadWasDown) log.info('Heartbeat thread running again; beating from it');
      this.thread = thread;
      this.threadWasDown = false;
      this.retryMs = THREAD_RETRY_MS[0];
      this.everyInterval(() => this.upkeep());
    } catch (err) {
      this.threadDown(`cannot start the heartbeat thread (${(err as Error).message})`);
    }
  }

  /** Beat from the loop meanwhile (loudly), and try a new thread later. */
  private threadDown(why: string): void {
    this.thread = undefined;
    if (this.stopped) return;
    this.threadWasDown = true;
    this.everyInterval(() => this.beat());
    this.options.log.error(
      `Heartbeat: ${why}; beating from the event loop meanwhile (a task blocking it past ${(this.ttlMs / 1000).toFixed(1)} s ` +
        `may be run twice, and hangs are not detected). Trying a new thread in ${this.retryMs / 1000} s.`,
    );
    clearTimeout(this.retryTimer);
    this.retryTimer = setTimeout(() => (this.started = this.startThread()), this.retryMs);
    this.retryTimer.unref();
    this.retryMs = Math.min(this.retryMs * 2, THREAD_RETRY_MS[1]);
  }

  private everyInterval(fn: () => Promise<void>): void {
    clearInterval(this.timer);
    this.timer = setInterval(() => void fn(), this.intervalMs);
    this.timer.unref();
  }

  private async beat(): Promise<void> {
    await this.guard(this.options.beat, 'Broker heartbeat failed; will retry');
  }

  private async upkeep(): Promise<void> {
    await this.guard(this.options.upkeep, 'Broker maintenance (ETA promotion, restores) failed; will retry');
  }

  private async guard(fn: () => Promise<void>, message: string): Promise<void> {
    try {
      await fn();
    } catch (err) {
      // No connection: the outage is reported once by the connection itself.
      if (isConnectionError(err)) this.options.log.debug({ err }, message);
      else this.options.log.warn({ err }, message);
    }
  }
}
