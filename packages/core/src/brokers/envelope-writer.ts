/**
 * Writes kombu's Redis envelope (see redis-envelope.ts) reusing, from one message to
 * the next, the text of every member that did not change: for the messages of one
 * task most headers (`lang`, `task`, `shadow`, `eta`, `retries`, `timelimit`,
 * `origin`...) and properties are the same, and only `id`, `root_id`, `argsrepr`,
 * `correlation_id`, the body and the delivery tag are written anew.
 *
 * Only primitive values (compared with `Object.is`, so `0` and `-0` differ) and
 * arrays of primitives (compared element by element against a copy) are reused;
 * any other value is written every time. The output is byte for byte what
 * `dumpsPython` writes for the whole envelope document.
 */
import { randomUUID } from 'node:crypto';
import type { MessageProperties, TaskMessage } from '../protocol/message.js';
import { dumpsPythonAt, isPlainDumpsObject, quotePython } from '../protocol/python-json.js';

/** Stands for "not reusable" in a member cache (never `Object.is` to a real value). */
const NOT_REUSABLE: unique symbol = Symbol('not reusable');

type Snapshot = string | number | boolean | bigint | null | readonly (string | number | boolean | bigint | null)[] | typeof NOT_REUSABLE;

function isPrimitive(v: unknown): v is string | number | boolean | bigint | null {
  return v === null || typeof v === 'string' || typeof v === 'number' || typeof v === 'boolean' || typeof v === 'bigint';
}

/** What to remember of a value to know next time that it is the same. */
function snapshot(v: unknown): Snapshot {
  if (isPrimitive(v)) return v;
  if (Array.isArray(v) && v.length <= 16 && Object.getPrototypeOf(v) === Array.prototype) {
    for (let i = 0; i < v.length; i++) if (!isPrimitive(v[i])) return NOT_REUSABLE;
    return v.slice() as Snapshot;
  }
  return NOT_REUSABLE;
}

function same(last: Snapshot, v: unknown): boolean {
  if (last === NOT_REUSABLE) return false;
  if (!Array.isArray(last)) return Object.is(last, v);
  if (!Array.isArray(v) || v.length !== last.length || Object.getPrototypeOf(v) !== Array.prototype) return false;
  // A snapshot never holds undefined, so a hole (written as null) never matches.
  for (let i = 0; i < v.length; i++) if (!Object.is(last[i], v[i])) return false;
  return true;
}

/** The members of one plain object (`"key": value` texts), as last written. */
class MemberCache {
  private readonly keys: string[] = [];
  private readonly values: Snapshot[] = [];
  private readonly texts: string[] = [];

  /**
   * The object's members joined by `, ` (no braces), skipping `skip` keys and the
   * values `dumpsPython` leaves out; `at` is the object's path, for errors.
   */
  write(object: Record<string, unknown>, at: string, skip?: ReadonlySet<string>): string {
    const { keys, values, texts } = this;
    let n = 0;
    for (const key in object) {
      if (!Object.prototype.hasOwnProperty.call(object, key) || skip?.has(key)) continue;
      const v = object[key];
      if (v === undefined || typeof v === 'function' || typeof v === 'symbol') continue;
      if (n < texts.length && keys[n] === key && same(values[n]!, v)) {
        n++;
        continue;
      }
      keys[n] = key;
      values[n] = snapshot(v);
      texts[n] = quotePython(key) + ': ' + (typeof v === 'string' ? quotePython(v) : dumpsPythonAt(v, `${at}.${key}`));
      n++;
    }
    if (texts.length !== n) {
      keys.length = n;
      values.length = n;
      texts.length = n;
    }
    return texts.join(', ');
  }
}

/** What the Redis transport writes for a route: `delivery_info` and `priority`. */
export interface EnvelopeRoute {
  exchange: string;
  routingKey: string;
  priority: number;
}

/**
 * An envelope writer; keep one per producer (or per batch) so that it can reuse
 * what the previous message had. Not re-entrant: `encode` must return before it is
 * called again (a header's `toJSON` cannot publish).
 */
export class EnvelopeWriter {
  private readonly headers = new MemberCache();
  private readonly properties = new MemberCache();
  private contentKey: [string, string] | null = null;
  private contentText = '';
  private routeKey: EnvelopeRoute | null = null;
  private routeText = '';
  private busy = false;

  /** Whether `encode` can write this message (else the caller uses `dumpsPython` of the whole document). */
  static fits(message: TaskMessage, route: EnvelopeRoute): boolean {
    return (
      typeof message.contentEncoding === 'string' &&
      typeof message.contentType === 'string' &&
      typeof route.exchange === 'string' &&
      typeof route.routingKey === 'string' &&
      isPlainDumpsObject(message.headers) &&
      isPlainDumpsObject(message.properties)
    );
  }

  /** Whether it is free (not inside `encode`). */
  get idle(): boolean {
    return !this.busy;
  }

  /**
   * The envelope of a message that `fits`, minus the transport properties of
   * `message.properties` (`transportKeys`), which the transport writes itself.
   */
  encode(message: TaskMessage, route: EnvelopeRoute, transportKeys: ReadonlySet<string>, deliveryTag: string = randomUUID()): string {
    this.busy = true;
    try {
      const headers = this.headers.write(message.headers as Record<string, unknown>, '.headers');
      const own = this.properties.write(message.properties as MessageProperties & Record<string, unknown>, '.properties', transportKeys);
      return (
        '{"body": "' +
        message.body.toString('base64') +
        this.content(message.contentEncoding, message.contentType) +
        '{' +
        headers +
        '}, "properties": {' +
        (own === '' ? '' : own + ', ') +
        this.route(route) +
        quotePython(deliveryTag) +
        '}}'
      );
    } finally {
      this.busy = false;
    }
  }

  /** `", "content-encoding": ..., "content-type": ..., "headers": ` */
  private content(encoding: string, type: string): string {
    const last = this.contentKey;
    if (last === null || last[0] !== encoding || last[1] !== type) {
      this.contentKey = [encoding, type];
      this.contentText = `", "content-encoding": ${quotePython(encoding)}, "content-type": ${quotePython(type)}, "headers": `;
    }
    return this.contentText;
  }

  /** `"delivery_info": {...}, "priority": p, "body_encoding": "base64", "delivery_tag": ` */
  private route(route: EnvelopeRoute): string {
    const last = this.routeKey;
    if (last === null || last.exchange !== route.exchange || last.routingKey !== route.routingKey || !Object.is(last.priority, route.priority)) {
      this.routeKey = { exchange: route.exchange, routingKey: route.routingKey, priority: route.priority };
      this.routeText =
        `"delivery_info": {"exchange": ${quotePython(route.exchange)}, "routing_key": ${quotePython(route.routingKey)}}, ` +
        `"priority": ${dumpsPythonAt(route.priority, '.properties.priority')}, "body_encoding": "base64", "delivery_tag": `;
    }
    return this.routeText;
  }
}
