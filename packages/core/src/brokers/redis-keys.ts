/** Redis key names: kombu's, and the few Celeriac adds (see the top of redis.ts). */

/** kombu: hash delivery tag → `[envelope, exchange, routing key]`. */
export const UNACKED = 'unacked';
/** kombu: zset delivery tag → unix seconds of delivery (refreshed by live Celeriac consumers). */
export const UNACKED_INDEX = 'unacked_index';
/** kombu: lock of the visibility-timeout restore. */
export const UNACKED_MUTEX = 'unacked_mutex';
/** Celeriac: zset consumer id → unix ms until which it is alive. */
export const CONSUMERS = '_celeriac.consumers';
/** Celeriac: zset `<lease>\x06\x16<unacked entry>` → due unix ms on the Redis clock (messages parked until their ETA). */
export const DEFERRED = '_celeriac.eta';

/** Celeriac: hash delivery tag → times the message was restored after its holder died or stalled. */
export const REDELIVERIES = '_celeriac.redeliveries';

/**
 * Celeriac: zset delivery tag → when its redelivery count last changed (Redis ms). Upkeep
 * deletes counts older than a day whose message nobody holds (a Python worker acked it, or
 * it has waited that long in a queue): kombu's ack does not know the count.
 */
export const REDELIVERIES_AT = '_celeriac.redeliveries.at';

/**
 * Celeriac: set of `<lease>\x06\x16<tag>`, the reservations a consumer holds unacked.
 * Settling removes the member and acts only if it was there: once a dead or stalled
 * consumer's set is deleted (its messages restored), its late settles are no-ops.
 */
export function ownedKey(consumerId: string): string {
  return `_celeriac.owned.${consumerId}`;
}


/** Celeriac: zset revoked task id → unix ms until which the revoke holds (remote control `revoke`). */
export const REVOKED = '_celeriac.revoked';
