/**
 * Checks for command-line values, each failing with one sentence that names the
 * flag, the bad value and what to type instead (printed once as `celeriac: error: ...`).
 */
import type { LogFormat, LogLevel } from '../logger.js';

/** A bad command-line value: printed without a stack, exit status 2 (a usage error, as click does). */
export class UsageError extends Error {
  override name = 'UsageError';
}

const LEVELS: Record<string, LogLevel> = {
  debug: 'debug',
  info: 'info',
  warning: 'warning',
  warn: 'warning',
  error: 'error',
  critical: 'critical',
  fatal: 'critical',
};

/** `-l INFO`, `-l info`, `-l Warning`: Celery's level names in any case. */
export function parseLogLevel(value: string | undefined): LogLevel {
  if (value === undefined) return 'info';
  const level = LEVELS[value.toLowerCase()];
  if (!level) throw new UsageError(`-l/--loglevel ${JSON.stringify(value)} is not a log level: use DEBUG, INFO, WARNING, ERROR or CRITICAL (any case).`);
  return level;
}

/** `--log-format pretty|json|auto`. */
export function parseLogFormat(value: string | undefined): LogFormat | undefined {
  if (value === undefined) return undefined;
  const format = value.toLowerCase();
  if (format !== 'pretty' && format !== 'json' && format !== 'auto') {
    throw new UsageError(`--log-format ${JSON.stringify(value)} is not a log format: use pretty, json or auto.`);
  }
  return format;
}

/** A whole number ≥ `min`, or undefined when the flag was not given. */
export function parseWholeNumber(value: string | undefined, flag: string, min: number, what: string): number | undefined {
  if (value === undefined) return undefined;
  const n = /^\s*\d+\s*$/.test(value) ? Number(value) : NaN;
  if (!Number.isSafeInteger(n) || n < min) {
    const kind = min >= 1 ? 'a positive whole number' : 'a whole number (0 or more)';
    throw new UsageError(`${flag} must be ${kind} (${what}), got ${JSON.stringify(value)}.`);
  }
  return n;
}

/** `-Q a,b` as a list (empty entries dropped), or undefined when not given. */
export function parseList(value: string | undefined): string[] | undefined {
  return value?.split(',').map((q) => q.trim()).filter(Boolean);
}

/** A number of seconds > 0 (fractions allowed: `--time-limit 2.5`), or undefined when not given. */
export function parseSeconds(value: string | undefined, flag: string): number | undefined {
  if (value === undefined) return undefined;
  const n = /^\s*\d+(\.\d+)?\s*$/.test(value) ? Number(value) : NaN;
  if (!(n > 0) || !Number.isFinite(n)) throw new UsageError(`${flag} must be a number of seconds above 0 (e.g. 30 or 2.5), got ${JSON.stringify(value)}.`);
  return n;
}

/** `-P/--pool async|threads|processes` (Celery's `prefork` is accepted as `processes`). */
export function parsePool(value: string | undefined): 'async' | 'threads' | 'processes' | undefined {
  if (value === undefined) return undefined;
  const kind = value.toLowerCase();
  if (kind === 'prefork') return 'processes';
  if (kind === 'async' || kind === 'threads' || kind === 'processes') return kind;
  throw new UsageError(`-P/--pool ${JSON.stringify(value)} is not a pool: use async (I/O-bound tasks), threads or processes (CPU-bound tasks; Celery's prefork).`);
}

/** `--autoscale max,min` (min optional, default 0) as [max, min]. */
export function parseAutoscale(value: string | undefined): [number, number] | undefined {
  if (value === undefined) return undefined;
  const m = /^\s*(\d+)\s*(?:,\s*(\d+)\s*)?$/.exec(value);
  const max = m ? Number(m[1]) : NaN;
  const min = m?.[2] !== undefined ? Number(m[2]) : 0;
  if (!m || max < 1 || min > max) throw new UsageError(`--autoscale must be max,min with max ≥ 1 and min ≤ max (e.g. 10,3), got ${JSON.stringify(value)}.`);
  return [max, min];
}
