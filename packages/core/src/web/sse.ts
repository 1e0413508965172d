/**
 * A framework-neutral Server-Sent Events writer on Node's `ServerResponse` (Express's
 * `res`, Fastify's `reply.raw`, Nest's response): the headers proxies need
 * (`X-Accel-Buffering: no` for nginx), heartbeat comments, a flush after each
 * write (for the `compression` middleware), and an `AbortSignal` that fires when
 * the client goes away. `streamTaskEvents` streams one task's status over it.
 */
import type { Celeriac } from '../app.js';
import { watchTaskStatus, type TaskStatus, type TaskStatusOptions } from './task-status.js';

/** The parts of Node's `http.ServerResponse` the writer uses. */
export interface SseResponse {
  readonly headersSent: boolean;
  readonly writableEnded: boolean;
  statusCode: number;
  setHeader(name: string, value: string | number): unknown;
  flushHeaders?(): void;
  write(chunk: string): boolean;
  end(): unknown;
  on(event: 'close', listener: () => void): unknown;
  off?(event: 'close', listener: () => void): unknown;
  /** Added by the `compression` middleware: push what is buffered to the client. */
  flush?: () => void;
}

/** Options of an SSE stream. */
export interface SseOptions {
  /** Milliseconds between heartbeat comments (`: ping`), which keep proxies from closing an idle stream. Default 15,000; 0 = none. */
  heartbeatMs?: number;
  /** The reconnection delay told to `EventSource` clients (`retry:`), in ms. Default: not sent. */
  retryMs?: number;
}

/** One open event stream. */
export class SseStream {
  private readonly controller = new AbortController();
  private readonly heartbeat: NodeJS.Timeout | undefined;
  private readonly onClientClose = () => this.close();

  /** Aborts when the stream ends: the client went away, `close()`, or a shutdown. */
  readonly signal: AbortSignal = this.controller.signal;

  constructor(
    private readonly res: SseResponse,
    options: SseOptions = {},
  ) {
    res.statusCode = 200;
    res.setHeader('Content-Type', 'text/event-stream; charset=utf-8');
    res.setHeader('Cache-Control', 'no-cache');
    res.setHeader('Connection', 'keep-alive');
    res.setHeader('X-Accel-Buffering', 'no');
    res.flushHeaders?.();
    res.on('close', this.onClientClose);
    if (options.retryMs !== undefined) this.write(`retry: ${Math.trunc(options.retryMs)}\n\n`);
    else this.write(': stream open\n\n');
    const every = options.heartbeatMs ?? 15_000;
    if (every > 0) {
      this.heartbeat = setInterval(() => this.comment('ping'), every);
      this.heartbeat.unref();
    }
  }

  /** True once the stream ended. */
  get closed(): boolean {
    return this.signal.aborted;
  }

  /** Send one event: `data` as JSON (one `data:` line), with an optional event name and id. */
  send(data: unknown, event?: string, id?: string): void {
    let frame = '';
    if (event) frame += `event: ${event.replace(/[\r\n]/g, '')}\n`;
    if (id !== undefined) frame += `id: ${id.replace(/[\r\n]/g, '')}\n`;
    frame += `data: ${JSON.stringify(data)}\n\n`;
    this.write(frame);
  }

  /** A comment line (ignored by clients; keeps the connection alive). */
  comment(text: string): void {
    this.write(`: ${text.replace(/[\r\n]/g, ' ')}\n\n`);
  }

  /** End the stream (and the response); idempotent. */
  close(): void {
    if (this.signal.aborted) return;
    clearInterval(this.heartbeat);
    this.res.off?.('close', this.onClientClose);
    this.controller.abort();
    if (!this.res.writableEnded) this.res.end();
  }

  private write(frame: string): void {
    if (this.signal.aborted || this.res.writableEnded) return;
    this.res.write(frame);
    this.res.flush?.();
  }
}

/** The open SSE streams of one adapter, ended together at shutdown. */
export class SseStreams {
  private readonly live = new Set<SseStream>();

  /** Open a stream on `res` and track it until it ends. */
  open(res: SseResponse, options?: SseOptions): SseStream {
    const stream = new SseStream(res, options);
    this.live.add(stream);
    stream.signal.addEventListener('abort', () => this.live.delete(stream), { once: true });
    return stream;
  }

  /** How many streams are open. */
  get size(): number {
    return this.live.size;
  }

  /** End every open stream (graceful shutdown: before closing the HTTP server). */
  closeAll(): void {
    for (const stream of [...this.live]) stream.close();
  }
}

/** Options of `streamTaskEvents`. */
export interface TaskEventsOptions extends TaskStatusOptions, SseOptions {
  /** Track the stream here so a shutdown can end it. */
  streams?: SseStreams;
}

/**
 * Stream a task's status over SSE on `res` until a final state: one unnamed
 * event (`data: <TaskStatus JSON>`, read by `EventSource.onmessage`) per change,
 * then `event: end` and the end of the response. Resolves when the stream ended
 * (final state, client gone, or shutdown). A failure to read the backend is sent
 * as `event: error` with `{ code, message }` before ending.
 */
export async function streamTaskEvents(app: Celeriac, taskId: string, res: SseResponse, options: TaskEventsOptions = {}): Promise<void> {
  const stream = options.streams ? options.streams.open(res, options) : new SseStream(res, options);
  let last: TaskStatus | undefined;
  let n = 0;
  try {
    for await (const status of watchTaskStatus(app, taskId, { tracebacks: options.tracebacks, signal: stream.signal })) {
      stream.send(status, undefined, String(++n));
      last = status;
    }
    if (last?.ready) stream.send({ taskId, state: last.state }, 'end');
  } catch (err) {
    const e = err as { code?: unknown; name?: string };
    stream.send({ code: typeof e.code === 'string' ? e.code : 'CELERIAC_STATUS_UNAVAILABLE', message: 'The task status could not be read; try again later.' }, 'error');
  } finally {
    stream.close();
  }
}
