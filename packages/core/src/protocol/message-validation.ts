/**
 * Shape checks for what a task message carries beyond args/kwargs: the protocol
 * headers and the embed (`callbacks`, `errbacks`, `chain`, `chord`). A message that
 * fails them is rejected at decode with an error naming the field, instead of
 * failing later (a non-iterable `errbacks` used to throw after the run, so a
 * late-ack message ran again forever; an object in `group` poisoned the result
 * batch it was written with).
 */
import { MessageDecodeError } from '../errors.js';
import type { Embed, WireSignature } from './message.js';

/** How a value is described in errors: its JSON kind, never its (possibly huge) content. */
export function kindOf(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return `an array of ${value.length}`;
  if (typeof value === 'object') return 'an object';
  if (typeof value === 'string') return `the string ${JSON.stringify(value.length > 40 ? `${value.slice(0, 40)}…` : value)}`;
  return `${typeof value} ${String(value)}`;
}

function bad(where: string, expected: string, value: unknown): MessageDecodeError {
  return new MessageDecodeError(
    `${where} must be ${expected}, got ${kindOf(value)}. Celery 5.2 never sends this: fix the producer of this message.`,
  );
}

/** Header fields that Celery writes as a string or null. */
const NULLABLE_STRING_HEADERS = ['shadow', 'eta', 'expires', 'group', 'root_id', 'parent_id', 'argsrepr', 'kwargsrepr', 'origin', 'lang', 'compression'] as const;

/**
 * Check the protocol v2 headers a worker reads (absent fields default as Celery
 * defaults them). Throws `MessageDecodeError` naming the first bad field.
 */
export function validateHeaders(h: Record<string, unknown>): void {
  if (typeof h.id !== 'string' || h.id === '') throw bad('Header "id"', 'a non-empty string (the task id)', h.id);
  if (typeof h.task !== 'string' || h.task === '') throw bad('Header "task"', 'a non-empty string (the task name)', h.task);
  for (const field of NULLABLE_STRING_HEADERS) {
    const v = h[field];
    if (v !== undefined && v !== null && typeof v !== 'string') throw bad(`Header "${field}"`, 'a string or null', v);
  }
  const gi = h.group_index;
  if (gi !== undefined && gi !== null && !Number.isSafeInteger(gi)) throw bad('Header "group_index"', 'an integer or null', gi);
  const retries = h.retries;
  if (retries !== undefined && retries !== null && !(Number.isSafeInteger(retries) && (retries as number) >= 0)) {
    throw bad('Header "retries"', 'a non-negative integer', retries);
  }
  const ir = h.ignore_result;
  if (ir !== undefined && ir !== null && typeof ir !== 'boolean') throw bad('Header "ignore_result"', 'a boolean', ir);
}

/**
 * `timelimit` = `[hard, soft]` seconds, each a number ≥ 0 or null (absent or null ⇒
 * `[null, null]`). 0 and `Infinity` mean "no limit", as in Celery. Limits longer
 * than a JS timer can wait (24.8 days) are honoured by re-arming the timer (see
 * `longTimeout`), so they never fire early.
 */
export function validateTimeLimit(value: unknown, where = 'Header "timelimit"'): [number | null, number | null] {
  if (value === undefined || value === null) return [null, null];
  if (!Array.isArray(value) || value.length !== 2) throw bad(where, 'a list [hard, soft] of seconds', value);
  const one = (v: unknown, name: string): number | null => {
    if (v === null || v === undefined) return null;
    if (typeof v !== 'number' || Number.isNaN(v) || v < 0) throw bad(`${where} ${name} limit`, 'a number of seconds ≥ 0 or null', v);
    return v === 0 || v === Infinity ? null : v;
  };
  return [one(value[0], 'hard'), one(value[1], 'soft')];
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** A signature dict as Celery's `Signature.from_dict` reads it. */
export function validateSignature(value: unknown, where: string): WireSignature {
  if (!isRecord(value)) throw bad(where, 'a signature dict {"task", "args", "kwargs", "options", ...}', value);
  if (typeof value.task !== 'string' || value.task === '') throw bad(`${where}.task`, 'a non-empty string (a task name)', value.task);
  if (value.args !== undefined && value.args !== null && !Array.isArray(value.args)) throw bad(`${where}.args`, 'a list', value.args);
  for (const field of ['kwargs', 'options'] as const) {
    const v = value[field];
    if (v !== undefined && v !== null && !isRecord(v)) throw bad(`${where}.${field}`, 'a dict', v);
  }
  if (value.immutable !== undefined && value.immutable !== null && typeof value.immutable !== 'boolean') throw bad(`${where}.immutable`, 'a boolean', value.immutable);
  if (value.subtask_type !== undefined && value.subtask_type !== null && typeof value.subtask_type !== 'string') {
    throw bad(`${where}.subtask_type`, 'a string or null', value.subtask_type);
  }
  return value as WireSignature;
}

function signatureList(value: unknown, where: string): WireSignature[] | null {
  if (value === undefined || value === null) return null;
  if (!Array.isArray(value)) throw bad(where, 'a list of signature dicts or null', value);
  return value.map((item, i) => validateSignature(item, `${where}[${i}]`));
}

/**
 * The third element of a v2 body (or the same keys of a v1 body). `null`/`{}` are
 * accepted, as a Celery 5.2 worker accepts them; unknown keys are ignored.
 */
export function validateEmbed(value: unknown, where = 'embed'): Embed {
  if (value === undefined || value === null) return { callbacks: null, errbacks: null, chain: null, chord: null };
  if (!isRecord(value)) throw bad(`Task body ${where}`, 'a dict {"callbacks", "errbacks", "chain", "chord"} or null', value);
  const chord = value.chord;
  return {
    callbacks: signatureList(value.callbacks, `${where}.callbacks`),
    errbacks: signatureList(value.errbacks, `${where}.errbacks`),
    chain: signatureList(value.chain, `${where}.chain`),
    chord: chord === undefined || chord === null ? null : validateSignature(chord, `${where}.chord`),
  };
}
