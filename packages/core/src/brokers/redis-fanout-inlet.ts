/**
 * Receives kombu fanout messages for the fanout-bound queues one Redis consumer
 * consumes: `PSUBSCRIBE`s each queue's kombu topic (see redis-exchange.ts) on a
 * connection of its own and pushes every message it receives onto that queue's
 * list (priority bucket from the envelope), where the consumer reserves it like any
 * other message: held in `unacked` until acked, restored if the worker dies.
 *
 * Like kombu, a fanout message reaches the consumers subscribed when it is
 * published, one copy per subscribed consumer; nothing is kept for a queue nobody
 * listens to at that moment.
 */
import type { Redis } from 'ioredis';
import type { Logger } from '../logger.js';
import { closeRedisClient, duplicateRedisClient } from '../redis-client.js';
import { priorityListKey } from './redis.js';

export class RedisFanoutInlet {
  private subscriber: Redis | undefined;
  /** Subscription pattern → queues fed from it. */
  private readonly queuesByPattern = new Map<string, Set<string>>();

  constructor(
    private readonly redis: Redis,
    private readonly steps: readonly number[],
    private readonly log: Logger | undefined,
  ) {}

  /** Feed `queue` from messages published on `pattern`; resolves once subscribed. */
  async add(queue: string, pattern: string): Promise<void> {
    let queues = this.queuesByPattern.get(pattern);
    if (!queues) {
      this.queuesByPattern.set(pattern, (queues = new Set()));
      queues.add(queue);
      await this.connection().psubscribe(pattern);
    } else queues.add(queue);
  }

  /** Stop feeding `queue` (unsubscribing patterns no other queue uses). */
  async remove(queue: string): Promise<void> {
    for (const [pattern, queues] of this.queuesByPattern) {
      if (!queues.delete(queue) || queues.size > 0) continue;
      this.queuesByPattern.delete(pattern);
      await this.subscriber?.punsubscribe(pattern).catch(() => undefined);
    }
  }

  /** The queues fed at the moment. */
  get queues(): string[] {
    return [...new Set([...this.queuesByPattern.values()].flatMap((q) => [...q]))];
  }

  private connection(): Redis {
    if (this.subscriber) return this.subscriber;
    const subscriber = duplicateRedisClient(this.redis, { enableAutoPipelining: false });
    subscriber.on('pmessage', (pattern: string, _channel: string, raw: string) => {
      const queues = this.queuesByPattern.get(pattern);
      if (!queues) return;
      const priority = envelopePriority(raw);
      for (const queue of queues) {
        this.redis.lpush(priorityListKey(queue, priority, this.steps), raw).catch((err: unknown) => {
          this.log?.error({ err, queue }, `A fanout message for queue ${queue} could not be stored (Redis refused the LPUSH); it is lost for this consumer`);
        });
      }
    });
    this.subscriber = subscriber;
    return subscriber;
  }

  async close(): Promise<void> {
    this.queuesByPattern.clear();
    const subscriber = this.subscriber;
    this.subscriber = undefined;
    if (subscriber) await closeRedisClient(subscriber);
  }
}

/** The kombu envelope's `properties.priority` (0 when absent or unreadable). */
function envelopePriority(raw: string): number {
  try {
    const priority = (JSON.parse(raw) as { properties?: { priority?: unknown } }).properties?.priority;
    return typeof priority === 'number' ? priority : 0;
  } catch {
    return 0;
  }
}
