/**
 * Early acks (Celery's default: acknowledge before running) of the tasks that start
 * in one event-loop turn, written together right before they run.
 *
 * A task function must not run before its early ack has left the process: a task
 * that kills the process would otherwise come back. Awaiting the ack's reply costs
 * every task a round trip before it starts (most of the drain time at low
 * concurrency); waiting only until the ack is written to the broker's socket
 * (`Consumer.ackBeforeRun`) keeps the guarantee without it. The gate opens at
 * `process.nextTick`, after the current turn's microtasks, so every task freed in
 * this turn shares one ack batch (one round trip, as the `Batcher` gave), and no task
 * body runs before the batch is written.
 */
import type { Consumer, Delivery, EarlyAck } from '../brokers/broker.js';

/** Collects early acks per turn and opens the way to run once each batch is written. */
export class EarlyAckGate {
  private deliveries: Delivery[] = [];
  private opens: (() => void)[] = [];
  private scheduled = false;
  private readonly landing = new Set<Promise<void>>();

  constructor(
    private readonly consumer: Consumer,
    /** An ack was given up (it logs; the task runs anyway, as with an awaited ack). */
    private readonly onAckFailed: (err: unknown) => void,
    /**
     * The batch was just handed to the consumer (same synchronous step): free their
     * prefetch slots now, so the worker's free slots and the consumer's unsettled count
     * change together and a reserve never sees one without the other.
     */
    private readonly onHandedOver: (deliveries: readonly Delivery[]) => void = () => undefined,
  ) {}

  /**
   * Ack `delivery` early. Resolves when its task may run: the ack was written (or,
   * when it could not be written at once, has landed). Never rejects.
   */
  pass(delivery: Delivery): Promise<void> {
    return this.passMany([delivery]);
  }

  /** `pass` for several deliveries: one promise for all of them (they run in one batch). */
  passMany(deliveries: readonly Delivery[]): Promise<void> {
    for (const d of deliveries) this.deliveries.push(d);
    if (!this.scheduled) {
      this.scheduled = true;
      process.nextTick(() => this.flush());
    }
    return new Promise((open) => this.opens.push(open));
  }

  /** Resolves when every early ack written so far has landed (or was given up). */
  async landed(): Promise<void> {
    await Promise.all(this.landing);
  }

  private flush(): void {
    this.scheduled = false;
    const { deliveries, opens } = this;
    this.deliveries = [];
    this.opens = [];
    let early: EarlyAck;
    try {
      early = this.consumer.ackBeforeRun ? this.consumer.ackBeforeRun(deliveries) : { sent: false, landed: this.consumer.ack(deliveries) };
    } catch (err) {
      early = { sent: false, landed: Promise.reject(err) };
    }
    this.onHandedOver(deliveries);
    const landed = early.landed.catch(this.onAckFailed);
    this.landing.add(landed);
    void landed.finally(() => this.landing.delete(landed));
    if (early.sent) for (const open of opens) open();
    else void landed.then(() => opens.forEach((open) => open()));
  }
}
