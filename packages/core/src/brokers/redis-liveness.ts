/**
 * Keep a consumer alive in Redis from a heartbeat thread, on one plain socket.
 *
 * The thread only runs the `heartbeatConsumer` script every few seconds, so it
 * speaks just enough RESP for that (AUTH, SELECT, EVAL; replies are one line)
 * instead of loading ioredis: that halves the thread's memory (~9 MB instead of
 * ~20 MB). Promotion and restores stay with the worker's main connection.
 */
import { connect as connectTcp, type Socket } from 'node:net';
import { connect as connectTls } from 'node:tls';
import { CONSUMERS, LEASES, ownedKey, UNACKED, UNACKED_INDEX } from './redis-keys.js';
import { scripts } from './redis-scripts.js';

/** What the liveness loop needs. */
export interface LivenessOptions {
  url: string;
  consumerId: string;
  ttlMs: number;
  intervalMs: number;
  /** Called with a readable reason when a beat fails (it is retried). */
  onError: (message: string) => void;
}

/** One RESP command: an array of bulk strings. */
export function encodeCommand(args: readonly (string | number)[]): Buffer {
  const parts: Buffer[] = [Buffer.from(`*${args.length}\r\n`)];
  for (const arg of args) {
    const bytes = Buffer.from(String(arg), 'utf8');
    parts.push(Buffer.from(`$${bytes.length}\r\n`), bytes, Buffer.from('\r\n'));
  }
  return Buffer.concat(parts);
}

/** AUTH / SELECT commands a redis:// URL asks for, before anything else. */
export function handshakeCommands(url: URL): Buffer[] {
  const commands: Buffer[] = [];
  const password = decodeURIComponent(url.password);
  const username = decodeURIComponent(url.username);
  if (password) commands.push(encodeCommand(username ? ['AUTH', username, password] : ['AUTH', password]));
  const db = Number(url.pathname.replace(/^\//, '') || 0);
  if (db) commands.push(encodeCommand(['SELECT', db]));
  return commands;
}

/** What a hung consumer's release did (see `redis-lua/releaseHungConsumer-3.lua`). */
export interface ReleaseCounts {
  /** Not-started messages put back in their queues (owned unacked and in-flight). */
  restored: number;
  /** Started messages removed from `unacked` (acked). */
  dropped: number;
  /** Started messages put back at the end of their queues (rejected with requeue). */
  requeued: number;
}

/** A started message to settle when the consumer is released: drop it or requeue it. */
export interface StartedTag {
  tag: string;
  requeue: boolean;
}

/** The running liveness loop. */
export interface Liveness {
  /**
   * The consumer's event loop is hung: give back what it has not started and settle
   * `started` (drop or requeue), in one atomic step. Rejects if Redis cannot be reached.
   */
  release(started: readonly StartedTag[]): Promise<ReleaseCounts>;
  stop(): Promise<void>;
}

/** Reply of a command written on the socket: ignored (null) or awaited. */
type ReplyHandler = { resolve: (line: string) => void; reject: (err: Error) => void } | null;

/** Beat every `intervalMs` until stopped; reconnects after errors. */
export function startLiveness(options: LivenessOptions): Liveness {
  const url = new URL(options.url);
  const beat = encodeCommand([
    'EVAL', scripts.heartbeatConsumer.lua, 4, UNACKED, UNACKED_INDEX, CONSUMERS, ownedKey(options.consumerId), options.consumerId, Math.round(options.ttlMs),
  ]);
  let socket: Socket | undefined;
  let stopped = false;
  let buffered = '';
  // One entry per command written, in order (replies here are always one line).
  let replies: ReplyHandler[] = [];

  const open = () => {
    const port = Number(url.port || 6379);
    const host = url.hostname.replace(/^\[|\]$/g, '') || '127.0.0.1';
    const s = url.protocol === 'rediss:' ? connectTls({ host, port, servername: host }) : connectTcp({ host, port });
    s.setNoDelay(true);
    // Written now, sent in order once connected: the handshake always precedes a beat.
    for (const command of handshakeCommands(url)) send(s, command);
    s.on('data', (chunk) => {
      buffered += chunk.toString('utf8');
      let end: number;
      while ((end = buffered.indexOf('\r\n')) >= 0) {
        const line = buffered.slice(0, end);
        buffered = buffered.slice(end + 2);
        const handler = replies.shift();
        if (handler && line.startsWith('-')) handler.reject(new Error(line.slice(1)));
        else if (handler) handler.resolve(line);
        else if (line.startsWith('-')) options.onError(line.slice(1));
      }
    });
    s.on('error', (err) => options.onError(err.message));
    s.on('close', () => {
      if (socket !== s) return;
      socket = undefined;
      buffered = '';
      const lost = replies;
      replies = [];
      for (const handler of lost) handler?.reject(new Error('connection to Redis lost'));
    });
    socket = s;
  };

  const timer = setInterval(() => {
    if (stopped) return;
    if (!socket || socket.destroyed) open();
    send(socket!, beat);
  }, options.intervalMs);
  const send = (s: Socket, command: Buffer, handler: ReplyHandler = null) => {
    replies.push(handler);
    s.write(command);
  };
  open();

  return {
    release: (started) =>
      new Promise<string>((resolve, reject) => {
        if (stopped) return reject(new Error('liveness stopped'));
        if (!socket || socket.destroyed) open();
        const args = started.flatMap(({ tag, requeue }) => [tag, requeue ? 2 : 1]);
        const script = scripts.releaseHungConsumer.lua;
        send(socket!, encodeCommand(['EVAL', script, 3, UNACKED, UNACKED_INDEX, LEASES, options.consumerId, ...args]), { resolve, reject });
      }).then((status) => {
        const [restored = 0, dropped = 0, requeued = 0] = status.slice(1).split(' ').map(Number);
        return { restored, dropped, requeued };
      }),
    stop: () =>
      new Promise<void>((resolve) => {
        stopped = true;
        clearInterval(timer);
        if (!socket || socket.destroyed) return resolve();
        socket.end(() => resolve());
        setTimeout(() => (socket?.destroy(), resolve()), 1000).unref();
      }),
  };
}
