import { kMaxLength } from 'node:buffer';
import { deflateSync, inflateSync, brotliCompressSync, brotliDecompressSync } from 'node:zlib';
import { ContentDisallowed, MessageDecodeError, MessageTooLarge } from '../errors.js';
import { dumpsPython, loadsPython } from './python-json.js';

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

const registry = new Map<string, Serializer>([[json.name, json]]);
const byContentType = new Map<string, Serializer>([[json.contentType, json]]);

/** MIME types Celery trusts regardless of `acceptContent`. */
const ALWAYS_TRUSTED = new Set(['application/data', 'application/text']);

/** Celery names for types we know but refuse to decode. */
const KNOWN_NAMES: Record<string, string> = {
  'application/x-python-serialize': 'pickle',
  'application/x-msgpack': 'msgpack',
  'application/x-yaml': 'yaml',
  'application/json': 'json',
};

/** Add a serializer (msgpack, yaml, ... arrive with roadmap step 4). */
export function registerSerializer(serializer: Serializer): void {
  registry.set(serializer.name, serializer);
  byContentType.set(serializer.contentType, serializer);
}

/** Look a serializer up by name (`json`) or MIME type. */
export function getSerializer(nameOrType: string): Serializer {
  const s = registry.get(nameOrType) ?? byContentType.get(nameOrType);
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

/** Compression codecs, keyed by Celery's option names; values are the header MIME type. */
const COMPRESSION_TYPES: Record<string, string> = {
  zlib: 'application/x-gzip',
  gzip: 'application/x-gzip',
  brotli: 'application/x-brotli',
};

/** Compress a body; returns the header value for `compression`. */
export function compress(body: Buffer, method: string): { body: Buffer; header: string } {
  const header = COMPRESSION_TYPES[method];
  if (!header) throw new ContentDisallowed(`Unknown compression ${JSON.stringify(method)}; available: ${Object.keys(COMPRESSION_TYPES).join(', ')}.`);
  // Celery's "gzip" is a zlib stream (RFC 1950), not the gzip file format.
  return { body: header === 'application/x-brotli' ? brotliCompressSync(body) : deflateSync(body), header };
}

/**
 * Undo `compress`, given the `compression` header. Inflating stops as soon as the
 * output passes `maxBytes` (a zip bomb is refused with `MessageTooLarge` before it
 * is inflated, not after).
 */
export function decompress(body: Buffer, header: string, maxBytes: number = kMaxLength): Buffer {
  const maxOutputLength = Math.max(1, Math.min(kMaxLength, Math.floor(maxBytes)));
  try {
    if (header === 'application/x-gzip' || header === 'zlib' || header === 'gzip') return inflateSync(body, { maxOutputLength });
    if (header === 'application/x-brotli' || header === 'brotli') return brotliDecompressSync(body, { maxOutputLength });
  } catch (err) {
    if ((err as { code?: string }).code === 'ERR_BUFFER_TOO_LARGE') {
      throw new MessageTooLarge(
        `Decompressed body (${header}) is larger than ${maxOutputLength} bytes (maxMessageSize); rejected before inflating the rest. ` +
          'Raise maxMessageSize if such bodies are expected.',
      );
    }
    throw new MessageDecodeError(`Cannot decompress body (${header}): ${(err as Error).message}`);
  }
  throw new ContentDisallowed(`Unsupported compression ${header}: Celeriac decompresses zlib/gzip and brotli.`);
}
