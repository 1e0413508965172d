/**
 * Keeps a consumer alive in the broker and runs the broker's periodic upkeep (ETA
 * promotion, restores of dead consumers' messages). Driven by a transport's
 * `Consumer`, not by the worker.
 *
 * Liveness comes from a heartbeat thread when the transport has one, so a task
 * that blocks the event loop is not taken for a dead worker; upkeep stays on the
 * consumer's own connection. Without the thread (disabled, failed to start, or
 * died) both run from an event-loop timer.
 */
import type { Logger } from '../logger.js';
import { isConnectionError } from '../redis-connection.js';
import { startHeartbeatThread, type HeartbeatThread } from './heartbeat-thread.js';

/** What the heartbeats need. */
export interface ConsumerHeartbeatOptions {
  /** Prove liveness and run upkeep, from the event loop. */
  beat: () => Promise<void>;
  /** Upkeep alone (liveness proven by the thread). */
  upkeep: () => Promise<void>;
  /** Beat from a thread with its own connection to this broker; null: beat from the event loop. */
  thread: { brokerUrl: string; consumerId: string; transportOptions?: Record<string, unknown> } | null;
  /** Seconds between beats; the consumer counts as dead after 5 missed. */
  intervalSeconds: number;
  log: Logger;
}

/** A consumer's heartbeats, from start to stop. */
export class ConsumerHeartbeats {
  private timer: NodeJS.Timeout | undefined;
  private thread: HeartbeatThread | undefined;
  private started: Promise<void> = Promise.resolve();
  private readonly intervalMs: number;

  constructor(private readonly options: ConsumerHeartbeatOptions) {
    this.intervalMs = options.intervalSeconds * 1000;
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
    this.started = this.startRecurring();
  }

  /** Stop beating (call last: a long shutdown must not look like a dead consumer). */
  async stop(): Promise<void> {
    await this.started;
    clearInterval(this.timer);
    await this.thread?.stop();
  }

  private async startRecurring(): Promise<void> {
    const { thread, log } = this.options;
    if (!thread) return this.everyInterval(() => this.beat());
    try {
      this.thread = await startHeartbeatThread({ ...thread, intervalMs: this.intervalMs, ttlMs: this.ttlMs }, log, () => this.everyInterval(() => this.beat()));
      this.everyInterval(() => this.upkeep());
    } catch (err) {
      log.warn({ err }, 'Cannot start the heartbeat thread; beating from the event loop (a long synchronous task may get its message redelivered)');
      this.everyInterval(() => this.beat());
    }
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
