/**
 * Keeps a consuming worker alive in the broker and runs the broker's periodic
 * upkeep (ETA promotion, restores of dead consumers' messages).
 *
 * Liveness comes from a heartbeat thread when the broker supports it, so a task
 * that blocks the event loop is not taken for a dead worker; upkeep stays on the
 * worker's own connection. While the thread is down (disabled, failed to start, or
 * died) both run from an event-loop timer, said loudly in the log, and a new thread
 * is tried with backoff: the worker never falls back for good.
 *
 * The thread also watches the loop for a hang (`workerHangTimeout`). When it
 * declares one, messages not started go back to their queues at once, and each
 * started message is settled the way Celery settles a message whose worker process
 * was lost (`WorkerLostError`): requeued when the task acks late and rejects on
 * worker lost (`task_reject_on_worker_lost`), otherwise acknowledged (an early-ack
 * message was acknowledged before it ran anyway). If the loop ever comes back, the
 * worker forfeits everything it held (the thread settled it) and goes on consuming.
 */
import type { Broker, Delivery } from '../brokers/broker.js';
import type { Logger } from '../logger.js';
import { startHeartbeatThread, type HeartbeatThread } from './heartbeat-thread.js';
import { createLoopWatchMemory, LoopState, LoopWatch, LostAction } from './loop-watch.js';

/** What the heartbeats need. */
export interface ConsumerHeartbeatOptions {
  broker: Broker;
  brokerUrl: string;
  consumerId: string;
  /** Seconds between beats; the consumer counts as dead after 5 missed. */
  intervalSeconds: number;
  /** Beat from a worker thread (`workerHeartbeatThread`). */
  useThread: boolean;
  /** Seconds without event-loop progress that count as a hang (`workerHangTimeout`); 0 = never. */
  hangTimeoutSeconds: number;
  /** Messages started at once, at most (running + recording): sizes the shared table. */
  startedCapacity: number;
  /**
   * After a released hang: drop every message the worker holds (without acking it)
   * and return them; the heartbeat thread has already settled them.
   */
  forfeit: () => Delivery[];
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
  private retryMs: number = THREAD_RETRY_MS[0];
  private readonly intervalMs: number;
  private readonly watch: LoopWatch | null;
  private readonly forfeited = new WeakSet<Delivery>();

  constructor(private readonly options: ConsumerHeartbeatOptions) {
    this.intervalMs = options.intervalSeconds * 1000;
    const watched = options.useThread && options.hangTimeoutSeconds > 0 && options.broker.maintain !== undefined;
    this.watch = watched ? new LoopWatch(createLoopWatchMemory(options.startedCapacity), (record) => this.thread?.send(record)) : null;
  }

  /**
   * Beat once now (awaited: before the first reserve, so a crash right away is
   * still noticed), then keep beating; the thread comes up in the background.
   */
  async start(): Promise<void> {
    if (!this.options.broker.heartbeat) return;
    await this.beat();
    if (this.watch) {
      const watch = this.watch;
      this.tickTimer = setInterval(() => (watch.tick(), this.settleHang()), Math.max(10, Math.min(1000, (this.options.hangTimeoutSeconds * 1000) / 4)));
      this.tickTimer.unref();
    }
    this.started = this.startRecurring();
  }

  /** Stop beating (call last: a long warm shutdown must not look like a dead worker). */
  async stop(): Promise<void> {
    this.stopped = true;
    await this.started;
    clearInterval(this.timer);
    clearInterval(this.tickTimer);
    clearTimeout(this.retryTimer);
    await this.thread?.stop();
  }

  /**
   * The worker is about to run `delivery`'s task. False when the loop was declared
   * hung: the message was given back, so it must not run here.
   */
  taskStarting(delivery: Delivery, acksLate: boolean, rejectOnWorkerLost: boolean): boolean {
    if (!this.watch) return true;
    const action = acksLate && rejectOnWorkerLost ? LostAction.Requeue : LostAction.Drop;
    if (this.watch.begin(delivery, delivery.deliveryTag, action)) return true;
    this.settleHang();
    return false;
  }

