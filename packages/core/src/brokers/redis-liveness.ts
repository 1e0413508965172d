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
import { connectRedisSocket, encodeCommand, handshakeCommands, openRedisSocket, RedisConnectError } from '../redis-probe.js';
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
  const settings = options.connection ?? resolveRedisConnection(options.url);
  const beat = encodeCommand([
    'EVAL', scripts.heartbeatConsumer.lua, 4, UNACKED, UNACKED_INDEX, CONSUMERS, ownedKey(options.consumerId), options.consumerId, Math.round(options.ttlMs),
  ]);
  let socket: Socket | undefined;
  let stopped = false;
  let buffered = '';
  // One entry per command written, in order (replies here are always one line): every
  // command goes through `send` so an awaited reply (release) lines up with its command.
  let replies: ReplyHandler[] = [];

  let failing = false;
  const failed = (message: string, kind: 'socket' | 'reply') => {
    if (failing) return;
    failing = true;
    options.onError(message, kind);
  };
  // With Sentinel the master is looked up first (asynchronously): beats wait for it.
  let opening: Promise<void> | null = null;
  const open = () => {
    if (!settings.sentinel) return attach(openRedisSocket(settings));
    opening ??= connectRedisSocket(settings)
      .then(attach, (err: unknown) => failed(err instanceof RedisConnectError ? err.reason : describeRedisError(err), 'socket'))
      .finally(() => (opening = null));
  };
  const attach = (s: Socket) => {
    if (stopped) return void s.destroy();
    // Written now, sent in order once connected: the handshake always precedes a beat.
    for (const command of handshakeCommands(settings)) send(s, command);
    s.on('data', (chunk) => {
      buffered += chunk.toString('utf8');
      let end: number;
      while ((end = buffered.indexOf('\r\n')) >= 0) {
        const line = buffered.slice(0, end);
        buffered = buffered.slice(end + 2);
        const handler = replies.shift();
        if (handler && line.startsWith('-')) handler.reject(new Error(line.slice(1)));
        else if (handler) handler.resolve(line);
        else if (line.startsWith('-')) {
          // A demoted master (Sentinel failover): ask the sentinels again on the next beat.
          if (settings.sentinel && /^-(READONLY|MASTERDOWN|LOADING)/.test(line)) s.destroy();
          failed(line.slice(1), 'reply');
        }
        else if (line.startsWith(':') && failing) {
          failing = false;
          options.onRecovered?.();
        }
      }
    });
    s.on('error', (err) => failed(describeRedisError(err), 'socket'));
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
    if (socket && !socket.destroyed) send(socket, beat);
  }, options.intervalMs);
  const send = (s: Socket, command: Buffer, handler: ReplyHandler = null) => {
    replies.push(handler);
    s.write(command);
  };
  open();

  return {
    release: async (started) => {
      if (!stopped && (!socket || socket.destroyed)) {
        open();
        await opening;
      }
      return new Promise<string>((resolve, reject) => {
        if (stopped) return reject(new Error('liveness stopped'));
        if (!socket || socket.destroyed) return reject(new Error('no connection to Redis'));
        const args = started.flatMap(({ tag, requeue }) => [tag, requeue ? 2 : 1]);
        const script = scripts.releaseHungConsumer.lua;
        send(socket, encodeCommand(['EVAL', script, 3, UNACKED, UNACKED_INDEX, ownedKey(options.consumerId), options.consumerId, ...args]), { resolve, reject });
      }).then((status) => {
        const [restored = 0, dropped = 0, requeued = 0] = status.slice(1).split(' ').map(Number);
        return { restored, dropped, requeued };
      });
    },
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
