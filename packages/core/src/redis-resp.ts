/** Just enough RESP for the raw sockets of redis-probe.ts, redis-liveness.ts and redis-sentinel-lookup.ts. */

/** One RESP command: an array of bulk strings. */
export function encodeCommand(args: readonly (string | number)[]): Buffer {
  const parts: Buffer[] = [Buffer.from(`*${args.length}\r\n`)];
  for (const arg of args) {
    const bytes = Buffer.from(String(arg), 'utf8');
    parts.push(Buffer.from(`$${bytes.length}\r\n`), bytes, Buffer.from('\r\n'));
  }
  return Buffer.concat(parts);
}

/** One reply: an error line, or the text of a simple/bulk string (an array header gives its length as text). */
export interface Reply {
  error?: string;
  text?: string;
}

/** Just enough of a RESP reader for one-line replies and bulk strings. */
export class ReplyReader {
  private buffer = Buffer.alloc(0);

  push(chunk: Buffer): Reply[] {
    this.buffer = Buffer.concat([this.buffer, chunk]);
    const replies: Reply[] = [];
    for (;;) {
      const end = this.buffer.indexOf('\r\n');
      if (end < 0) break;
      const type = String.fromCharCode(this.buffer[0]!);
      const line = this.buffer.subarray(1, end).toString('utf8');
      if (type === '$') {
        const length = Number(line);
        if (length < 0) {
          replies.push({ text: '' });
          this.buffer = this.buffer.subarray(end + 2);
          continue;
        }
        if (this.buffer.length < end + 2 + length + 2) break;
        replies.push({ text: this.buffer.subarray(end + 2, end + 2 + length).toString('utf8') });
        this.buffer = this.buffer.subarray(end + 2 + length + 2);
        continue;
      }
      this.buffer = this.buffer.subarray(end + 2);
      replies.push(type === '-' ? { error: line } : { text: line });
    }
    return replies;
  }
}
