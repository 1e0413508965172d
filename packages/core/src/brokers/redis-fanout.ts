/**
 * kombu's fanout and reply emulation on Redis, for remote control (pidbox) and
 * events: the `ControlChannel` of the Redis transport.
 *
 * - Fanout publish: `PUBLISH /<db>.<exchange>[/<routing key>] <envelope>` (kombu's
 *   default `fanout_prefix`), e.g. `/0.celery.pidbox`, `/0.celeryev/task.started`.
 * - Fanout subscribe: `PSUBSCRIBE /<db>.<exchange>` and `/<db>.<exchange>/*` on a
 *   connection of its own (a subscribed Redis connection runs no other command).
 * - Direct replies: the requester binds `<key>\x06\x16\x06\x16<queue>` in
 *   `_kombu.binding.<exchange>` and BRPOPs its four priority lists; the replier
 *   reads the binding set and LPUSHes to the bound queue.
 */
import type { Redis } from 'ioredis';
import type { TaskMessage } from '../protocol/message.js';
import { closeRedisClient, duplicateRedisClient } from '../redis-client.js';
import { REVOKE_EXPIRES_SECONDS } from '../control/revoked-set.js';
import type { ControlChannel, ReplyQueue } from './broker.js';
import { decodeEnvelope, encodeEnvelope } from './redis-envelope.js';
import { REVOKED } from './redis-keys.js';

const SEP = '\x06\x16';
/** How long a persisted revoke holds: Celery's REVOKE_EXPIRES (3 hours). */
const REVOKE_TTL_MS = REVOKE_EXPIRES_SECONDS * 1000;
const PRIORITY_SUFFIXES = ['', `${SEP}3`, `${SEP}6`, `${SEP}9`];

/** The Redis transport's broadcast/reply channel (see the top of this file). */
export class RedisControlChannel implements ControlChannel {
  private subscriber: Redis | undefined;
  private readonly listeners = new Map<string, Set<(message: TaskMessage, routingKey: string) => void>>();
  private readonly blocking = new Set<Redis>();

  /** `redis`: the broker's command connection; `db`: the database number (the fanout prefix). */
  constructor(
    private readonly redis: Redis,
    private readonly db: number,
  ) {}

  private channel(exchange: string, routingKey = ''): string {
    return `/${this.db}.${exchange}${routingKey ? `/${routingKey}` : ''}`;
  }

  async subscribe(exchange: string, onMessage: (message: TaskMessage, routingKey: string) => void): Promise<() => Promise<void>> {
    const subscriber = this.subscriberConnection();
    let set = this.listeners.get(exchange);
    if (!set) {
      this.listeners.set(exchange, (set = new Set()));
      await subscriber.psubscribe(this.channel(exchange), `${this.channel(exchange)}/*`);
    }
    set.add(onMessage);
    return async () => {
      set.delete(onMessage);
      if (set.size === 0 && this.listeners.get(exchange) === set) {
        this.listeners.delete(exchange);
        await subscriber.punsubscribe(this.channel(exchange), `${this.channel(exchange)}/*`).catch(() => undefined);
      }
    };
  }

  private subscriberConnection(): Redis {
    if (this.subscriber) return this.subscriber;
    const subscriber = duplicateRedisClient(this.redis, { enableAutoPipelining: false });
    subscriber.on('pmessage', (_pattern: string, channel: string, raw: string) => {
      // `/0.celery.pidbox` or `/0.celeryev/task.started`: strip the prefix up to the first dot.
      const rest = channel.slice(channel.indexOf('.') + 1);
      const slash = rest.indexOf('/');
      const exchange = slash < 0 ? rest : rest.slice(0, slash);
      const routingKey = slash < 0 ? '' : rest.slice(slash + 1);
      const listeners = this.listeners.get(exchange);
      if (!listeners || listeners.size === 0) return;
      let message: TaskMessage;
      try {
        message = decodeEnvelope(raw).message;
      } catch {
        return; // not a kombu envelope: nothing a control or event consumer can use
      }
      for (const listener of listeners) listener(message, routingKey);
    });
    this.subscriber = subscriber;
    return subscriber;
  }

  async publishFanout(exchange: string, message: TaskMessage, routingKey = ''): Promise<void> {
    await this.redis.publish(this.channel(exchange, routingKey), encodeEnvelope(message, { exchange, routingKey }));
  }

  async publishDirect(exchange: string, routingKey: string, message: TaskMessage): Promise<void> {
    const members = await this.redis.smembers(`_kombu.binding.${exchange}`);
    const envelope = encodeEnvelope(message, { exchange, routingKey });
    const queues = new Set<string>();
    for (const member of members) {
      const [key, , queue] = member.split(SEP);
      if (key === routingKey && queue) queues.add(queue);
    }
    await Promise.all([...queues].map((queue) => this.redis.lpush(queue, envelope)));
  }

  async openReplyQueue(exchange: string, routingKey: string): Promise<ReplyQueue> {
    const queue = `${routingKey}.${exchange}`;
    const member = `${routingKey}${SEP}${SEP}${queue}`;
    const lists = PRIORITY_SUFFIXES.map((suffix) => queue + suffix);
    await this.redis.sadd(`_kombu.binding.${exchange}`, member);
    const blocking = duplicateRedisClient(this.redis, { enableAutoPipelining: false });
    this.blocking.add(blocking);
    let closed = false;
    return {
      next: async (timeoutMs) => {
        if (closed) return null;
        // BRPOP takes seconds (fractions allowed since Redis 6).
        const popped = await blocking.brpop(...lists, Math.max(0.01, timeoutMs / 1000)).catch(() => null);
        if (!popped) return null;
        try {
          return decodeEnvelope(popped[1]).message;
        } catch {
          return null;
        }
      },
      close: async () => {
        if (closed) return;
        closed = true;
        this.blocking.delete(blocking);
        await closeRedisClient(blocking, 200);
        await this.redis.srem(`_kombu.binding.${exchange}`, member);
        await this.redis.del(...lists);
      },
    };
  }

  /** ZADD to `_celeriac.revoked` (score: when the revoke expires), dropping expired entries. */
  async persistRevoked(ids: readonly string[], expiresAtMs: number): Promise<void> {
    if (ids.length === 0) return;
    const multi = this.redis.multi();
    multi.zremrangebyscore(REVOKED, '-inf', Date.now());
    multi.zadd(REVOKED, ...ids.flatMap((id) => [expiresAtMs, id]));
    await multi.exec();
  }

  async loadRevoked(): Promise<Map<string, number>> {
    const flat = await this.redis.zrangebyscore(REVOKED, Date.now(), '+inf', 'WITHSCORES');
    const out = new Map<string, number>();
    // Score = expiry; the revoke time is what the worker keeps (it forgets the id 3 h later).
    for (let i = 0; i < flat.length; i += 2) out.set(flat[i]!, (Number(flat[i + 1]) - REVOKE_TTL_MS) / 1000);
    return out;
  }

  async close(): Promise<void> {
    const subscriber = this.subscriber;
    this.subscriber = undefined;
    this.listeners.clear();
    await Promise.all([...this.blocking].map((c) => closeRedisClient(c, 200)));
    this.blocking.clear();
    if (subscriber) await closeRedisClient(subscriber, 500);
  }
}
