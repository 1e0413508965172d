/**
 * JSON exactly as Python's `json.dumps` (kombu 5.2's default) writes it:
 * `", "` and `": "` separators, ASCII only with `\uXXXX` escapes, and dates as
 * kombu's encoder writes them. Reading accepts what Python may emit beyond strict
 * JSON: `NaN`, `Infinity`, `-Infinity`, and integers beyond 2^53 (as `BigInt`).
 *
 * What matches Python byte for byte, and what cannot:
 * - Numbers: a safe integer (|n| < 2^53) is written as a Python `int` (`2`); any
 *   other number as Python's `float.__repr__`: `0.5`, `1e-05`, `1e+16`, `-0.0`,
 *   `9007199254740994.0`, `1.2345678901234568e+17`. JavaScript has one number
 *   type, so a Python float with an integral value below 2^53 (`2.0`) arrives as
 *   `2` and is written back as `2`: that difference cannot be seen from JS. Send
 *   `BigInt` for integers beyond 2^53.
 * - Key order: Python keeps insertion order; a JS object lists integer-like keys
 *   (`"0"`, `"12"`) first, in numeric order. `loadsPython` remembers the original
 *   order of an object that has such keys, and `dumpsPython` writes that order back
 *   as long as the object keeps exactly the same keys — so a received
 *   `{"b": 1, "2": 2}` is forwarded unchanged. Objects built in JS are written in
 *   JS enumeration order.
 * - Dates: kombu's encoder writes aware datetimes as isoformat with `Z`; like
 *   Python, microseconds are omitted when zero (`2024-05-06T07:08:09Z`).
 */

const ESCAPES: Record<string, string> = {
  '"': '\\"',
  '\\': '\\\\',
  '\b': '\\b',
  '\f': '\\f',
  '\n': '\\n',
  '\r': '\\r',
  '\t': '\\t',
};

