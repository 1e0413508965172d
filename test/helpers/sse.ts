/**
 * Server-Sent Events for the web adapter tests: parse a body into events, and read
 * a live stream (a real HTTP connection) event by event.
 */

/** One SSE event: its `event:` name and its `data:` parsed as JSON. */
export interface SseEvent {
  event: string;
  data: unknown;
}

/** Parse a complete SSE body (blocks separated by a blank line; comments skipped). */
export function parseSse(body: string): SseEvent[] {
  const events: SseEvent[] = [];
  for (const block of body.split('\n\n')) {
    let event = 'message';
    const data: string[] = [];
    for (const line of block.split('\n')) {
      if (line.startsWith('event:')) event = line.slice(6).trim();
      else if (line.startsWith('data:')) data.push(line.slice(5).trimStart());
    }
    if (data.length > 0) events.push({ event, data: JSON.parse(data.join('\n')) });
  }
  return events;
}

/** A live SSE response: wait for events as they arrive, and for the end of the stream. */
export class SseReader {
  private buffer = '';
  readonly events: SseEvent[] = [];
  /** Raw text received so far (events, comments, heartbeats). */
  raw = '';
  ended = false;
  private readonly done: Promise<void>;

  constructor(readonly response: Response) {
    if (!response.body) throw new Error('SSE response has no body');
    const reader = response.body.getReader();
    const decoder = new TextDecoder();
    this.done = (async () => {
      try {
        for (;;) {
          const { value, done } = await reader.read();
          if (done) break;
          const text = decoder.decode(value, { stream: true });
          this.raw += text;
          this.buffer += text;
          let cut: number;
          while ((cut = this.buffer.indexOf('\n\n')) >= 0) {
            this.events.push(...parseSse(this.buffer.slice(0, cut + 2)));
            this.buffer = this.buffer.slice(cut + 2);
          }
        }
      } catch {
        // the server closed the connection: same as the end of the stream
      } finally {
        this.ended = true;
      }
    })();
  }

  /** Resolve once an event satisfies `match`; reject after `timeoutMs` or at the end of the stream. */
  async waitFor(match: (e: SseEvent) => boolean, timeoutMs = 10_000): Promise<SseEvent> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const hit = this.events.find(match);
      if (hit) return hit;
      if (this.ended) throw new Error(`SSE stream ended without the expected event; got:\n${this.raw}`);
      if (Date.now() > deadline) throw new Error(`no expected SSE event within ${timeoutMs} ms; got:\n${this.raw}`);
      await new Promise((r) => setTimeout(r, 10));
    }
  }

  /** Resolve once the server ended the stream; reject after `timeoutMs`. */
  async end(timeoutMs = 10_000): Promise<SseEvent[]> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`SSE stream still open after ${timeoutMs} ms:\n${this.raw}`)), timeoutMs)));
    try {
      await Promise.race([this.done, timeout]);
    } finally {
      clearTimeout(timer);
    }
    return this.events;
  }
}
