/**
 * Celery's logical clock (`app.clock`): a Lamport clock stamped on remote-control
 * messages and events, advanced past any value seen from a peer.
 */
export class LamportClock {
  private value = 0;

  /** Advance and return the new value (stamping an outgoing message). */
  forward(): number {
    return ++this.value;
  }

  /** Adjust after receiving `other` from a peer: max(local, other) + 1. */
  adjust(other: unknown): number {
    const n = typeof other === 'string' ? Number(other) : other;
    if (typeof n === 'number' && Number.isFinite(n)) this.value = Math.max(this.value, Math.trunc(n));
    return ++this.value;
  }

  get current(): number {
    return this.value;
  }
}

const clocks = new WeakMap<object, LamportClock>();

/** The logical clock of an app (one per app, created on first use). */
export function clockOf(app: object): LamportClock {
  let clock = clocks.get(app);
  if (!clock) clocks.set(app, (clock = new LamportClock()));
  return clock;
}
