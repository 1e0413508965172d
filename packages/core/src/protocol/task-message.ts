import { MessageDecodeError } from '../errors.js';
import type { Embed, MessageProperties, TaskHeaders, TaskMessage, WireSignature } from './message.js';
import { validateEmbed, validateHeaders, validateTimeLimit } from './message-validation.js';
import { argsRepr, kwargsRepr } from './python-repr.js';
import { compress, decodeBody, decompress, getSerializer } from './serialization.js';
import { formatHeaderDate, parseWireDate } from './time.js';

/** Everything needed to build one protocol v2 task message. */
export interface TaskMessageSpec {
  taskName: string;
  taskId: string;
  args: readonly unknown[];
  kwargs: Record<string, unknown>;
  eta?: Date | null;
  expires?: Date | null;
  retries?: number;
  groupId?: string | null;
  groupIndex?: number | null;
  rootId?: string | null;
  parentId?: string | null;
  shadow?: string | null;
  /** The `argsrepr` / `kwargsrepr` headers as given (Celery's options of the same name); default: the Python repr of args / kwargs. */
  argsrepr?: string;
  kwargsrepr?: string;
  /** `[hard, soft]` seconds. */
  timeLimit?: [number | null, number | null];
  ignoreResult?: boolean;
  callbacks?: WireSignature[] | null;
  errbacks?: WireSignature[] | null;
  chain?: WireSignature[] | null;
  chord?: WireSignature | null;
  /** Custom headers, added after the protocol ones. */
  headers?: Record<string, unknown>;
  /** `gen<pid>@<host>` of the sender. */
  origin: string;
  replyTo: string;
  priority?: number | null;
  serializer: string;
  compression?: string | null;
  /** Extra properties (Celery's retry puts `replaced_task_nesting`/`origin` there). */
  extraProperties?: Record<string, unknown>;
}

/** Build a protocol v2 message, header for header as Celery 5.2 writes it. */
export function buildTaskMessage(spec: TaskMessageSpec): TaskMessage {
  const headers: TaskHeaders = {
    lang: 'py',
    task: spec.taskName,
    id: spec.taskId,
    shadow: spec.shadow ?? null,
    eta: spec.eta ? formatHeaderDate(spec.eta) : null,
    expires: spec.expires ? formatHeaderDate(spec.expires) : null,
    group: spec.groupId ?? null,
    group_index: spec.groupIndex ?? null,
    retries: spec.retries ?? 0,
    timelimit: spec.timeLimit ?? [null, null],
    root_id: spec.rootId ?? spec.taskId,
    parent_id: spec.parentId ?? null,
    argsrepr: spec.argsrepr ?? argsRepr(spec.args),
    kwargsrepr: spec.kwargsrepr ?? kwargsRepr(spec.kwargs),
    origin: spec.origin,
    ignore_result: spec.ignoreResult ?? false,
  };
  if (spec.headers) {
    for (const [k, v] of Object.entries(spec.headers)) if (!(k in headers)) headers[k] = v;
  }
  const properties: MessageProperties = { correlation_id: spec.taskId, reply_to: spec.replyTo };
  if (spec.extraProperties) Object.assign(properties, spec.extraProperties);
  properties.delivery_mode = 2;
  if (spec.expires) properties.expiration = String(Math.max(0, spec.expires.getTime() - Date.now()));
  properties.priority = spec.priority ?? 0;

  const embed: Embed = {
    callbacks: spec.callbacks ?? null,
    errbacks: spec.errbacks ?? null,
    chain: spec.chain ?? null,
    chord: spec.chord ?? null,
  };
  const serializer = getSerializer(spec.serializer);
  let body = serializer.encode([spec.args, spec.kwargs, embed]);
  if (spec.compression) {
    const packed = compress(body, spec.compression);
    body = packed.body;
    headers.compression = packed.header;
  }
  return { headers, properties, contentType: serializer.contentType, contentEncoding: serializer.contentEncoding, body };
}

/** A task request decoded from a v2 (or v1) message, ready to run. */
export interface DecodedTask {
  /** 2, or 1 for legacy messages. */
  protocol: 1 | 2;
  name: string;
  id: string;
  args: unknown[];
  kwargs: Record<string, unknown>;
  embed: Embed;
  eta: Date | null;
  expires: Date | null;
  retries: number;
  groupId: string | null;
  groupIndex: number | null;
  rootId: string;
  parentId: string | null;
  shadow: string | null;
  timeLimit: [number | null, number | null];
  ignoreResult: boolean;
  headers: TaskHeaders;
}

function optDate(value: unknown, field: string): Date | null {
  if (value === null || value === undefined) return null;
  if (typeof value !== 'string') throw new MessageDecodeError(`Header ${field} must be an ISO 8601 string, got ${JSON.stringify(value)}.`);
  try {
    return parseWireDate(value);
  } catch (err) {
    throw new MessageDecodeError(`Header ${field}: ${(err as Error).message}`);
  }
}

/**
 * Read only the headers of a message (no body decoding): enough to route it and to
 * reject it by name. Returns null when the message is not a v2 task message.
 */
