/**
 * kombu's exchange emulation on Redis (kombu 5.2: transport/redis.py and
 * transport/virtual/exchange.py), so a Python producer or worker sees the routing
 * Celeriac sets up and the other way round:
 *
 * - bindings: `_kombu.binding.<exchange>` sets of `<routing key>\x06\x16<pattern>\x06\x16<queue>`;
 *   the pattern is empty except on topic exchanges, where it is kombu's regex for the
 *   binding key (`usa.#` → `^usa\..*?$`);
 * - direct: the queues whose binding key equals the routing key;
 * - topic: the queues whose pattern matches the routing key (kombu's `re.match`);
 * - fanout: `PUBLISH` on `/<db>.<exchange>/<routing key>` (`fanout_prefix` and
 *   `fanout_patterns` on, their defaults since kombu 4 and in Celery 5.2); a consumer
 *   of a fanout-bound queue `PSUBSCRIBE`s `/<db>.<exchange>/<binding key, # → *>`.
 */
import type { ExchangeType } from '../config.js';
import type { QueueDeclaration } from './queue-topology.js';

/** kombu's separator inside binding members and priority list names. */
export const SEP = '\x06\x16';

/** kombu's `keyprefix_queue`: the set of bindings of `exchange`. */
export function bindingSetKey(exchange: string): string {
  return `_kombu.binding.${exchange}`;
}

/** One member of a binding set, as kombu's `_queue_bind` writes it. */
export function bindingMember(routingKey: string, pattern: string, queue: string): string {
  return [routingKey, pattern, queue].join(SEP);
}

/** Python's `str.isalnum` for one character (Unicode letters and numbers). */
const ALNUM = /^[\p{L}\p{N}]$/u;

/**
 * kombu's `TopicExchange.key_to_pattern`: escape everything but letters, digits and
 * `.#*` (`escape_regex`), then per dot-separated word `*` → `.*?[^\.]`, `#` → `.*?`.
 */
export function topicPattern(bindingKey: string): string {
  const escaped = [...bindingKey].map((c) => (ALNUM.test(c) || '.#*'.includes(c) ? c : c === '\0' ? '\\000' : `\\${c}`)).join('');
  const words = escaped.split('.').map((w) => (w === '*' ? '.*?[^\\.]' : w === '#' ? '.*?' : w));
  return `^${words.join('\\.')}$`;
}

const compiled = new Map<string, RegExp | null>();

/** kombu's topic match: `re.match(pattern, routing_key)`; a pattern JavaScript cannot read matches nothing. */
export function topicMatches(pattern: string, routingKey: string): boolean {
  let re = compiled.get(pattern);
  if (re === undefined) {
    try {
      re = new RegExp(pattern, 'y');
    } catch {
      re = null;
    }
    if (compiled.size > 10_000) compiled.clear();
    compiled.set(pattern, re);
  }
  if (!re) return false;
  re.lastIndex = 0;
  return re.test(routingKey);
}

/** A parsed binding member. */
export interface BindingRow {
  routingKey: string;
  pattern: string;
  queue: string;
}

export function parseBindingMember(member: string): BindingRow | null {
  const parts = member.split(SEP);
  if (parts.length !== 3 || !parts[2]) return null;
  return { routingKey: parts[0]!, pattern: parts[1]!, queue: parts[2] };
}

/** kombu's `lookup` of an exchange type: the queues a message with `routingKey` goes to. */
export function lookupQueues(type: ExchangeType, rows: readonly BindingRow[], routingKey: string): string[] {
  const out = new Set<string>();
  for (const row of rows) {
    if (type === 'fanout' || (type === 'direct' && row.routingKey === routingKey) || (type === 'topic' && topicMatches(row.pattern, routingKey))) out.add(row.queue);
  }
  return [...out];
}

/** The SADDs that declare `decl`'s bindings: [set key, member][]. */
export function bindingWrites(decl: QueueDeclaration): [string, string][] {
  return decl.bindings.map((b) => [bindingSetKey(b.exchange), bindingMember(b.routingKey, b.exchangeType === 'topic' ? topicPattern(b.routingKey) : '', decl.name)]);
}

/** kombu's `_get_publish_topic`: the channel a fanout message is published on. */
export function fanoutChannel(db: number, exchange: string, routingKey: string): string {
  return routingKey ? `/${db}.${exchange}/${routingKey}` : `/${db}.${exchange}`;
}

/** kombu's `_get_subscribe_topic`: the pattern a consumer of a fanout-bound queue subscribes to. */
export function fanoutSubscription(db: number, exchange: string, bindingKey: string): string {
  return fanoutChannel(db, exchange, bindingKey.replaceAll('#', '*'));
}
