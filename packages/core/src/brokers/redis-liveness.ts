/**
 * Keep a consumer alive in Redis from a heartbeat thread, on one plain socket.
 *
 * The thread only runs the `heartbeatConsumer` script every few seconds, so it
 * speaks just enough RESP for that (AUTH, SELECT, EVAL; replies are one line)
 * instead of loading ioredis: that halves the thread's memory (~9 MB instead of
 * ~20 MB). Promotion and restores stay with the worker's main connection.
 */
import type { Socket } from 'node:net';
import { describeRedisError, resolveRedisConnection, type RedisConnectionSettings } from '../redis-connection.js';
import { encodeCommand, handshakeCommands, openRedisSocket } from '../redis-probe.js';
import { CONSUMERS, ownedKey, UNACKED, UNACKED_INDEX } from './redis-keys.js';
import { scripts } from './redis-scripts.js';

export { encodeCommand };

/** What the liveness loop needs. */
export interface LivenessOptions {
  url: string;
  /** The broker's resolved connection (password, db, TLS): the same as every other client. Default: from `url`. */
  connection?: RedisConnectionSettings;
  consumerId: string;
  ttlMs: number;
  intervalMs: number;
  /**
   * Called with a readable reason when beats start failing (`socket`: no
   * connection; `reply`: the server refused, e.g. NOAUTH), once until they work again.
   */
  onError: (message: string, kind?: 'socket' | 'reply') => void;
  /** Called once when beats work again after `onError`. */
  onRecovered?: () => void;
}

/** Beat every `intervalMs` until stopped; reconnects after errors. */
export function startLiveness(options: LivenessOptions): { stop(): Promise<void> } {
  const settings = options.connection ?? resolveRedisConnection(options.url);
  const beat = encodeCommand([
    'EVAL', scripts.heartbeatConsumer.lua, 4, UNACKED, UNACKED_INDEX, CONSUMERS, ownedKey(options.consumerId), options.consumerId, Math.round(options.ttlMs),
  ]);
  let socket: Socket | undefined;
  let stopped = false;
  let buffered = '';

  let failing = false;
  const failed = (message: string, kind: 'socket' | 'reply') => {
    if (failing) return;
    failing = true;
    options.onError(message, kind);
  };
  const open = () => {
    const s = openRedisSocket(settings);
    // Written now, sent in order once connected: the handshake always precedes a beat.
    for (const command of handshakeCommands(settings)) s.write(command);
    s.on('data', (chunk) => {
      buffered += chunk.toString('utf8');
      let end: number;
      while ((end = buffered.indexOf('\r\n')) >= 0) {
        const line = buffered.slice(0, end);
        buffered = buffered.slice(end + 2);
        if (line.startsWith('-')) failed(line.slice(1), 'reply');
        else if (line.startsWith(':') && failing) {
          failing = false;
          options.onRecovered?.();
        }
      }
    });
    s.on('error', (err) => failed(describeRedisError(err), 'socket'));
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
