/**
 * Keeps a consuming worker alive in the broker and runs the broker's periodic
 * upkeep (ETA promotion, restores of dead consumers' messages).
 *
 * Liveness comes from a heartbeat thread when the broker supports it, so a task
 * that blocks the event loop is not taken for a dead worker; upkeep stays on the
 * worker's own connection. Without the thread (disabled, failed to start, or died)
 * both run from an event-loop timer.
 */
import type { Broker } from '../brokers/broker.js';
import type { Logger } from '../logger.js';
import { isConnectionError } from '../redis-connection.js';
import { startHeartbeatThread, type HeartbeatThread } from './heartbeat-thread.js';

/** What the heartbeats need. */
export interface ConsumerHeartbeatOptions {
  broker: Broker;
  brokerUrl: string;
  /** `broker_transport_options` (the thread connects with the same `redis` options). */
  transportOptions?: Record<string, unknown>;
  consumerId: string;
  /** Seconds between beats; the consumer counts as dead after 5 missed. */
  intervalSeconds: number;
  /** Beat from a worker thread (`workerHeartbeatThread`). */
  useThread: boolean;
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

  /**
   * Beat once now (awaited: before the first reserve, so a crash right away is
   * still noticed), then keep beating; the thread comes up in the background.
   */
  async start(): Promise<void> {
    if (!this.options.broker.heartbeat) return;
    await this.beat();
    this.started = this.startRecurring();
  }

  /** Stop beating (call last: a long warm shutdown must not look like a dead worker). */
  async stop(): Promise<void> {
    await this.started;
    clearInterval(this.timer);
    await this.thread?.stop();
  }

  private async startRecurring(): Promise<void> {
    const { broker, brokerUrl, transportOptions, consumerId, useThread, log } = this.options;
    if (!useThread || !broker.maintain) return this.everyInterval(() => this.beat());
    try {
      this.thread = await startHeartbeatThread({ brokerUrl, transportOptions, consumerId, intervalMs: this.intervalMs, ttlMs: this.ttlMs }, log, () =>
        this.everyInterval(() => this.beat()),
      );
      this.everyInterval(() => this.maintain());
    } catch (err) {
      log.warn({ err }, 'Cannot start the heartbeat thread; beating from the event loop (a long synchronous task may get its message redelivered)');
      this.everyInterval(() => this.beat());
    }
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
      // No connection: the outage is reported once by the connection itself.
      if (isConnectionError(err)) this.options.log.debug({ err }, message);
      else this.options.log.warn({ err }, message);
    }
  }
}
