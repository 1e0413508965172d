/**
 * Messages whose ETA is in the future. Near ones are held in memory on a timer
 * (they do not use a prefetch slot); far ones (beyond `holdLimitMs`) are parked
 * broker-side with `Consumer.defer`, so no worker holds them past a visibility
 * timeout.
 */
import type { TaskRequest } from './task-request.js';

/** What the holder does with a request. */
export interface EtaHolderActions {
  /** Park a far-future request broker-side. */
  park(request: TaskRequest): void;
  /** A near request starts being held (free its prefetch slot). */
  held(request: TaskRequest): void;
  /** A held request is due: run it. */
  due(request: TaskRequest): void;
}

/** Holds near-ETA requests on timers; parks far ones. */
export class EtaHolder {
  private readonly timers = new Map<string, { timer: NodeJS.Timeout; request: TaskRequest }>();

  constructor(
    private readonly holdLimitMs: number,
    private readonly actions: EtaHolderActions,
  ) {}

  /** Requests held in memory now. */
  get size(): number {
    return this.timers.size;
  }

  /** Hold `request` for `delayMs` (> 0), or park it when that is beyond the hold limit. */
  hold(request: TaskRequest, delayMs: number): void {
    if (delayMs > this.holdLimitMs) return this.actions.park(request);
    const tag = request.delivery.deliveryTag;
    this.actions.held(request);
    const timer = setTimeout(() => {
      this.timers.delete(tag);
      this.actions.due(request);
    }, delayMs);
    this.timers.set(tag, { timer, request });
  }

  /** Drop every timer (shutdown): the requests stay unsettled and are given back. */
  clear(): void {
    for (const { timer } of this.timers.values()) clearTimeout(timer);
    this.timers.clear();
  }
}
