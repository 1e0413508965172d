import { ConfigurationError, ContentDisallowed, MessageDecodeError } from '../errors.js';
import { dumpsPython, loadsPython } from './python-json.js';
import { msgpack, yaml } from './serializers.js';

/** A serializer: name, MIME type, encoding, and the two directions. */
export interface Serializer {
  name: string;
  contentType: string;
  contentEncoding: string;
  encode(value: unknown): Buffer;
  decode(body: Buffer): unknown;
}

const json: Serializer = {
  name: 'json',
  contentType: 'application/json',
  contentEncoding: 'utf-8',
  encode: (value) => Buffer.from(dumpsPython(value), 'utf8'),
  decode: (body) => loadsPython(body.toString('utf8')),
};

const registry = new Map<string, Serializer>([
  [json.name, json],
  [msgpack.name, msgpack],
  [yaml.name, yaml],
]);
const byContentType = new Map<string, Serializer>([...registry.values()].map((s) => [s.contentType, s]));

/** MIME types Celery trusts regardless of `acceptContent`. */
const ALWAYS_TRUSTED = new Set(['application/data', 'application/text']);

/** Celery names for types we know but refuse to decode. */
const KNOWN_NAMES: Record<string, string> = {
  'application/x-python-serialize': 'pickle',
  'application/x-msgpack': 'msgpack',
  'application/x-yaml': 'yaml',
  'application/json': 'json',
};

/**
 * Add a serializer (Celery's `kombu.serialization.register`): then usable as
 * `taskSerializer` / `resultSerializer` / a task's or call's `serializer`, and
 * accepted where `acceptContent` names it. `pickle` cannot be registered.
 */
export function registerSerializer(serializer: Serializer): void {
  if (serializer.name === 'pickle' || serializer.contentType === 'application/x-python-serialize') {
    throw new ConfigurationError('pickle cannot be registered: it runs arbitrary code when decoded, and no JavaScript decoder can honour it. Use json, msgpack or yaml.');
  }
  registry.set(serializer.name, serializer);
  byContentType.set(serializer.contentType, serializer);
}

/** Names of the registered serializers. */
export function serializerNames(): string[] {
  return [...registry.keys()];
}

/**
 * Check an `acceptContent`-like list at start-up: every entry must name a
 * serializer Celeriac can decode (by name or MIME type). `pickle` is refused with
 * a clear error naming the setting.
 */
export function checkAcceptContent(accept: readonly string[], settingName = 'acceptContent'): void {
  for (const entry of accept) {
    if (ALWAYS_TRUSTED.has(entry) || registry.has(entry) || byContentType.has(entry)) continue;
    if (entry === 'pickle' || entry === 'application/x-python-serialize') {
      throw new ConfigurationError(
        `${settingName} lists pickle, which Celeriac refuses: decoding pickle runs arbitrary code, and JavaScript cannot read it. ` +
          `Remove it from ${settingName} and have the producers send json (Celery's default), msgpack or yaml.`,
      );
    }
    throw new ConfigurationError(`${settingName} lists ${JSON.stringify(entry)}, which has no decoder: use ${serializerNames().join(', ')} (or register one with registerSerializer()).`);
  }
}

/** Look a serializer up by name (`json`) or MIME type. */
export function getSerializer(nameOrType: string): Serializer {
  const s = registry.get(nameOrType) ?? byContentType.get(nameOrType);
  if (!s && (nameOrType === 'pickle' || nameOrType === 'application/x-python-serialize')) {
    throw new ContentDisallowed('Celeriac does not serialize with pickle (it runs arbitrary code when decoded, and JavaScript cannot write it): use json (default), msgpack or yaml, and keep pickle out of acceptContent.');
  }
  if (!s) {
    throw new ContentDisallowed(
      `Unknown serializer ${JSON.stringify(nameOrType)}. Available: ${[...registry.keys()].join(', ')}. ` +
        'Set taskSerializer/resultSerializer to one of them.',
    );
  }
  return s;
}

/**
 * Decode a body, enforcing `accept` (names or MIME types, like Celery's
 * `accept_content`). Throws `ContentDisallowed` naming the setting to change.
 */
export function decodeBody(body: Buffer, contentType: string, accept: readonly string[], settingName = 'acceptContent'): unknown {
  const allowed = accept.some((a) => a === contentType || registry.get(a)?.contentType === contentType || KNOWN_NAMES[contentType] === a);
  if (!allowed && !ALWAYS_TRUSTED.has(contentType)) {
    const name = KNOWN_NAMES[contentType] ?? contentType;
    throw new ContentDisallowed(
      `Refusing to deserialize untrusted content of type ${name} (${contentType}). ` +
        `Accepted: ${accept.join(', ')}. Add "${name}" to the ${settingName} setting if you trust this source` +
        (name === 'pickle' ? ' (Celeriac cannot decode pickle at all: switch the producer to json).' : '.'),
    );
  }
  if (ALWAYS_TRUSTED.has(contentType)) return body.toString('utf8');
  const serializer = byContentType.get(contentType);
  if (!serializer) throw new ContentDisallowed(`No decoder for content type ${contentType}: Celeriac decodes ${[...byContentType.keys()].join(', ')}.`);
  try {
    return serializer.decode(body);
  } catch (err) {
    throw new MessageDecodeError(`Cannot decode ${serializer.name} body: ${(err as Error).message}`);
  }
}

export { compress, decompress, compressionNames } from './compression.js';
