/**
 * Body compression as kombu 5.2 registers it (`kombu.compression`), header value
 * and bytes alike, so Python Celery reads what Celeriac compresses and back:
 *
 * | option | `compression` header | bytes |
 * |---|---|---|
 * | `zlib`, `gzip` | `application/x-gzip` | a zlib stream (RFC 1950): kombu's "gzip" is `zlib.compress` |
 * | `bzip2`, `bzip` | `application/x-bz2` | `bz2.compress`: a .bz2 stream (compressjs) |
 * | `xz`, `lzma` | `application/x-lzma` | `lzma.compress`: the .xz format (node-liblzma, liblzma itself) |
 * | `brotli` | `application/x-brotli` | a brotli stream |
 *
 * Decompression is bounded: it stops (zlib, brotli, bzip2) or refuses to start
 * (xz, from the sizes the stream's index declares) once the output would pass
 * `maxBytes`, with `MessageTooLarge`; nothing past the bound is held in memory.
 */
import { kMaxLength } from 'node:buffer';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { brotliCompressSync, brotliDecompressSync, deflateSync, inflateSync } from 'node:zlib';
import { ContentDisallowed, MessageDecodeError, MessageTooLarge } from '../errors.js';
import { moduleRoot } from '../module-root.cjs';

/** compressjs is CommonJS without types: the two calls used here. */
interface Bzip2Codec {
  compressFile(input: Uint8Array): Uint8Array | number[];
  decompressFile(input: Uint8Array, output: { writeByte(byte: number): void }, multistream?: boolean): unknown;
}
const requireHere = createRequire(join(moduleRoot, 'index.js'));
/** compressjs, loaded on first use (bzip2 is rare; loading it cost every worker ~8 MB of RSS). */
let bzip2Codec: Bzip2Codec | undefined;
function bzip2(): Bzip2Codec {
  return (bzip2Codec ??= (requireHere('compressjs') as { Bzip2: Bzip2Codec }).Bzip2);
}

/**
 * node-liblzma (xz / lzma) is ESM-only: loaded on first use, so a CommonJS host that
 * cannot require() ES modules (Jest) still loads the core when it never uses xz.
 */
let lzma: { xzSync(input: Buffer): Buffer; unxzSync(input: Buffer): Buffer } | undefined;
function liblzma(): NonNullable<typeof lzma> {
  return (lzma ??= requireHere('node-liblzma') as NonNullable<typeof lzma>);
}

const ZLIB = 'application/x-gzip';
const BZ2 = 'application/x-bz2';
const LZMA = 'application/x-lzma';
const BROTLI = 'application/x-brotli';

/** Celery's option names → the header MIME type. */
const COMPRESSION_TYPES: Record<string, string> = { zlib: ZLIB, gzip: ZLIB, bzip2: BZ2, bzip: BZ2, xz: LZMA, lzma: LZMA, brotli: BROTLI };

/** The compression names `compress` accepts. */
export function compressionNames(): string[] {
  return Object.keys(COMPRESSION_TYPES);
}

/** Compress a body; returns the header value for `compression`. */
export function compress(body: Buffer, method: string): { body: Buffer; header: string } {
  const header = COMPRESSION_TYPES[method] ?? (Object.values(COMPRESSION_TYPES).includes(method) ? method : undefined);
  if (!header) throw new ContentDisallowed(`Unknown compression ${JSON.stringify(method)}; available: ${compressionNames().join(', ')}.`);
  switch (header) {
    case BROTLI:
      return { body: brotliCompressSync(body), header };
    case BZ2:
      return { body: Buffer.from(bzip2().compressFile(body)), header };
    case LZMA:
      return { body: liblzma().xzSync(body), header };
    default:
      return { body: deflateSync(body), header };
  }
}

function tooLarge(header: string, max: number): MessageTooLarge {
  return new MessageTooLarge(
    `Decompressed body (${header}) is larger than ${max} bytes (maxMessageSize); rejected before inflating the rest. Raise maxMessageSize if such bodies are expected.`,
  );
}