export function peekTaskName(message: TaskMessage): string | null {
  const task = message.headers?.task;
  return typeof task === 'string' ? task : null;
}

/** Limits for `decodeTaskMessage`. */
export interface DecodeLimits {
  /** Largest body accepted after decompression, in bytes (the worker passes `maxMessageSize`). Default: no limit. */
  maxBodyBytes?: number;
}

/**
 * Decode a message the way a Celery 5.2 worker does: `headers.task` ⇒ v2 (the body
 * is `[args, kwargs, embed]`); otherwise the body is a v1 dict with `task`.
 * Checks the headers, then decompresses (at most `limits.maxBodyBytes`), then
 * enforces `accept` before parsing the body.
 */
export function decodeTaskMessage(message: TaskMessage, accept: readonly string[], limits: DecodeLimits = {}): DecodedTask {
  const h = (message.headers ?? {}) as TaskHeaders;
  const v2 = typeof h.task === 'string';
  if (v2) validateHeaders(h); // cheap checks first: before decompressing or parsing the body
  let raw = message.body;
  const compression = h.compression;
  if (typeof compression === 'string') raw = decompress(raw, compression, limits.maxBodyBytes);
  const payload = decodeBody(raw, message.contentType, accept);

  if (v2) {
    const timeLimit = validateTimeLimit(h.timelimit);
    let args: unknown[];
    let kwargs: Record<string, unknown>;
    let embed: Embed;
    if (Array.isArray(payload)) {
      if (payload.length !== 3) {
        throw new MessageDecodeError(`Task body must be [args, kwargs, embed] (3 elements), got ${payload.length} elements.`);
      }
      args = asArgs(payload[0]);
      kwargs = asKwargs(payload[1]);
      embed = validateEmbed(payload[2]);
    } else if (payload && typeof payload === 'object' && 'args' in payload) {
      // v1/v2 hybrid: headers say v2, body is a v1 dict.
      const p = payload as Record<string, unknown>;
      args = asArgs(p.args);
      kwargs = asKwargs(p.kwargs ?? {});
      embed = validateEmbed({ callbacks: p.callbacks, errbacks: p.errbacks }, 'body');
    } else {
      throw new MessageDecodeError('Task body must be a JSON array [args, kwargs, embed].');
    }
    return {
      protocol: 2,
      name: h.task,
      id: h.id,
      args,
      kwargs,
      embed,
      eta: optDate(h.eta, 'eta'),
      expires: optDate(h.expires, 'expires'),
      retries: typeof h.retries === 'number' ? h.retries : 0,
      groupId: (h.group as string | null) ?? null,
      groupIndex: (h.group_index as number | null) ?? null,
      rootId: (h.root_id as string | null) ?? h.id,
      parentId: (h.parent_id as string | null) ?? null,
      shadow: (h.shadow as string | null) ?? null,
      timeLimit,
      ignoreResult: h.ignore_result === true,
      headers: h,
    };
  }

  if (payload && typeof payload === 'object' && !Array.isArray(payload) && typeof (payload as { task?: unknown }).task === 'string') {
    const p = payload as Record<string, unknown>;
    if (typeof p.id !== 'string' || p.id === '') throw new MessageDecodeError('Protocol v1 body "id" must be a non-empty string (the task id).');
    const id = p.id;
    for (const field of ['taskset', 'group'] as const) {
      if (p[field] !== undefined && p[field] !== null && typeof p[field] !== 'string') throw new MessageDecodeError(`Protocol v1 body "${field}" must be a string or null.`);
    }
    const v1Embed = validateEmbed({ callbacks: p.callbacks, errbacks: p.errbacks, chord: p.chord }, 'body');
    return {
      protocol: 1,
      name: p.task as string,
      id,
      args: asArgs(p.args ?? []),
      kwargs: asKwargs(p.kwargs ?? {}),
      embed: v1Embed,
      eta: optDate(p.eta, 'eta'),
      expires: optDate(p.expires, 'expires'),
      retries: typeof p.retries === 'number' ? p.retries : 0,
      groupId: (p.taskset as string | null) ?? (p.group as string | null) ?? null,
      groupIndex: Number.isSafeInteger(p.group_index) ? (p.group_index as number) : null,
      rootId: id,
      parentId: null,
      shadow: null,
      timeLimit: validateTimeLimit(p.timelimit, 'Protocol v1 body "timelimit"'),
      ignoreResult: false,
      headers: { ...h, task: p.task as string, id } as TaskHeaders,
    };
  }
  throw new MessageDecodeError('Unknown message: no "task" header (protocol v2) and no "task" field in the body (protocol v1).');
}

function asArgs(value: unknown): unknown[] {
  if (!Array.isArray(value)) throw new MessageDecodeError(`Task args must be an array, got ${typeof value}.`);
  return value;
}

function asKwargs(value: unknown): Record<string, unknown> {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) throw new MessageDecodeError('Task kwargs must be an object.');
  return value as Record<string, unknown>;
}
