import type { ApplyOptions } from '../apply-options.js';
import type { WireSignature } from '../protocol/message.js';
import { Signature } from './signature.js';

/** Signature options as on the wire: Celery's `apply_async` keyword names (`task_id`, `link_error`...). */
export type WireOptions = Record<string, unknown>;

/** Wire option name → ApplyOptions field, for the plain values. */
const FROM_WIRE: Record<string, keyof ApplyOptions> = {
  task_id: 'taskId',
  countdown: 'countdown',
  eta: 'eta',
  expires: 'expires',
  queue: 'queue',
  routing_key: 'routingKey',
  exchange: 'exchange',
  priority: 'priority',
  headers: 'headers',
  shadow: 'shadow',
  serializer: 'serializer',
  compression: 'compression',
  ignore_result: 'ignoreResult',
  group_id: 'groupId',
  group_index: 'groupIndex',
  parent_id: 'parentId',
  root_id: 'rootId',
  time_limit: 'timeLimit',
  soft_time_limit: 'softTimeLimit',
  retry: 'retry',
  retries: 'retries',
};

const TO_WIRE: Record<string, string> = Object.fromEntries(Object.entries(FROM_WIRE).map(([w, o]) => [o, w]));

function signatureList(value: unknown): Signature[] | undefined {
  if (value === undefined || value === null) return undefined;
  const list = Array.isArray(value) ? value : [value];
  return list.map((w) => (w instanceof Signature ? w : Signature.fromWire(w as WireSignature)));
}

/** Convert wire option names (`task_id`, `routing_key`, `link`...) to ApplyOptions. */
export function optionsFromWire(options: WireOptions): ApplyOptions {
  const o: ApplyOptions = {};
  for (const [k, v] of Object.entries(options)) {
    const key = FROM_WIRE[k];
    if (key && v !== null && v !== undefined) (o as Record<string, unknown>)[key] = v;
  }
  const link = signatureList(options.link);
  if (link?.length) o.link = link;
  const linkError = signatureList(options.link_error);
  if (linkError?.length) o.linkError = linkError;
  if (Array.isArray(options.chain)) o.chain = (options.chain as unknown[]).map(toWireSignature);
  if (options.chord && typeof options.chord === 'object') o.chord = toWireSignature(options.chord);
  return o;
}

/** Convert ApplyOptions (camelCase) to wire option names, for merging into a signature's options. */
export function wireFromOptions(options: ApplyOptions): WireOptions {
  const o: WireOptions = {};
  for (const [k, v] of Object.entries(options)) {
    if (v === undefined) continue;
    const wire = TO_WIRE[k];
    if (wire) o[wire] = v;
  }
  if (options.link !== undefined) o.link = (Array.isArray(options.link) ? options.link : [options.link]).map((s) => s.toJSON());
  if (options.linkError !== undefined) o.link_error = (Array.isArray(options.linkError) ? options.linkError : [options.linkError]).map((s) => s.toJSON());
  if (options.chain !== undefined && options.chain !== null) o.chain = options.chain;
  if (options.chord !== undefined && options.chord !== null) o.chord = options.chord;
  if (options.retryPolicy !== undefined) o.retry_policy = options.retryPolicy;
  return o;
}

function toWireSignature(value: unknown): WireSignature {
  return value instanceof Signature ? value.toJSON() : (value as WireSignature);
}
