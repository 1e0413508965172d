/**
 * `celeriac worker -A test/apps/worker-app.ts` as a child process, for fault tests
 * that pause (SIGSTOP/SIGCONT) or kill (SIGKILL) workers by PID.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';

const CLI = ['--import', 'tsx', 'packages/core/src/cli/main.ts'];

/** A running worker process. */
export interface WorkerProcess {
  child: ChildProcess;
  pid: number;
  /** Everything it printed so far (stdout and stderr). */
  output: () => string;
  exited: Promise<number | null>;
  signal(signal: NodeJS.Signals): void;
  /** Resolve once the output matches `pattern` (the logger writes asynchronously: a line may follow what it reports). */
  waitFor(pattern: RegExp, timeoutMs?: number): Promise<void>;
}

/** How to start a worker process; every field optional. */
export interface WorkerProcessOptions {
  /** Added to the environment (e.g. CELERIAC_TEST_STARTLOG). */
  env?: Record<string, string>;
  /** Extra CLI arguments, after the defaults (`-c 4 -l info`): a later `-c` wins. */
  args?: string[];
  /** The `-A` spec. Default test/apps/worker-app.ts. */
  app?: string;
  /** Resolve once it logged "ready." (default), or at once with false. */
  waitReady?: boolean;
}

/** Spawn a worker of `app` (a `-A` spec); resolve once it logged "ready." unless `waitReady` is false. `children` collects it for cleanup. */
export function spawnWorkerProcess(
  urls: { broker: string; backend: string },
  children: Set<ChildProcess>,
  { env = {}, args = [], app = 'test/apps/worker-app.ts', waitReady = true }: WorkerProcessOptions = {},
): Promise<WorkerProcess> {
  const child = spawn(process.execPath, [...CLI, 'worker', '-A', app, '--broker', urls.broker, '--backend', urls.backend, '-c', '4', '-l', 'info', ...args], {
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  children.add(child);
  let out = '';
  child.stdout!.on('data', (d) => (out += d));
  child.stderr!.on('data', (d) => (out += d));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => (children.delete(child), resolve(code))));
  const worker: WorkerProcess = {
    child,
    pid: child.pid!,
    output: () => out,
    exited,
    signal: (s) => process.kill(child.pid!, s),
    waitFor: (pattern, timeoutMs = 10_000) => waitFor(() => pattern.test(out), timeoutMs, `worker output matching ${pattern}`).catch((err: Error) => {
      throw new Error(`${err.message}:\n${out}`);
    }),
  };
  if (!waitReady) return Promise.resolve(worker);
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`worker did not start:\n${out}`)), 30_000);
    const check = () => {
      if (out.includes(' ready.')) {
        clearTimeout(timer);
        resolve(worker);
      }
    };
    child.stdout!.on('data', check);
    child.stderr!.on('data', check);
    child.once('exit', () => reject(new Error(`worker exited early:\n${out}`)));
  });
}

/** Start a worker of `app` (a `-A` spec) and resolve once it logged "ready.". `children` collects it for cleanup. */
export function startWorkerProcess(
  urls: { broker: string; backend: string },
  children: Set<ChildProcess>,
  extraEnv: Record<string, string> = {},
  args: string[] = [],
  app = 'test/apps/worker-app.ts',
): Promise<WorkerProcess> {
  return spawnWorkerProcess(urls, children, { env: extraEnv, args, app });
}

/** Poll `check` every 25 ms until it holds; throw after `timeoutMs`. */
export async function waitFor(check: () => boolean | Promise<boolean>, timeoutMs = 10_000, what = 'condition'): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`${what} not met within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

/** Lines of a log file the test apps append to (`<tag> <pid>` per line); [] when absent. */
export function logLines(file: string): string[] {
  return existsSync(file) ? readFileSync(file, 'utf8').trim().split('\n').filter(Boolean) : [];
}