// eslint-disable-next-line no-control-regex
const NEEDS_ESCAPE = /["\\\u0000-\u001f\u007f-\uffff]/;

function quote(text: string): string {
  if (!NEEDS_ESCAPE.test(text)) return `"${text}"`;
  let out = '"';
  for (let i = 0; i < text.length; i++) {
    const ch = text[i]!;
    const code = text.charCodeAt(i);
    const esc = ESCAPES[ch];
    if (esc !== undefined) out += esc;
    else if (code < 0x20 || code > 0x7e) out += '\\u' + code.toString(16).padStart(4, '0');
    else out += ch;
  }
  return out + '"';
}

function number(value: number): string {
  // Fast paths: a safe integer is a Python int; a non-integer in [1e-4, 1e16) prints the same in both languages.
  if (Number.isSafeInteger(value)) return value === 0 && 1 / value < 0 ? '-0.0' : String(value);
  const magnitude = value < 0 ? -value : value;
  if (magnitude >= 1e-4 && magnitude < 1e16 && !Number.isInteger(value)) return String(value);
  if (value !== value) return 'NaN';
  if (magnitude === Infinity) return value > 0 ? 'Infinity' : '-Infinity';
  return pythonFloatRepr(value);
}

/**
 * Python's `repr(float)` for what `number` does not write directly: the shortest
 * round-tripping digits (the same digits JS picks), in fixed notation when the
 * decimal exponent is in (-4, 16], otherwise `d.ddde±XX` with at least two exponent
 * digits; integral values get `.0`.
 */
function pythonFloatRepr(value: number): string {
  const magnitude = value < 0 ? -value : value;
  if (magnitude < 1e-6 || magnitude >= 1e21) {
    // JS already writes these with an exponent; Python pads it to two digits (1e-07).
    const js = String(value);
    const sign = js.length - 2;
    return js.charCodeAt(sign) === 43 || js.charCodeAt(sign) === 45 ? js.slice(0, sign + 1) + '0' + js.slice(sign + 1) : js;
  }
  if (magnitude < 1e16 && magnitude >= 1e-4) return String(value) + '.0'; // integral, beyond 2^53
  // Left: [1e-6, 1e-4) and [1e16, 1e21), which JS writes in full and Python with an exponent.
  // String() gives the same shortest digits; only the layout changes.
  const js = String(magnitude);
  let digits: string;
  let exponent: number;
  if (magnitude < 1) {
    let zeros = 0; // "0.0000123": zeros after the point
    while (js.charCodeAt(2 + zeros) === 48) zeros++;
    digits = js.slice(2 + zeros);
    exponent = -(zeros + 1);
  } else {
    let end = js.length; // "12345678901234567000": drop trailing zeros
    while (end > 1 && js.charCodeAt(end - 1) === 48) end--;
    digits = js.slice(0, end);
    exponent = js.length - 1;
  }
  const abs = exponent < 0 ? -exponent : exponent;
  const out = digits[0] + (digits.length > 1 ? '.' + digits.slice(1) : '') + (exponent < 0 ? 'e-' : 'e+') + (abs < 10 ? '0' : '') + abs;
  return value < 0 ? '-' + out : out;
}

/** kombu writes aware datetimes as isoformat with `Z`: microseconds, omitted when zero. */
function date(value: Date): string {
  const iso = value.toISOString();
  if (value.getUTCMilliseconds() === 0) return quote(iso.slice(0, -5) + 'Z');
  return quote(iso.slice(0, -1) + '000Z');
}

/**
 * Serialize like Python's `json.dumps(value)`. Throws a TypeError naming the path
 * of a value JSON cannot carry (functions, symbols, BigInt beyond precision...).
 */
export function dumpsPython(value: unknown): string {
  return dumpsPythonAt(value, '');
}

/**
 * `dumpsPython` of a value that is one member of a larger document written piece by
 * piece (the kombu envelope): `at` (e.g. `.headers`) prefixes the path in the error.
 */
export function dumpsPythonAt(value: unknown, at: string): string {
  try {
    return write(value);
  } catch (err) {
    if (err instanceof UnencodableValue) throw new TypeError(`Cannot JSON-encode ${err.what} at $${at}${err.path.join('')}${err.hint}`);
    throw err;
  }
}

/**
 * Whether `dumpsPython` writes `value` as a plain object: its own enumerable members
 * in JS order (no `toJSON`, no remembered wire key order, not a Map/array/Date...).
 * Callers writing such an object member by member then write the same bytes.
 */
export function isPlainDumpsObject(value: unknown): value is Record<string, unknown> {
  if (typeof value !== 'object' || value === null) return false;
  const proto = Object.getPrototypeOf(value) as unknown;
  if (proto !== Object.prototype && proto !== null) return false;
  return typeof (value as { toJSON?: unknown }).toJSON !== 'function' && (value as { [KEY_ORDER]?: unknown })[KEY_ORDER] === undefined;
}

/** `quote` for callers writing a document piece by piece: a JSON string as Python's `json.dumps` writes it. */
export function quotePython(text: string): string {
  return quote(text);
}

/** Raised deep inside `write`; each container on the way out adds its key, so paths cost nothing on success. */
class UnencodableValue extends Error {
  readonly path: string[] = [];
  constructor(
    readonly what: string,
    readonly hint: string,
  ) {
    super(what);
  }
}

function write(value: unknown): string {
  switch (typeof value) {
    case 'string':
      return quote(value);
    case 'number':
      return number(value);
    case 'boolean':
      return value ? 'true' : 'false';
    case 'bigint':
      return value.toString();
    case 'undefined':
      return 'null';
    case 'object': {
      if (value === null) return 'null';
      if (Array.isArray(value)) {
        let out = '[';
        for (let i = 0; i < value.length; i++) {
          if (i > 0) out += ', ';
          out += member(value[i], i);
        }
        return out + ']';
      }
      if (value instanceof Date) return date(value);
      const withToJson = value as { toJSON?: () => unknown };
      if (typeof withToJson.toJSON === 'function') return write(withToJson.toJSON());
      if (value instanceof Map) return write(Object.fromEntries(value));
      if (value instanceof Set || ArrayBuffer.isView(value)) {
        throw new UnencodableValue(value.constructor.name, ': convert it to an array first, or use the msgpack serializer for binary data.');
      }
      const order = (value as { [KEY_ORDER]?: readonly string[] })[KEY_ORDER];
      if (order !== undefined) return writeInOrder(value as Record<string, unknown>, order);
      let out = '{';
      let first = true;
      for (const key in value) {
        if (!Object.prototype.hasOwnProperty.call(value, key)) continue;
        const v = (value as Record<string, unknown>)[key];
        if (v === undefined || typeof v === 'function' || typeof v === 'symbol') continue;
        out += (first ? '' : ', ') + quote(key) + ': ' + member(v, key);
        first = false;
      }
      return out + '}';
    }
    default:
      throw new UnencodableValue(`a ${typeof value}`, '.');
  }
}

/**
 * Write an object parsed by `loadsPython` in the key order it had on the wire, when it
 * still has exactly those keys (else in JS order: it was changed after parsing).
 */
function writeInOrder(value: Record<string, unknown>, order: readonly string[]): string {
  const keys = Object.keys(value);
  const same = keys.length === order.length && order.every((k) => Object.prototype.hasOwnProperty.call(value, k));
  let out = '{';
  let first = true;
  for (const key of same ? order : keys) {
    const v = value[key];
    if (v === undefined || typeof v === 'function' || typeof v === 'symbol') continue;
    out += (first ? '' : ', ') + quote(key) + ': ' + member(v, key);
    first = false;
  }
  return out + '}';
}

/**
 * One array element (`at` a number) or object member (`at` its key). Strings,
 * numbers and null, most members, are written directly; the path segment of an
 * error is only built when one is thrown.
 */
function member(value: unknown, at: number | string): string {
  if (typeof value === 'string') return quote(value);
  if (typeof value === 'number') return number(value);
  if (value === null) return 'null';
  try {
    return write(value);
  } catch (err) {
    if (err instanceof UnencodableValue) err.path.unshift(typeof at === 'number' ? `[${at}]` : `.${at}`);
    throw err;
  }
}

const NON_STRICT_TOKEN = /(?:-?Infinity|NaN)/;
/**
 * One scan for what needs the tolerant parser beyond NaN/Infinity: an integer of 16+
 * digits (may exceed 2^53), or an object key JS would move to the front (an array
 * index such as `"0"`, `"42"`) whose wire order must be remembered.
 */
const NEEDS_TOLERANT = /\d{16}|"(?:0|[1-9]\d{0,9})"\s*:/;
/** Array-index keys (what JS enumerates first, in numeric order). */
const ARRAY_INDEX = /^(?:0|[1-9]\d{0,9})$/;

/** Non-enumerable record of an object's key order on the wire (see `dumpsPython`). */
const KEY_ORDER: unique symbol = Symbol('celeriac.pythonKeyOrder');

/**
 * Parse JSON that Python may have written. Strict JSON goes through `JSON.parse`;
 * a tolerant pass is used only when the text has `NaN`/`Infinity` tokens (which
 * JSON.parse rejects), integers beyond 2^53, which come back as `BigInt` instead
 * of silently losing precision (and are written back exactly by `dumpsPython`), or
 * integer-like object keys, whose wire order is remembered for `dumpsPython`.
 * Objects are plain objects built as `JSON.parse` builds them: a `"__proto__"` key
 * is an ordinary own property, never the prototype.
 */
export function loadsPython(text: string): unknown {
  return loadsPythonScanningFrom(text, 0);
}

/** `NEEDS_TOLERANT`, searched from `lastIndex`. */
const NEEDS_TOLERANT_FROM = new RegExp(NEEDS_TOLERANT.source, 'g');

/**
 * `loadsPython` for text whose first `from` characters are known to need no
 * tolerant parsing (the caller checked they are an object's opening and one JSON
 * string: a string's contents never do). The kombu envelope's base64 body is most
 * of its bytes; this parses it without scanning them.
 */
export function loadsPythonScanningFrom(text: string, from: number): unknown {
  NEEDS_TOLERANT_FROM.lastIndex = from;
  const tolerant = NEEDS_TOLERANT_FROM.test(text);
  NEEDS_TOLERANT_FROM.lastIndex = 0;
  if (tolerant) return parseTolerant(text);
  try {
    return JSON.parse(text);
  } catch (err) {
    if (!NON_STRICT_TOKEN.test(text)) throw err;
    return parseTolerant(text);
  }
}

/** A small recursive-descent parser accepting NaN / Infinity / -Infinity and big integers. */
function parseTolerant(text: string): unknown {
  let i = 0;
  const fail = (what: string): never => {
    throw new SyntaxError(`Invalid JSON at position ${i}: ${what}`);
  };
  const ws = () => {
    while (i < text.length && ' \t\n\r'.includes(text[i]!)) i++;
  };
  const literal = (word: string, val: unknown) => {
    if (text.startsWith(word, i)) {
      i += word.length;
      return val;
    }
    return fail(`expected ${word}`);
  };
  const value = (): unknown => {
    ws();
    const ch = text[i];
    if (ch === '{') {
      i++;
      const obj: Record<string, unknown> = {};
      const keys: string[] = [];
      ws();
      if (text[i] === '}') return i++, obj;
      for (;;) {
        ws();
        const key = value();
        if (typeof key !== 'string') fail('object key must be a string');
        keys.push(key as string);
        ws();
        if (text[i++] !== ':') fail('expected :');
        const item = value();
        // Plain assignment of "__proto__" would replace the prototype (what JSON.parse never does).
        if (key === '__proto__') Object.defineProperty(obj, key, { value: item, writable: true, enumerable: true, configurable: true });
        else obj[key as string] = item;
        ws();
        const sep = text[i++];
        if (sep === '}') return rememberKeyOrder(obj, keys);
        if (sep !== ',') fail('expected , or }');
      }
    }
    if (ch === '[') {
      i++;
      const arr: unknown[] = [];
      ws();
      if (text[i] === ']') return i++, arr;
      for (;;) {
        arr.push(value());
        ws();
        const sep = text[i++];
        if (sep === ']') return arr;
        if (sep !== ',') fail('expected , or ]');
      }
    }
    if (ch === '"') {
      const start = i;
      i++;
      while (i < text.length && text[i] !== '"') i += text[i] === '\\' ? 2 : 1;
      i++;
      return JSON.parse(text.slice(start, i));
    }
    if (ch === 'N') return literal('NaN', NaN);
    if (ch === 'I') return literal('Infinity', Infinity);
    if (ch === '-' && text[i + 1] === 'I') return literal('-Infinity', -Infinity);
    if (ch === 't') return literal('true', true);
    if (ch === 'f') return literal('false', false);
    if (ch === 'n') return literal('null', null);
    const m = /^-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?/.exec(text.slice(i, i + 400));
    if (!m) return fail('unexpected character');
    i += m[0].length;
    const n = Number(m[0]);
    return Number.isInteger(n) && !Number.isSafeInteger(n) && /^-?\d+$/.test(m[0]) ? BigInt(m[0]) : n;
  };
  const out = value();
  ws();
  if (i !== text.length) fail('trailing characters');
  return out;
}

/** Attach the wire key order when JS enumerates the keys differently (integer-like keys). */
function rememberKeyOrder(obj: Record<string, unknown>, keys: string[]): Record<string, unknown> {
  if (!keys.some((k) => ARRAY_INDEX.test(k))) return obj;
  const unique = keys.length === new Set(keys).size ? keys : [...new Set(keys)];
  const enumerated = Object.keys(obj);
  if (enumerated.every((k, i) => k === unique[i])) return obj;
  Object.defineProperty(obj, KEY_ORDER, { value: unique, enumerable: false });
  return obj;
}