/**
 * Undo `compress`, given the `compression` header. Inflating stops as soon as the
 * output passes `maxBytes` (a bomb is refused with `MessageTooLarge`).
 */
export function decompress(body: Buffer, header: string, maxBytes: number = kMaxLength): Buffer {
  const max = Math.max(1, Math.min(kMaxLength, Math.floor(maxBytes)));
  const type = COMPRESSION_TYPES[header] ?? header;
  try {
    switch (type) {
      case ZLIB:
        return inflateSync(body, { maxOutputLength: max });
      case BROTLI:
        return brotliDecompressSync(body, { maxOutputLength: max });
      case BZ2:
        return bunzip(body, max, header);
      case LZMA: {
        const declared = xzDeclaredSize(body);
        if (declared > max) throw tooLarge(header, max);
        return liblzma().unxzSync(body);
      }
    }
  } catch (err) {
    if (err instanceof MessageTooLarge) throw err;
    if ((err as { code?: string }).code === 'ERR_BUFFER_TOO_LARGE') throw tooLarge(header, max);
    throw new MessageDecodeError(`Cannot decompress body (${header}): ${(err as Error)?.message ?? String(err)}`);
  }
  throw new ContentDisallowed(`Unsupported compression ${header}: Celeriac decompresses ${[...new Set(Object.values(COMPRESSION_TYPES))].join(', ')}.`);
}

/** bzip2 into a growing buffer that refuses to pass `max`. */
function bunzip(body: Buffer, max: number, header: string): Buffer {
  let out = Buffer.allocUnsafe(Math.min(max, Math.max(1024, body.length * 4)));
  let length = 0;
  const sink = {
    writeByte(byte: number): void {
      if (length >= out.length) {
        if (length >= max) throw tooLarge(header, max);
        const grown = Buffer.allocUnsafe(Math.min(max, out.length * 2));
        out.copy(grown, 0, 0, length);
        out = grown;
      }
      out[length++] = byte;
    },
  };
  bzip2().decompressFile(body, sink, true);
  return out.subarray(0, length);
}

/** A variable-length integer of the .xz format at `pos`: [value, next position]. */
function readVli(buf: Buffer, pos: number, end: number): [number, number] {
  let value = 0;
  for (let i = 0; i < 9; i++) {
    if (pos >= end) throw new Error('truncated xz index');
    const byte = buf[pos++]!;
    value += (byte & 0x7f) * 2 ** (7 * i);
    if ((byte & 0x80) === 0) return [value, pos];
  }
  throw new Error('bad xz integer');
}

/**
 * The uncompressed size the .xz stream(s) declare in their indexes (mandatory in
 * the format; the decoder checks the index against the data), read from the end
 * without decompressing anything.
 */
function xzDeclaredSize(buf: Buffer): number {
  let end = buf.length;
  let total = 0;
  while (end > 0) {
    while (end >= 4 && buf.readUInt32LE(end - 4) === 0) end -= 4; // stream padding
    if (end === 0) break;
    if (end < 24 || buf[end - 2] !== 0x59 || buf[end - 1] !== 0x5a) throw new Error('not an xz stream (no footer)');
    const indexSize = (buf.readUInt32LE(end - 8) + 1) * 4;
    const indexStart = end - 12 - indexSize;
    if (indexStart < 12 || buf[indexStart] !== 0) throw new Error('bad xz index');
    let [records, pos] = readVli(buf, indexStart + 1, end - 12);
    let blocks = 0;
    for (; records > 0; records--) {
      const [unpadded, p1] = readVli(buf, pos, end - 12);
      const [uncompressed, p2] = readVli(buf, p1, end - 12);
      pos = p2;
      blocks += Math.ceil(unpadded / 4) * 4;
      total += uncompressed;
    }
    end = indexStart - blocks - 12;
    if (end < 0) throw new Error('bad xz stream sizes');
  }
  return total;
}
