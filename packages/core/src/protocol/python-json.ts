/**
 * JSON exactly as Python's `json.dumps` (kombu 5.2's default) writes it:
 * `", "` and `": "` separators, ASCII only with `\uXXXX` escapes, and dates as
 * kombu's encoder writes them. Reading accepts what Python may emit beyond strict
 * JSON: `NaN`, `Infinity`, `-Infinity`.
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
  if (Number.isNaN(value)) return 'NaN';
  if (value === Infinity) return 'Infinity';
  if (value === -Infinity) return '-Infinity';
  return JSON.stringify(value);
}

/** kombu writes aware datetimes as ISO with `Z` (microsecond precision). */
function date(value: Date): string {
  return quote(value.toISOString().replace(/\.(\d{3})Z$/, '.$1000Z'));
}

/**
 * Serialize like Python's `json.dumps(value)`. Throws a TypeError naming the path
 * of a value JSON cannot carry (functions, symbols, BigInt beyond precision...).
 */
export function dumpsPython(value: unknown): string {
  try {
    return write(value);
  } catch (err) {
    if (err instanceof UnencodableValue) throw new TypeError(`Cannot JSON-encode ${err.what} at $${err.path.join('')}${err.hint}`);
    throw err;
  }
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
          out += child(value[i], `[${i}]`);
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
      let out = '{';
      let first = true;
      for (const key in value) {
        if (!Object.prototype.hasOwnProperty.call(value, key)) continue;
        const v = (value as Record<string, unknown>)[key];
        if (v === undefined || typeof v === 'function' || typeof v === 'symbol') continue;
        out += (first ? '' : ', ') + quote(key) + ': ' + child(v, `.${key}`);
        first = false;
      }
      return out + '}';
    }
    default:
      throw new UnencodableValue(`a ${typeof value}`, '.');
  }
}

function child(value: unknown, segment: string): string {
  try {
    return write(value);
  } catch (err) {
    if (err instanceof UnencodableValue) err.path.unshift(segment);
    throw err;
  }
}

const NON_STRICT_TOKEN = /(?:-?Infinity|NaN)/;
const LONG_INTEGER = /\d{16,}/;

/**
 * Parse JSON that Python may have written. Strict JSON goes through `JSON.parse`;
 * a tolerant pass is used only when the text has `NaN`/`Infinity` tokens (which
 * JSON.parse rejects) or integers beyond 2^53, which come back as `BigInt` instead
 * of silently losing precision (and are written back exactly by `dumpsPython`).
 */
export function loadsPython(text: string): unknown {
  if (LONG_INTEGER.test(text)) return parseTolerant(text);
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
      ws();
      if (text[i] === '}') return i++, obj;
      for (;;) {
        ws();
        const key = value();
        if (typeof key !== 'string') fail('object key must be a string');
        ws();
        if (text[i++] !== ':') fail('expected :');
        obj[key as string] = value();
        ws();
        const sep = text[i++];
        if (sep === '}') return obj;
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
