/**
 * An LPUSH of kombu envelopes whose RESP bytes are written once, into one Buffer.
 *
 * Given strings, ioredis builds one long string of the whole command and UTF-8
 * encodes it on write; given Buffers, it frames and copies each one. For 1,000
 * envelopes of ~900 bytes either is several µs per message, more than writing the
 * envelope. Envelopes are ASCII (`dumpsPython` escapes everything else), so each
 * string is copied into the command's Buffer as is (latin1 = its bytes).
 */
import { Command } from 'ioredis';

/** `LPUSH key envelope...` as one prebuilt RESP command, for `redis.sendCommand` / `multi.sendCommand`. */
export class EnvelopeLpush extends Command {
  private readonly wire: Buffer;

  /** `envelopes` must be ASCII strings (what `encodeEnvelope` returns). */
  constructor(key: string, envelopes: readonly string[]) {
    // ioredis only needs the name and the key (for its bookkeeping); the bytes are ours.
    super('lpush', [key]);
    this.wire = encodeLpush(key, envelopes);
  }

  /** The prebuilt bytes (ioredis writes this instead of framing `args`). */
  override toWritable(): Buffer {
    return this.wire;
  }
}

/** `*n $5 LPUSH $k key ($len envelope)...` in RESP. */
export function encodeLpush(key: string, envelopes: readonly string[]): Buffer {
  const keyBytes = Buffer.byteLength(key, 'utf8');
  const head = `*${envelopes.length + 2}\r\n$5\r\nlpush\r\n$${keyBytes}\r\n`;
  let size = head.length + keyBytes + 2;
  for (const envelope of envelopes) size += 1 + decimalDigits(envelope.length) + 2 + envelope.length + 2;
  const out = Buffer.allocUnsafe(size);
  let at = out.write(head, 0, 'latin1');
  at += out.write(key, at, 'utf8');
  at = crlf(out, at);
  for (const envelope of envelopes) {
    at += out.write('$' + envelope.length + '\r\n', at, 'latin1');
    at += out.write(envelope, at, 'latin1');
    at = crlf(out, at);
  }
  if (at !== size) throw new Error(`encodeLpush: wrote ${at} of ${size} bytes`);
  return out;
}

function crlf(out: Buffer, at: number): number {
  out[at] = 13;
  out[at + 1] = 10;
  return at + 2;
}

function decimalDigits(n: number): number {
  let digits = 1;
  while (n >= 10) {
    n = Math.floor(n / 10);
    digits++;
  }
  return digits;
}
