/**
 * One pool thread (worker_threads) or child process (child_process.fork) behind
 * the same small interface: send a message, hear messages and the exit, kill.
 * Both run `pool-child` and load the worker's app module.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { basename, join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { moduleRoot } from '../module-root.cjs';
import { Worker as Thread } from 'node:worker_threads';
import type { ChildConfig, FromChild, ToChild } from './pool-protocol.js';

/** A running pool thread or child process. */
export interface Executor {
  /** `ForkPoolWorker-3` / `ThreadPoolWorker-3`, as Celery names its children. */
  readonly label: string;
  /** Process id (the worker's own for a thread). */
  pid: number;
  send(message: ToChild): void;
  onMessage(handler: (message: FromChild) => void): void;
  /** Called once when it has exited, with how (`exitcode 1`, `signal 9 (SIGKILL)`). */
  onExit(handler: (how: string) => void): void;
  /** Stop it now (hard time limit, shutdown): SIGKILL, or `signal` for a child process (a thread is terminated whatever the signal). */
  kill(signal?: NodeJS.Signals): void;
}

/** How to start pool members. */
export interface ExecutorOptions {
  config: ChildConfig;
  /** V8 old-space limit per thread/child in MB (a task allocating without bound kills only its own). */
  heapLimitMb?: number;
}

// The entry sits beside this file: .js when compiled, .ts when run from source through tsx.
// Both builds run the ESM one (a thread or child process loads the app module with import()).
const entryRoot = basename(moduleRoot) === 'cjs' ? join(moduleRoot, '..', 'esm') : moduleRoot;
const entry = ['pool-child.js', 'pool-child.ts'].map((f) => join(entryRoot, 'worker', f)).find((f) => existsSync(f)) ?? join(entryRoot, 'worker', 'pool-child.js');

/**
 * V8 heap flags (the `celeriac` bin adds the first two): a thread's `execArgv` may not
 * hold them (ERR_WORKER_INVALID_EXEC_ARGV), and it needs not: V8 flags apply to every
 * isolate of the process. A child process gets them, as it gets no other way.
 */
const V8_HEAP_FLAG = /^--(max[-_]semi[-_]space[-_]size|heap[-_]growing[-_]percent|min[-_]semi[-_]space[-_]size|semi[-_]space[-_]growth[-_]factor|max[-_]heap[-_]size|initial[-_]heap[-_]size|initial[-_]old[-_]space[-_]size|optimize[-_]for[-_]size)(=|$)/;

/** Node flags worth passing on (loaders such as tsx), not the test runner's or the inspector's; for a thread, no V8 heap flags. */
function inheritedExecArgv(forThread = false): string[] {
  const out: string[] = [];
  const argv = process.execArgv;
  for (let i = 0; i < argv.length; i++) {
    const flag = argv[i]!;
    if (/^--(test|inspect|debug|watch|max-old-space-size)/.test(flag)) continue;
    if (forThread && V8_HEAP_FLAG.test(flag)) continue;
    out.push(flag);
    if ((flag === '--import' || flag === '--require' || flag === '-r' || flag === '--loader' || flag === '--conditions' || flag === '-C') && i + 1 < argv.length) out.push(argv[++i]!);
  }
  return out;
}

const SIGNALS: Record<string, number> = { SIGKILL: 9, SIGTERM: 15, SIGABRT: 6, SIGSEGV: 11, SIGINT: 2 };

/** Start a pool thread. */
export function spawnThread(index: number, options: ExecutorOptions): Executor {
  // Run from TypeScript source (tests, tsx users): a thread does not inherit the tsx loader, so register it first.
  const fromSource = entry.endsWith('.ts');
  const bootstrap = `import('tsx/esm/api').then((api) => { api.register(); return import(${JSON.stringify(pathToFileURL(entry).href)}); })`;
  const thread = new Thread(fromSource ? bootstrap : entry, {
    eval: fromSource,
    workerData: options.config,
    execArgv: inheritedExecArgv(true),
    ...(options.heapLimitMb ? { resourceLimits: { maxOldGenerationSizeMb: options.heapLimitMb } } : {}),
  });
  let exitHandler: ((how: string) => void) | undefined;
  let lastError: Error | undefined;
  let exited = false;
  thread.on('error', (err) => (lastError = err));
  thread.on('exit', (code) => {
    exited = true;
    const why = lastError ? `${lastError.name === 'Error' ? '' : `${lastError.name}: `}${lastError.message}`.trim() : `exitcode ${code}`;
    exitHandler?.(lastError && (lastError as { code?: string }).code === 'ERR_WORKER_OUT_OF_MEMORY' ? `out of memory (${why})` : why);
  });
  return {
    label: `ThreadPoolWorker-${index}`,
    pid: process.pid,
    send: (m) => thread.postMessage(m),
    onMessage: (h) => thread.on('message', h),
    onExit: (h) => (exitHandler = h),
    kill: () => {
      if (!exited) void thread.terminate();
    },
  };
}

/** Start a pool child process. */
export function spawnProcess(index: number, options: ExecutorOptions): Executor {
  const execArgv = [...inheritedExecArgv(), ...(options.heapLimitMb ? [`--max-old-space-size=${options.heapLimitMb}`] : [])];
  const child: ChildProcess = fork(entry, [JSON.stringify(options.config)], { serialization: 'advanced', execArgv, stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  let exitHandler: ((how: string) => void) | undefined;
  child.on('error', () => undefined); // a send to a dead child: its exit is what counts
  child.on('exit', (code, signal) => {
    exitHandler?.(signal ? `signal ${SIGNALS[signal] ?? '?'} (${signal})` : `exitcode ${code}`);
  });
  return {
    label: `ForkPoolWorker-${index}`,
    pid: child.pid ?? 0,
    send: (m) => {
      child.send(m);
    },
    onMessage: (h) => child.on('message', (m) => h(m as FromChild)),
    onExit: (h) => (exitHandler = h),
    kill: (signal = 'SIGKILL') => {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
    },
  };
}
