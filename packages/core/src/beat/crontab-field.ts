/**
 * One crontab field expanded the way Celery 5.2's `crontab_parser` does it:
 * `*`, `n`, `a-b` (wrapping past the maximum when `a > b`: hour `22-2` is
 * 22, 23, 0, 1, 2), `*\/s`, `a-b/s` (the step walks the expanded range, wrap
 * included), comma lists of these, and weekday names in `dayOfWeek` (any word
 * whose first three letters name a day, case-insensitive; 0 = Sunday).
 *
 * Written here rather than taken from a cron library: cron libraries (cron-parser,
 * croner) follow Vixie cron — day-of-month OR day-of-week, `7` = Sunday, month
 * names, no wrapping ranges — and Celery differs on every one of those.
 *
 * Stricter than Celery where Celery silently accepts a mistake: a weekday name
 * outside `dayOfWeek`, and trailing text after a range (`1-5-7`), are refused.
 */

/** A crontab field name (camelCase). */
export type CrontabFieldName = 'minute' | 'hour' | 'dayOfWeek' | 'dayOfMonth' | 'monthOfYear';

/** The five fields, with their bounds (inclusive) as Celery has them. */
export const CRONTAB_FIELDS: Readonly<Record<CrontabFieldName, { min: number; max: number; example: string }>> = {
  minute: { min: 0, max: 59, example: "'*/15' or '0,30'" },
  hour: { min: 0, max: 23, example: "'9-17' or '*/3'" },
  dayOfWeek: { min: 0, max: 6, example: "'mon-fri', '0' (Sunday) or 'sat,sun'" },
  dayOfMonth: { min: 1, max: 31, example: "'1,15' or '1-7'" },
  monthOfYear: { min: 1, max: 12, example: "'*/3' or '1,7' (numbers only, as in Celery)" },
};

/** A field value: Celery's text syntax, one number, or a list of numbers. */
export type CrontabFieldValue = string | number | readonly number[];

/** A crontab field that Celery's syntax does not allow; `reason` says what is wrong. */
export class CrontabFieldError extends Error {
  override name = 'CrontabFieldError';
  constructor(
    readonly field: CrontabFieldName,
    readonly text: string,
    readonly reason: string,
  ) {
    super(`crontab ${field} ${JSON.stringify(text)}: ${reason}. Write it as e.g. ${CRONTAB_FIELDS[field].example}.`);
  }
}

const WEEKDAYS: Record<string, number> = { sun: 0, mon: 1, tue: 2, wed: 3, thu: 4, fri: 5, sat: 6 };

/** Expand one field to its sorted values; throws `CrontabFieldError`. */
export function expandCrontabField(field: CrontabFieldName, value: CrontabFieldValue): number[] {
  const { min, max } = CRONTAB_FIELDS[field];
  if (typeof value === 'number' || Array.isArray(value)) {
    const values = typeof value === 'number' ? [value] : (value as readonly number[]);
    if (values.length === 0) throw new CrontabFieldError(field, '[]', 'an empty list matches nothing');
    for (const n of values) checkBounds(field, String(value), n, min, max);
    return [...new Set(values)].sort((a, b) => a - b);
  }
  if (typeof value !== 'string') throw new CrontabFieldError(field, String(value), `must be a string, a number or a list of numbers, not ${typeof value}`);
  const text = value.trim();
  const out = new Set<number>();
  for (const part of text.split(',')) {
    for (const n of expandPart(field, text, part.trim(), min, max)) out.add(n);
  }
  return [...out].sort((a, b) => a - b);
}

function expandPart(field: CrontabFieldName, text: string, part: string, min: number, max: number): number[] {
  if (part === '') throw new CrontabFieldError(field, text, 'empty part (two commas in a row, or nothing at all)');
  const slash = part.indexOf('/');
  const base = slash === -1 ? part : part.slice(0, slash);
  let values: number[];
  if (base === '*') values = range(min, max);
  else {
    const dash = base.indexOf('-', 1);
    if (base.startsWith('-')) throw new CrontabFieldError(field, text, 'negative numbers are not supported');
    if (dash === -1) {
      if (slash !== -1) throw new CrontabFieldError(field, text, `a step needs a range or '*' before it ('${base}/…' is not one)`);
      return [toNumber(field, text, base, min, max)];
    }
    const from = toNumber(field, text, base.slice(0, dash), min, max);
    const to = toNumber(field, text, base.slice(dash + 1), min, max);
    // Celery wraps a backwards range around the maximum: 22-2 → 22..23, 0..2.
    values = to < from ? [...range(from, max), ...range(min, to)] : range(from, to);
  }
  if (slash === -1) return values;
  const stepText = part.slice(slash + 1);
  if (stepText === '') throw new CrontabFieldError(field, text, "empty step after '/'");
  if (!/^\d+$/.test(stepText)) throw new CrontabFieldError(field, text, `step ${JSON.stringify(stepText)} is not a whole number`);
  const step = Number(stepText);
  if (step === 0) throw new CrontabFieldError(field, text, 'a step of 0 never advances (use a step of 1 or more)');
  return values.filter((_, i) => i % step === 0);
}

function toNumber(field: CrontabFieldName, text: string, token: string, min: number, max: number): number {
  let n: number;
  if (/^\d+$/.test(token)) n = Number(token);
  else if (/^[a-z]+$/i.test(token)) {
    const day = WEEKDAYS[token.slice(0, 3).toLowerCase()];
    if (field !== 'dayOfWeek') {
      const hint = field === 'monthOfYear' ? ' (Celery takes month numbers only: 1 = January)' : '';
      throw new CrontabFieldError(field, text, `${JSON.stringify(token)} is not a number${hint}`);
    }
    if (day === undefined) throw new CrontabFieldError(field, text, `${JSON.stringify(token)} is not a weekday (sun, mon, tue, wed, thu, fri, sat, or a word starting with one)`);
    n = day;
  } else throw new CrontabFieldError(field, text, `${JSON.stringify(token)} is not a number${field === 'dayOfWeek' ? ' or a weekday name' : ''}`);
  checkBounds(field, text, n, min, max);
  return n;
}

function checkBounds(field: CrontabFieldName, text: string, n: number, min: number, max: number): void {
  if (!Number.isInteger(n)) throw new CrontabFieldError(field, text, `${n} is not a whole number`);
  const sunday = field === 'dayOfWeek' && n === 7 ? " (Sunday is 0, as in Celery)" : '';
  if (n > max) throw new CrontabFieldError(field, text, `${n} is above the maximum ${max}${sunday}`);
  if (n < min) throw new CrontabFieldError(field, text, `${n} is below the minimum ${min}`);
}

function range(from: number, to: number): number[] {
  const out: number[] = [];
  for (let i = from; i <= to; i++) out.push(i);
  return out;
}
