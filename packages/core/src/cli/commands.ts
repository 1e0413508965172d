import { createInterface } from 'node:readline/promises';
import { appFor } from './load-app.js';
import { workerBanner } from './banner.js';
import { Worker } from '../worker/worker.js';
import type { LogLevel } from '../logger.js';

/** Flags shared by every command. */
export interface ConnectionFlags {
  app?: string;
  broker?: string;
  backend?: string;
}

/** `celeriac worker` flags. */
export interface WorkerFlags extends ConnectionFlags {
  queues?: string;
  concurrency?: string;
  loglevel?: string;
  prefetchMultiplier?: string;
  hostname?: string;
}

function positiveInt(value: string | undefined, flag: string): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0) throw new Error(`${flag} must be a non-negative integer, got ${JSON.stringify(value)}.`);
  return n;
}

/** Run a worker until SIGTERM/SIGINT (warm), or a second signal (cold). */
export async function workerCommand(flags: WorkerFlags, version: string): Promise<void> {
  if (!flags.app) throw new Error('celeriac worker needs -A <module> (the module that exports your app and imports your tasks).');
  const app = await appFor(flags);
  const concurrency = positiveInt(flags.concurrency, '-c/--concurrency');
  if (concurrency !== undefined) app.configure({ workerConcurrency: concurrency });
  const worker = new Worker(app, {
    queues: flags.queues?.split(',').map((q) => q.trim()).filter(Boolean),
    prefetchMultiplier: positiveInt(flags.prefetchMultiplier, '--prefetch-multiplier'),
    hostname: flags.hostname,
    logLevel: (flags.loglevel?.toLowerCase() ?? 'info') as LogLevel,
  });
  process.stdout.write(workerBanner(worker, version) + '\n');
  await worker.start();
  worker.log.info({ hostname: worker.hostname }, `${worker.hostname} ready.`);

  let signals = 0;
  const onSignal = (signal: NodeJS.Signals) => {
    signals++;
    if (signals === 1) {
      worker.log.warn(`worker: Warm shutdown (${signal}); send it again for a cold shutdown`);
      worker
        .stop()
        .then(() => app.close())
        .then(
          () => process.exit(signals > 1 ? 1 : 0),
          (err) => (worker.log.error({ err }, 'Error during shutdown'), process.exit(1)),
        );
    } else if (signals === 2) {
      // Exit now: give back what can be given back within a second, then go.
      worker.log.warn(`worker: Cold shutdown (${signal})`);
      const giveUp = new Promise((resolve) => setTimeout(resolve, 1000).unref());
      void Promise.race([worker.stop({ cold: true }).catch(() => undefined), giveUp]).then(() => process.exit(1));
    }
  };
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);
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

function parseJson<T>(text: string | undefined, flag: string, fallback: T, check: (v: unknown) => boolean): T {
  if (text === undefined) return fallback;
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    throw new Error(`${flag} is not valid JSON (${(err as Error).message}): ${text}`);
  }
  if (!check(value)) throw new Error(`${flag} has the wrong shape: ${text}`);
  return value as T;
}

/** Send a task by name; print its id (and its result with --wait). */
export async function callCommand(name: string, flags: CallFlags): Promise<void> {
  const app = await appFor(flags);
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
  const app = await appFor(flags);
  try {
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
  const app = await appFor(flags);
  const queues = flags.queues?.split(',').map((q) => q.trim()).filter(Boolean) ?? [app.settings.taskDefaultQueue];
  try {
    if (!flags.force) {
      if (!process.stdin.isTTY) throw new Error('purge deletes messages for good: pass -f/--force when not running interactively.');
      const rl = createInterface({ input: process.stdin, output: process.stdout });
      const answer = await rl.question(`WARNING: This will remove all tasks from queue(s) ${queues.join(', ')}. There is no undo. Are you sure? [y/N] `);
      rl.close();
      if (!/^y(es)?$/i.test(answer.trim())) return;
    }
    const broker = await app.getBroker();
    const count = await broker.purge(queues);
    process.stdout.write(`Purged ${count} message${count === 1 ? '' : 's'} from ${queues.length} known task queue${queues.length === 1 ? '' : 's'}.\n`);
  } finally {
    await app.close();
  }
}