  /**
   * May the worker still ack, reject or park `delivery`? False after a declared hang:
   * the heartbeat thread settled it (or is settling it) already.
   */
  mayAnswer(delivery: Delivery): boolean {
    if (!this.watch) return true;
    this.settleHang();
    return this.watch.state === LoopState.Live && !this.forfeited.has(delivery);
  }

  /** `delivery`'s ack, reject or parking has landed (or failed): it is no longer started. */
  answered(delivery: Delivery): void {
    this.watch?.end(delivery);
  }

  /**
   * Resolves once no hang is being settled (the consumer loop waits here before
   * reserving, so nothing it reserves can be caught in the release), or when
   * `keepWaiting` turns false (shutdown).
   */
  async whileHangSettles(keepWaiting: () => boolean): Promise<void> {
    for (let waits = 0; this.watch && this.watch.state !== LoopState.Live && keepWaiting(); waits++) {
      if (waits % 300 === 299) this.options.log.warn('Still waiting for the heartbeat thread to release the messages of the hung event loop');
      await new Promise((r) => setTimeout(r, 100));
      this.settleHang();
    }
  }

  /** The loop is running again after a released hang: forfeit what it held, go live. */
  private settleHang(): void {
    if (this.watch?.state !== LoopState.Released) return;
    const lost = this.options.forfeit();
    for (const delivery of lost) this.forfeited.add(delivery);
    this.watch.reset();
    this.options.log.error(
      { forfeited: lost.length },
      `The event loop was blocked for more than workerHangTimeout (${this.options.hangTimeoutSeconds} s); the heartbeat thread gave back ` +
        `the ${lost.length} message(s) this worker held (started ones settled by the acks-late rules). Consuming again. ` +
        'Find the task that blocks the loop, or raise workerHangTimeout if it is legitimately that long.',
    );
  }

  private async startRecurring(): Promise<void> {
    const { broker, useThread } = this.options;
    if (!useThread || !broker.maintain) return this.everyInterval(() => this.beat());
    await this.startThread();
  }

  private async startThread(): Promise<void> {
    const { brokerUrl, consumerId, log } = this.options;
    try {
      const thread = await startHeartbeatThread(
        { brokerUrl, consumerId, intervalMs: this.intervalMs, ttlMs: this.ttlMs, watch: this.watch?.memory ?? null, hangTimeoutMs: this.options.hangTimeoutSeconds * 1000 },
        log,
        (why) => this.threadDown(`the heartbeat thread died (${why})`),
      );
      if (this.stopped) return void (await thread.stop());
      if (this.thread === undefined && this.retryMs !== THREAD_RETRY_MS[0]) log.info('Heartbeat thread running again; beating from it');
      this.thread = thread;
      this.retryMs = THREAD_RETRY_MS[0];
      this.everyInterval(() => this.maintain());
    } catch (err) {
      this.threadDown(`cannot start the heartbeat thread (${(err as Error).message})`);
    }
  }

  /** Beat from the loop meanwhile (loudly), and try a new thread later. */
  private threadDown(why: string): void {
    this.thread = undefined;
    if (this.stopped) return;
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

  private get ttlMs(): number {
    return this.intervalMs * 5;
  }

  private everyInterval(fn: () => Promise<void>): void {
    clearInterval(this.timer);
    this.timer = setInterval(() => void fn(), this.intervalMs);
    this.timer.unref();
  }

  private async beat(): Promise<void> {
    await this.guard(() => this.options.broker.heartbeat?.(this.options.consumerId, this.ttlMs), 'Broker heartbeat failed; will retry');
  }

  private async maintain(): Promise<void> {
    await this.guard(() => this.options.broker.maintain?.(), 'Broker maintenance (ETA promotion, restores) failed; will retry');
  }

  private async guard(fn: () => Promise<void> | undefined, message: string): Promise<void> {
    try {
      await fn();
    } catch (err) {
      this.options.log.warn({ err }, message);
    }
  }
}
