/**
 * The worker's consumer loop: reserve as many messages as there are free prefetch
 * slots, hand each to the request lifecycle, and wait for a slot when none is free.
 * While reserved messages still wait to run, it waits until `minBatch` slots are free
 * before reserving again, so a busy worker refills its window in a few large reserves
 * (one round trip, and one reserve/ack/result batch, per `minBatch` tasks) instead of
 * one per freed slot; the buffered messages keep every task slot busy meanwhile.
 */
import type { Consumer, Delivery } from '../brokers/broker.js';
import type { Logger } from '../logger.js';
import { isConnectionError } from '../redis-connection.js';

/** What the loop needs. */
export interface ConsumerLoopOptions {
  consumer: Consumer;
  log: Logger;
  /** Prefetch slots free now. */
  freeSlots: () => number;
  /** Called for every reserved message. */
  onDelivery: (delivery: Delivery) => void;
  /** Called after each reserve (with or without messages). */
  afterReserve: () => void;
  /** Reserved messages waiting to run (not started, not held for an ETA). Default: none. */
  buffered?: () => number;
  /** With messages buffered, reserve only once this many slots are free. Default 1. */
  minBatch?: number;
  /** Longest single reserve call, ms. Default 1000. */
  reserveTimeoutMs?: number;
}

/** Runs from `start` until `stop`. */
export class ConsumerLoop {
  private running = false;
  private done: Promise<void> = Promise.resolve();
  private slotWaiter: (() => void) | undefined;

  constructor(private readonly options: ConsumerLoopOptions) {}

  start(): void {
    this.running = true;
    this.done = this.loop();
  }

  /** A prefetch slot may have been freed: reserve again if the loop waits for one. */
  wake(): void {
    const wake = this.slotWaiter;
    this.slotWaiter = undefined;
    wake?.();
  }

  /** Stop reserving; resolves once the current reserve returned. */
  async stop(): Promise<void> {
    this.running = false;
    this.wake();
    await this.done;
  }

  private async loop(): Promise<void> {
    const { consumer, log, freeSlots, onDelivery, afterReserve } = this.options;
    const timeoutMs = this.options.reserveTimeoutMs ?? 1000;
    const minBatch = Math.max(1, this.options.minBatch ?? 1);
    const buffered = this.options.buffered ?? (() => 0);
    while (this.running) {
      const free = freeSlots();
      if (free <= 0 || (free < minBatch && buffered() > 0)) {
        await new Promise<void>((resolve) => (this.slotWaiter = resolve));
        continue;
      }
      let deliveries: Delivery[];
      try {
        deliveries = await consumer.reserve({ max: free, timeoutMs });
      } catch (err) {
        if (!this.running) break;
        // No connection: the outage is reported once by the connection itself.
        if (isConnectionError(err)) log.debug({ err }, 'Cannot reserve messages: no broker connection; retrying in 1 s');
        else log.error({ err }, 'Cannot reserve messages from the broker; retrying in 1 s');
        await new Promise((r) => setTimeout(r, 1000));
        continue;
      }
      for (const d of deliveries) onDelivery(d);
      afterReserve();
    }
  }
}
