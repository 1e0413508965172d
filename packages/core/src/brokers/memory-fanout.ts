/**
 * The `memory://` transport's broadcast/reply channel: remote control and events
 * between the producers and workers of one process (tests, the embedded worker).
 */
import type { TaskMessage } from '../protocol/message.js';
import { REVOKE_EXPIRES_SECONDS } from '../control/revoked-set.js';
import type { ControlChannel, ReplyQueue } from './broker.js';

type Listener = (message: TaskMessage, routingKey: string) => void;

/** Subscribers and reply queues shared by every channel of one memory hub. */
export class MemoryFanoutHub {
  readonly listeners = new Map<string, Set<Listener>>();
  /** `<exchange>\x00<routing key>` → queued replies and waiting readers. */
  readonly replyQueues = new Map<string, { items: TaskMessage[]; waiters: ((m: TaskMessage | null) => void)[] }>();
  /** Revoked id → unix ms until which the revoke holds. */
  readonly revoked = new Map<string, number>();
}

/** One channel on a memory hub (see `ControlChannel`). */
export class MemoryControlChannel implements ControlChannel {
  private readonly mine = new Set<() => void>();

  constructor(private readonly hub: MemoryFanoutHub) {}

  async subscribe(exchange: string, onMessage: Listener): Promise<() => Promise<void>> {
    let set = this.hub.listeners.get(exchange);
    if (!set) this.hub.listeners.set(exchange, (set = new Set()));
    set.add(onMessage);
    const stop = () => void set.delete(onMessage);
    this.mine.add(stop);
    return async () => {
      this.mine.delete(stop);
      stop();
    };
  }

  async publishFanout(exchange: string, message: TaskMessage, routingKey = ''): Promise<void> {
    // Delivered on a later turn, as a broker would: a publisher never runs its subscribers' code inline.
    for (const listener of this.hub.listeners.get(exchange) ?? []) setImmediate(() => listener(message, routingKey));
  }

  async publishDirect(exchange: string, routingKey: string, message: TaskMessage): Promise<void> {
    const queue = this.hub.replyQueues.get(`${exchange}\x00${routingKey}`);
    if (!queue) return;
    const waiter = queue.waiters.shift();
    if (waiter) waiter(message);
    else queue.items.push(message);
  }

  async openReplyQueue(exchange: string, routingKey: string): Promise<ReplyQueue> {
    const key = `${exchange}\x00${routingKey}`;
    const queue = { items: [] as TaskMessage[], waiters: [] as ((m: TaskMessage | null) => void)[] };
    this.hub.replyQueues.set(key, queue);
    return {
      next: (timeoutMs) => {
        const item = queue.items.shift();
        if (item) return Promise.resolve(item);
        return new Promise((resolve) => {
          const timer = setTimeout(() => {
            queue.waiters.splice(queue.waiters.indexOf(done), 1);
            resolve(null);
          }, timeoutMs);
          const done = (m: TaskMessage | null) => {
            clearTimeout(timer);
            resolve(m);
          };
          queue.waiters.push(done);
        });
      },
      close: async () => {
        if (this.hub.replyQueues.get(key) === queue) this.hub.replyQueues.delete(key);
        for (const w of queue.waiters.splice(0)) w(null);
      },
    };
  }

  async persistRevoked(ids: readonly string[], expiresAtMs: number): Promise<void> {
    for (const id of ids) this.hub.revoked.set(id, expiresAtMs);
  }

  async loadRevoked(): Promise<Map<string, number>> {
    const out = new Map<string, number>();
    const now = Date.now();
    for (const [id, until] of this.hub.revoked) {
      if (until <= now) this.hub.revoked.delete(id);
      else out.set(id, (until - REVOKE_EXPIRES_SECONDS * 1000) / 1000);
    }
    return out;
  }

  async close(): Promise<void> {
    for (const stop of this.mine) stop();
    this.mine.clear();
  }
}
