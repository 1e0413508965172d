/**
 * Raw RESP over one socket, for the two places that do not need ioredis: the
 * start-up probe (can we connect, log in, select the database, is it a single
 * node?) and the heartbeat thread. Both open the socket from the same
 * `RedisConnectionSettings` as every ioredis client (see redis-connection.ts).
 */
import { connect as connectTcp, type Socket } from 'node:net';
import { connect as connectTls } from 'node:tls';
import { ConnectError, TLS_ERROR_CODES } from './errors.js';
import { describeRedisError, type RedisConnectionSettings } from './redis-connection.js';
import { encodeCommand, ReplyReader } from './redis-resp.js';
import { resolveMasterAddress } from './redis-sentinel-lookup.js';

export { encodeCommand };

/** AUTH / SELECT commands the settings ask for, sent before anything else. */
export function handshakeCommands(settings: RedisConnectionSettings): Buffer[] {
  const commands: Buffer[] = [];
  if (settings.password) commands.push(encodeCommand(settings.username ? ['AUTH', settings.username, settings.password] : ['AUTH', settings.password]));
  if (settings.db) commands.push(encodeCommand(['SELECT', settings.db]));
  return commands;
}

/**
 * A plain or TLS socket to the server (TLS options as resolved: CA, client cert,
 * servername). With Sentinel settings, `address` (the master, from
 * `connectRedisSocket`) is required: `host`/`port` are a sentinel's.
 */
export function openRedisSocket(settings: RedisConnectionSettings, address?: { host: string; port: number }): Socket {
  if (settings.sentinel && !address) throw new Error(`openRedisSocket(${settings.displayUrl}): a Sentinel connection needs the master's address (use connectRedisSocket)`);
  const { host, port } = address ?? settings;
  const { tls } = settings;
  const socket = tls ? connectTls({ host, port, servername: tls.servername ?? (isIpAddress(host) ? undefined : host), ...tls }) : connectTcp({ host, port });
  socket.setNoDelay(true);
  return socket;
}

/**
 * `openRedisSocket` after finding the server: with Sentinel settings, the master
 * the sentinels name now. Rejects with a `RedisConnectError` when no sentinel
 * names one (not retryable for an unknown master name or a refused sentinel login).
 */
export async function connectRedisSocket(settings: RedisConnectionSettings, timeoutMs = 2000): Promise<Socket> {
  if (!settings.sentinel) return openRedisSocket(settings);
  const found = await resolveMasterAddress(settings.sentinel, timeoutMs);
  if (!found.ok) throw new RedisConnectError(settings.displayUrl, found.reason, found.retryable, found.fix);
  return openRedisSocket(settings, found.address);
}

function isIpAddress(host: string): boolean {
  return /^[\d.]+$/.test(host) || host.includes(':');
}

/** Why a Redis server cannot be used; `retryable` is false for mistakes that waiting will not fix. */
export class RedisConnectError extends ConnectError {
  override name = 'RedisConnectError';
}


/**
 * Connect once, log in, select the database and check the server is not in
 * cluster mode, then hang up. Rejects with a `RedisConnectError`: retryable for
 * refused/unreachable/timed out, not retryable for a wrong password, a database
 * out of range, a TLS certificate problem or a cluster node.
 */
export function probeRedis(settings: RedisConnectionSettings, timeoutMs = 4000): Promise<void> {
  const started = Date.now();
  return connectRedisSocket(settings, timeoutMs).then((socket) => probeSocket(settings, socket, Math.max(1, timeoutMs - (Date.now() - started))));
}

function probeSocket(settings: RedisConnectionSettings, socket: Socket, timeoutMs: number): Promise<void> {
  const url = settings.displayUrl;
  return new Promise<void>((resolve, reject) => {
    const steps: ('auth' | 'select' | 'info')[] = [];
    if (settings.password) steps.push('auth');
    if (settings.db) steps.push('select');
    steps.push('info');
    let settled = false;
    const finish = (err?: RedisConnectError) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.destroy();
      if (err) reject(err);
      else resolve();
    };
    const timer = setTimeout(() => finish(new RedisConnectError(url, `no answer within ${timeoutMs} ms`, true)), timeoutMs);
    socket.on('error', (err) => {
      const code = (err as NodeJS.ErrnoException).code ?? '';
      if (TLS_ERROR_CODES.test(code) || /certificate|ssl|tls/i.test(err.message)) {
        return finish(new RedisConnectError(url, `TLS handshake failed (${err.message})`, false,
          'Give the server\'s CA with ?ssl_ca_certs=/path/ca.pem in the URL or the redis.tls.ca transport option, or use redis:// if the server does not speak TLS.'));
      }
      finish(new RedisConnectError(url, describeRedisError(err), true));
    });
    socket.on('close', () => finish(new RedisConnectError(url, 'Connection closed by the server', true)));
    for (const command of handshakeCommands(settings)) socket.write(command);
    socket.write(encodeCommand(['INFO', 'cluster']));
    const reader = new ReplyReader();
    socket.on('data', (chunk: Buffer) => {
      for (const reply of reader.push(chunk)) {
        const step = steps.shift();
        // Like ioredis: a password sent to a server without one is only a warning.
        if (reply.error !== undefined && step === 'auth' && /without any password configured|no password is set/i.test(reply.error)) continue;
        if (reply.error !== undefined) return finish(classifyReplyError(settings, step, reply.error));
        if (step === 'info') {
          if (/^cluster_enabled:1\s*$/m.test(reply.text ?? '')) {
            return finish(new RedisConnectError(url, 'the server runs in cluster mode', false,
              'Redis Cluster is not supported (kombu does not support it either): point the URL at a single, non-cluster Redis node.'));
          }
          return finish();
        }
      }
    });
  });
}

function classifyReplyError(settings: RedisConnectionSettings, step: string | undefined, error: string): RedisConnectError {
  const url = settings.displayUrl;
  const firstLine = error.split('\n', 1)[0]!.replace(/\.+$/, '');
  if (/^(NOAUTH|WRONGPASS)|invalid password|invalid username-password/i.test(firstLine) || step === 'auth') {
    const reason = settings.password ? `authentication failed (${firstLine})` : `the server requires a password (${firstLine})`;
    return new RedisConnectError(url, reason, false,
      'Check the password: redis://:PASSWORD@host:6379/0 (or user:PASSWORD@ with ACL users), ?password= in the URL, or the redis.password transport option.');
  }
  if (step === 'select' || /DB index/i.test(firstLine)) {
    return new RedisConnectError(url, `database ${settings.db} cannot be selected (${firstLine})`, false,
      'Use a database number the server has (0 to `databases` - 1, 0..15 by default) in the URL path: redis://host:6379/<db>.');
  }
  if (/LOADING/.test(firstLine)) return new RedisConnectError(url, 'the server is loading its data set', true);
  return new RedisConnectError(url, firstLine, false);
}
