/**
 * A readable Python-style `repr` for `argsrepr` / `kwargsrepr` headers (display
 * only: Flower, logs, `inspect active`). Truncated to Celery's 1024 characters.
 */
const MAX_REPR = 1024;

function repr(value: unknown, depth: number): string {
  if (depth > 8) return '...';
  if (value === null || value === undefined) return 'None';
  if (value === true) return 'True';
  if (value === false) return 'False';
  if (typeof value === 'number') {
    if (Number.isNaN(value)) return 'nan';
    if (!Number.isFinite(value)) return value > 0 ? 'inf' : '-inf';
    return String(value);
  }
  if (typeof value === 'string') return `'${value.replace(/\\/g, '\\\\').replace(/'/g, "\\'").replace(/\n/g, '\\n')}'`;
  if (Array.isArray(value)) return '[' + value.map((v) => repr(v, depth + 1)).join(', ') + ']';
  if (value instanceof Date) return `'${value.toISOString()}'`;
  if (typeof value === 'object') {
    return '{' + Object.entries(value).map(([k, v]) => `${repr(k, depth + 1)}: ${repr(v, depth + 1)}`).join(', ') + '}';
  }
  return String(value);
}

function truncate(text: string): string {
  return text.length > MAX_REPR ? text.slice(0, MAX_REPR - 3) + '...' : text;
}

/** Positional arguments as a Python tuple: `(2, 2)`, `(7,)`, `()`. */
export function argsRepr(args: readonly unknown[]): string {
  const inner = args.map((a) => repr(a, 0)).join(', ');
  return truncate(args.length === 1 ? `(${inner},)` : `(${inner})`);
}

/** Keyword arguments as a Python dict: `{'y': 2}`. */
export function kwargsRepr(kwargs: Record<string, unknown>): string {
  return truncate(repr(kwargs, 0));
}

/** Any value, for logs and events (`result` of `task-succeeded`). */
export function pyRepr(value: unknown): string {
  return truncate(repr(value, 0));
}
