/**
 * Which Redis beat coordinates through (leader lock, last runs, dynamic entries):
 * the broker's when it is Redis, else the result backend's when that is Redis
 * (e.g. an AMQP broker with a Redis backend), else none — then last runs go to a
 * file and there is no leader election (run one beat).
 */
import type { Settings } from '../config.js';
import { resolveRedisConnection, type RedisConnectionSettings } from '../redis-connection.js';

/** The Redis beat uses, and whose connection it is (for outage reports). */
export interface BeatRedis {
  url: string;
  role: 'broker' | 'result backend';
  connection: RedisConnectionSettings;
}

const isRedis = (url: string | null | undefined): url is string => !!url && /^(rediss?|sentinel):/i.test(url);

/** The Redis beat coordinates through, or null. */
export function beatRedis(s: Settings): BeatRedis | null {
  if (isRedis(s.brokerUrl)) {
    return { url: s.brokerUrl, role: 'broker', connection: resolveRedisConnection(s.brokerUrl, (s.brokerTransportOptions.redis ?? {}) as Record<string, unknown>, s.brokerTransportOptions) };
  }
  if (isRedis(s.resultBackend)) {
    return { url: s.resultBackend, role: 'result backend', connection: resolveRedisConnection(s.resultBackend, (s.resultBackendTransportOptions.redis ?? {}) as Record<string, unknown>, s.resultBackendTransportOptions) };
  }
  return null;
}
