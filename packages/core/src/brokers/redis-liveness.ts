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
import { CONSUMERS, ownedKey, UNACKED, UNACKED_INDEX } from './redis-keys.js';
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

/** Beat every `intervalMs` until stopped; reconnects after errors. */
export function startLiveness(options: LivenessOptions): { stop(): Promise<void> } {
  const url = new URL(options.url);
  const beat = encodeCommand([
    'EVAL', scripts.heartbeatConsumer.lua, 4, UNACKED, UNACKED_INDEX, CONSUMERS, ownedKey(options.consumerId), options.consumerId, Math.round(options.ttlMs),
  ]);
  let socket: Socket | undefined;
  let stopped = false;
  let buffered = '';

  const open = () => {
    const port = Number(url.port || 6379);
    const host = url.hostname.replace(/^\[|\]$/g, '') || '127.0.0.1';
    const s = url.protocol === 'rediss:' ? connectTls({ host, port, servername: host }) : connectTcp({ host, port });
    s.setNoDelay(true);
    // Written now, sent in order once connected: the handshake always precedes a beat.
    for (const command of handshakeCommands(url)) s.write(command);
    s.on('data', (chunk) => {
      buffered += chunk.toString('utf8');
      let end: number;
      while ((end = buffered.indexOf('\r\n')) >= 0) {
        const line = buffered.slice(0, end);
        buffered = buffered.slice(end + 2);
        if (line.startsWith('-')) options.onError(line.slice(1));
      }
    });
    s.on('error', (err) => options.onError(err.message));
    s.on('close', () => {
      if (socket === s) socket = undefined;
      buffered = '';
    });
    socket = s;
  };

  const timer = setInterval(() => {
    if (stopped) return;
    if (!socket || socket.destroyed) open();
    socket!.write(beat);
  }, options.intervalMs);
  open();

  return {
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
