/**
 * Ask Redis Sentinel where the master is, over one raw socket per sentinel, for the
 * clients that do not use ioredis: the start-up probe, the heartbeat thread and the
 * thread's lost-result writer. (ioredis clients do the same lookup themselves from
 * the same `RedisSentinelSettings`.)
 */
import { connect, type Socket } from 'node:net';
import { describeRedisError } from './redis-connection.js';
import { encodeCommand, ReplyReader } from './redis-resp.js';
import type { RedisSentinelSettings, SentinelAddress } from './redis-sentinel.js';

/** What the sentinels said: the master's address, or why there is none. */
export type MasterLookup =
  | { ok: true; address: SentinelAddress }
  | {
      ok: false;
      /** Short reason, e.g. `no sentinel reachable (127.0.0.1:26379: Connection refused)`. */
      reason: string;
      /** False when waiting will not help (unknown master name, sentinel password refused). */
      retryable: boolean;
      fix: string;
    };

type OneAnswer = { address: SentinelAddress } | { unknown: true } | { authError: string } | { failed: string };

/** Ask each sentinel in turn (`SENTINEL get-master-addr-by-name`); the first address wins. */
export async function resolveMasterAddress(sentinel: RedisSentinelSettings, timeoutMs = 2000): Promise<MasterLookup> {
  const answers: string[] = [];
  let unknown = 0;
  let authError: string | undefined;
  for (const address of sentinel.sentinels) {
    const answer = await askSentinel(address, sentinel, sentinel.sentinelCommandTimeoutMs ?? timeoutMs);
    const where = `${address.host}:${address.port}`;
    if ('address' in answer) return { ok: true, address: answer.address };
    if ('unknown' in answer) {
      unknown++;
      answers.push(`${where}: no master named ${JSON.stringify(sentinel.masterName)}`);
    } else if ('authError' in answer) {
      authError = answer.authError;
      answers.push(`${where}: ${answer.authError}`);
    } else answers.push(`${where}: ${answer.failed}`);
  }
  if (authError !== undefined) {
    return {
      ok: false,
      reason: `a sentinel refused the login (${answers.join('; ')})`,
      retryable: false,
      fix: "Give the sentinels' own password as sentinel_kwargs: { password: '...' } in the transport options (the URL's password is the master's).",
    };
  }
  if (unknown > 0 && unknown === answers.length) {
    return {
      ok: false,
      reason: `the sentinels know no master named ${JSON.stringify(sentinel.masterName)} (${answers.join('; ')})`,
      retryable: false,
      fix: "Set master_name (masterName) to the name in the sentinels' `sentinel monitor <name> ...` line (redis-cli -p 26379 SENTINEL MASTERS lists them).",
    };
  }
  return { ok: false, reason: `no sentinel gave the master's address (${answers.join('; ')})`, retryable: true, fix: '' };
}

function askSentinel(address: SentinelAddress, sentinel: RedisSentinelSettings, timeoutMs: number): Promise<OneAnswer> {
  return new Promise<OneAnswer>((resolve) => {
    const socket: Socket = connect({ host: address.host, port: address.port });
    socket.setNoDelay(true);
    const steps: ('auth' | 'header' | 'host' | 'port')[] = [];
    if (sentinel.sentinelPassword) {
      steps.push('auth');
      const auth = sentinel.sentinelUsername ? ['AUTH', sentinel.sentinelUsername, sentinel.sentinelPassword] : ['AUTH', sentinel.sentinelPassword];
      socket.write(encodeCommand(auth));
    }
    steps.push('header', 'host', 'port');
    socket.write(encodeCommand(['SENTINEL', 'get-master-addr-by-name', sentinel.masterName]));
    let host = '';
    let settled = false;
    const finish = (answer: OneAnswer) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.destroy();
      resolve(answer);
    };
    const timer = setTimeout(() => finish({ failed: `no answer within ${timeoutMs} ms` }), timeoutMs);
    socket.on('error', (err) => finish({ failed: describeRedisError(err) }));
    socket.on('close', () => finish({ failed: 'Connection closed by the sentinel' }));
    const reader = new ReplyReader();
    socket.on('data', (chunk: Buffer) => {
      for (const reply of reader.push(chunk)) {
        const step = steps.shift();
        if (step === 'auth') {
          if (reply.error !== undefined && !/without any password configured|no password is set/i.test(reply.error)) return finish({ authError: reply.error });
          continue;
        }
        if (reply.error !== undefined) {
          return finish(/^(NOAUTH|WRONGPASS)/.test(reply.error) ? { authError: reply.error } : { failed: reply.error });
        }
        if (step === 'header' && reply.text === '-1') return finish({ unknown: true });
        if (step === 'host') host = reply.text ?? '';
        if (step === 'port') return finish({ address: { host, port: Number(reply.text) } });
      }
    });
  });
}
