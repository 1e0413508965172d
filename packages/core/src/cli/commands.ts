import { createInterface } from 'node:readline/promises';
import { appFor, type ConnectionFlags } from './load-app.js';
import { UsageError } from './options.js';
import type { Celeriac } from '../app.js';
import { ResultBackendUnavailable } from '../errors.js';
import { resolveRedisConnection } from '../redis-connection.js';
import { probeRedis, RedisConnectError } from '../redis-probe.js';

/** What a client command needs to reach: the broker, the result backend, or both. */
interface Needs {
  broker?: boolean;
  backend?: boolean;
}

const inProcess = (url: string | null | undefined) => !url || url.startsWith('memory://');

/**
 * The app for `call`, `result` and `purge`. A separate process can never reach a
 * worker through memory:// (it lives inside one process), so falling back to it
 * would lose messages silently: fail instead, saying how to name a real one.
 */
async function clientApp(command: string, flags: ConnectionFlags, needs: Needs): Promise<Celeriac> {
  const app = await appFor(flags);
  const s = app.settings;
  if (needs.broker && inProcess(s.brokerUrl)) {
    throw new UsageError(
      `${command} has no broker (memory:// lives inside one process, so no worker would see this): ` +
        'pass -b redis://127.0.0.1:6379/0, set CELERIAC_BROKER_URL (or CELERY_BROKER_URL), or -A a module whose app sets brokerUrl.',
    );
  }
  if (needs.backend && inProcess(s.resultBackend)) {
    throw new UsageError(
      `${command} has no result backend: pass --result-backend redis://127.0.0.1:6379/1, set CELERIAC_RESULT_BACKEND ` +
        '(or CELERY_RESULT_BACKEND), or -A a module whose app sets resultBackend.',
    );
  }
  return app;
}

/**
 * Fail fast, with one line naming the masked URL, when the result backend's Redis
 * does not answer (instead of a timeout that says "still pending", or ioredis's
 * own retry error after ~10 s). Other schemes are left to the backend.
 */
async function ensureBackendReachable(app: Celeriac): Promise<void> {
  const url = app.resultBackendUrl ?? '';
  if (!/^(rediss?|sentinel):/i.test(url)) return;
  const settings = resolveRedisConnection(url, app.settings.resultBackendTransportOptions.redis as Record<string, unknown> | undefined, app.settings.resultBackendTransportOptions);
  try {
    await probeRedis(settings, app.settings.brokerConnectionTimeout * 1000);
  } catch (err) {
    if (!(err instanceof RedisConnectError) || !err.retryable) throw err; // wrong password, TLS...: already says the fix
    throw new ResultBackendUnavailable(`Cannot read results from ${settings.displayUrl}: ${err.reason}. Check that Redis is running and the URL is right.`, settings.displayUrl);
  }
}

/** `celeriac call` flags. */
export interface CallFlags extends ConnectionFlags {
  args?: string;
  kwargs?: string;
  countdown?: string;
  eta?: string;
  expires?: string;
  queue?: string;
  priority?: string;
  wait?: boolean;
  timeout?: string;
}

/** A JSON flag value (`--args`, `--kwargs`): `fallback` when absent; a usage error naming the flag when it does not parse or has the wrong shape. */
export function parseJson<T>(text: string | undefined, flag: string, fallback: T, check: (v: unknown) => boolean): T {
  if (text === undefined) return fallback;
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    throw new UsageError(`${flag} is not valid JSON (${(err as Error).message}): ${text}`);
  }
  if (!check(value)) throw new UsageError(`${flag} has the wrong shape: ${text}`);
  return value as T;
}

/** Send a task by name; print its id (and its result with --wait). */
export async function callCommand(name: string, flags: CallFlags): Promise<void> {
  const app = await clientApp(flags.wait ? 'celeriac call --wait' : 'celeriac call', flags, { broker: true, backend: flags.wait === true });
  const args = parseJson<unknown[]>(flags.args, '--args', [], Array.isArray);
  const kwargs = parseJson<Record<string, unknown>>(flags.kwargs, '--kwargs', {}, (v) => !!v && typeof v === 'object' && !Array.isArray(v));
  const num = (v: string | undefined) => (v === undefined ? undefined : Number(v));
  try {
    const result = await app.sendTask(name, args, kwargs, {
      countdown: num(flags.countdown),
      eta: flags.eta,
      expires: num(flags.expires),
      queue: flags.queue,
      priority: num(flags.priority),
    });
    process.stdout.write(result.id + '\n');
    if (flags.wait) {
      const value = await result.get({ timeout: num(flags.timeout) !== undefined ? num(flags.timeout)! * 1000 : undefined });
      process.stdout.write(JSON.stringify(value) + '\n');
    }
  } finally {
    await app.close();
  }
}

/** Print a task's result (waits for it, like `celery result`). */
export async function resultCommand(id: string, flags: ConnectionFlags & { timeout?: string; noWait?: boolean }): Promise<void> {
  const app = await clientApp('celeriac result', flags, { backend: true });
  try {
    await ensureBackendReachable(app);
    const result = app.AsyncResult(id);
    if (flags.noWait) {
      const snap = await result.refresh();
      process.stdout.write(JSON.stringify({ state: snap.state, result: snap.result instanceof Error ? `${snap.result.name}: ${snap.result.message}` : snap.result }) + '\n');
      return;
    }
    const value = await result.get({ timeout: flags.timeout ? Number(flags.timeout) * 1000 : undefined, propagate: false });
    if (value instanceof Error) {
      process.stdout.write(`${value.name}: ${value.message}\n`);
      process.exitCode = 1;
    } else process.stdout.write(JSON.stringify(value) + '\n');
  } finally {
    await app.close();
  }
}

/** Remove all waiting messages from the queues (asks first unless --force). */
export async function purgeCommand(flags: ConnectionFlags & { queues?: string; force?: boolean }): Promise<void> {
  const app = await clientApp('celeriac purge', flags, { broker: true });
  const queues = flags.queues?.split(',').map((q) => q.trim()).filter(Boolean) ?? [app.settings.taskDefaultQueue];
  try {
    if (!flags.force) {
      if (!process.stdin.isTTY) throw new Error('purge deletes messages for good: pass -f/--force when not running interactively.');
      const rl = createInterface({ input: process.stdin, output: process.stdout });
      const answer = await rl.question(`WARNING: This will remove all tasks from queue(s) ${queues.join(', ')}. There is no undo. Are you sure? [y/N] `);
      rl.close();
      if (!/^y(es)?$/i.test(answer.trim())) return;
    }
    const count = await app.withBroker('purge queues on', (broker) => broker.purge(queues));
    process.stdout.write(`Purged ${count} message${count === 1 ? '' : 's'} from ${queues.length} known task queue${queues.length === 1 ? '' : 's'}.\n`);
  } finally {
    await app.close();
  }
}
