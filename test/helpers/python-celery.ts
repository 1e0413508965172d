/**
 * Python Celery 5.2 peers for the interop tests, and a Celeriac worker run through
 * its CLI: start them on a test's own redis-server, wait until they are ready,
 * and stop them by PID. Python is always the system interpreter
 * (`/usr/bin/python3`, Debian's python3-celery), never whatever is on PATH.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Redis } from 'ioredis';
import { IN_CI, SYSTEM_PYTHON, missing, stopChild, type RedisServer } from './services.ts';

const here = dirname(fileURLToPath(import.meta.url));
/** Repository root (where the CLI is run from). */
export const REPO_ROOT = join(here, '../..');
/** test/python: the Python task module and producer scripts. */
export const PY_DIR = join(here, '../python');
/** The Celeriac CLI entry, run from source through tsx. */
export const CLI_MAIN = join(REPO_ROOT, 'packages/core/src/cli/main.ts');

/**
 * Why Python Celery cannot be used, or null when it can. Outside CI a missing
 * interpreter or package skips the tests loudly; with CI=true it throws.
 */
export function pythonCeleryMissing(): string | null {
  const noPython = missing(SYSTEM_PYTHON, 'Debian python3 with python3-celery');
  if (noPython) return noPython;
  const probe = spawnSync(SYSTEM_PYTHON, ['-c', 'import celery, redis, sys; sys.stdout.write(celery.__version__)'], { env: pythonEnv({}), encoding: 'utf8' });
  if (probe.status === 0 && probe.stdout.startsWith('5.')) return null;
  const why = `${SYSTEM_PYTHON} cannot import celery 5 and redis (${(probe.stderr || probe.stdout || '').trim().split('\n').pop()}); apt-get install python3-celery python3-redis`;
  if (IN_CI) throw new Error(`CI=${process.env.CI} and ${why}`);
  console.warn(`\n*** SKIPPING: ${why} ***\n`);
  return why;
}

/** Environment URLs shared by both languages (see test/python/interop_tasks.py). */
export interface InteropEnv {
  INTEROP_BROKER_URL: string;
  INTEROP_BACKEND_URL: string;
  INTEROP_RECORD_URL: string;
  /** kombu `visibility_timeout` (seconds) for the Python side; unset = kombu's 3600. */
  INTEROP_VISIBILITY_TIMEOUT?: string;
}

/** Broker db 0, backend db 1, execution log db 2 on one redis-server. */
export function interopEnv(redis: RedisServer): InteropEnv {
  return { INTEROP_BROKER_URL: redis.url(0), INTEROP_BACKEND_URL: redis.url(1), INTEROP_RECORD_URL: redis.url(2) };
}

/** A clean environment for the system interpreter (no pyenv leftovers). */
function pythonEnv(extra: Record<string, string>): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, ...extra, PYTHONPATH: PY_DIR, PYTHONUNBUFFERED: '1', PYTHONDONTWRITEBYTECODE: '1' };
  delete env.PYTHONHOME;
  delete env.PYENV_VERSION;
  return env;
}

/** A worker process we started: its output so far, and how to stop it. */
export interface PeerProcess {
  pid: number;
  child: ChildProcess;
  /** stdout + stderr so far. */
  output(): string;
  /** Warm shutdown (SIGTERM), SIGKILL after the grace period. */
  stop(graceMs?: number): Promise<void>;
}

function track(child: ChildProcess, label: string): { output: () => string } {
  let out = '';
  const add = (chunk: Buffer) => {
    out += chunk.toString('utf8');
    if (process.env.INTEROP_VERBOSE) process.stderr.write(`[${label}] ${chunk.toString('utf8')}`);
  };
  child.stdout?.on('data', add);
  child.stderr?.on('data', add);
  return { output: () => out };
}

async function waitForOutput(child: ChildProcess, output: () => string, pattern: RegExp, label: string, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (pattern.test(output())) return;
    if (child.exitCode !== null || child.signalCode !== null) {
      throw new Error(`${label} exited (${child.exitCode ?? child.signalCode}) before it was ready:\n${output().slice(-4000)}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`${label} not ready within ${timeoutMs} ms:\n${output().slice(-4000)}`);
}

function peer(child: ChildProcess, tracked: { output: () => string }): PeerProcess {
  return {
    pid: child.pid!,
    child,
    output: tracked.output,
    stop: (graceMs = 10_000) => stopChild(child, graceMs),
  };
}

/** Options for a Python Celery worker on `interop_tasks`. */
export interface PythonWorkerOptions {
  env: InteropEnv;
  /** Node name, default `py@interop`. */
  hostname?: string;
  queues?: string[];
  /** `solo` (default) or `prefork`. */
  pool?: 'solo' | 'prefork' | 'threads';
  concurrency?: number;
  loglevel?: string;
  /** Extra CLI arguments. */
  extraArgs?: string[];
  /** The `-A` module in test/python. Default `interop_tasks`. */
  module?: string;
  /** Send worker heartbeat events (default off: `--without-heartbeat`); a monitor needs them to see the worker online. */
  heartbeat?: boolean;
}

/**
 * Start `python3 -m celery -A interop_tasks worker` (no gossip/mingle/heartbeat)
 * and resolve once it logged "ready.".
 */
export async function startPythonWorker(options: PythonWorkerOptions): Promise<PeerProcess> {
  const hostname = options.hostname ?? 'py@interop';
  const args = [
    '-m', 'celery', '-A', options.module ?? 'interop_tasks', 'worker',
    '-P', options.pool ?? 'solo',
    '-c', String(options.concurrency ?? 1),
    '-l', options.loglevel ?? 'info',
    '-n', hostname,
    '-Q', (options.queues ?? ['celery']).join(','),
    '--without-gossip', '--without-mingle',
    ...(options.heartbeat ? [] : ['--without-heartbeat']),
    ...(options.extraArgs ?? []),
  ];
  const child = spawn(SYSTEM_PYTHON, args, { cwd: PY_DIR, env: pythonEnv({ ...options.env }), stdio: ['ignore', 'pipe', 'pipe'] });
  const tracked = track(child, hostname);
  const p = peer(child, tracked);
  try {
    await waitForOutput(child, tracked.output, /\bready\.$/m, `Python worker ${hostname}`, 30_000);
  } catch (err) {
    await p.stop(2000);
    throw err;
  }
  return p;
}

/** Options for a Celeriac worker run through the CLI. */
export interface CeleriacWorkerOptions {
  /** `-A` spec, relative to the repo root, e.g. `test/apps/interop-app.ts`. */
  app: string;
  env: InteropEnv;
  hostname?: string;
  queues?: string[];
  concurrency?: number;
  loglevel?: string;
  /** Extra CLI arguments (e.g. `-E`). */
  extraArgs?: string[];
}

/**
 * Start `celeriac worker -A <app> --broker <url> --backend <url>` in its own
 * process (`node --import tsx packages/core/src/cli/main.ts`) and resolve once it
 * logged "ready.".
 */
export async function startCeleriacWorker(options: CeleriacWorkerOptions): Promise<PeerProcess> {
  const hostname = options.hostname ?? 'ts@interop';
  const args = [
    '--import', 'tsx', CLI_MAIN, 'worker',
    '-A', options.app,
    '--broker', options.env.INTEROP_BROKER_URL,
    '--backend', options.env.INTEROP_BACKEND_URL,
    '-n', hostname,
    '-l', options.loglevel ?? 'info',
    ...(options.queues ? ['-Q', options.queues.join(',')] : []),
    ...(options.concurrency !== undefined ? ['-c', String(options.concurrency)] : []),
    ...(options.extraArgs ?? []),
  ];
  const child = spawn(process.execPath, args, { cwd: REPO_ROOT, env: { ...process.env, ...options.env }, stdio: ['ignore', 'pipe', 'pipe'] });
  const tracked = track(child, hostname);
  const p = peer(child, tracked);
  try {
    await waitForOutput(child, tracked.output, new RegExp(`${hostname.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')} ready\\.`), `Celeriac worker ${hostname}`, 30_000);
  } catch (err) {
    await p.stop(2000);
    throw err;
  }
  return p;
}

/**
 * Run `python3 test/python/producer.py <case> [...args]` and parse the one JSON
 * line it prints. Rejects with its stderr when it fails or runs too long (the
 * process is killed by PID).
 */
export async function runPythonProducer<T = Record<string, unknown>>(caseName: string, env: InteropEnv, args: string[] = [], timeoutMs = 30_000, scriptName = 'producer.py'): Promise<T> {
  const script = join(PY_DIR, scriptName);
  if (!existsSync(script)) throw new Error(`${script} is missing`);
  const child = spawn(SYSTEM_PYTHON, [script, caseName, ...args], { cwd: PY_DIR, env: pythonEnv({ ...env }), stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (c: Buffer) => (stdout += c.toString('utf8')));
  child.stderr!.on('data', (c: Buffer) => (stderr += c.toString('utf8')));
  const timer = setTimeout(() => {
    if (child.exitCode === null && child.pid !== undefined) process.kill(child.pid, 'SIGKILL');
  }, timeoutMs);
  const code = await new Promise<number | null>((resolve) => child.once('exit', (c) => resolve(c)));
  clearTimeout(timer);
  if (code !== 0) throw new Error(`producer.py ${caseName} exited with ${code ?? 'a signal (timeout?)'}:\n${stderr.slice(-4000)}\n${stdout.slice(-2000)}`);
  const line = stdout.trim().split('\n').pop() ?? '';
  try {
    return JSON.parse(line) as T;
  } catch {
    throw new Error(`producer.py ${caseName} printed no JSON:\n${stdout.slice(-2000)}\n${stderr.slice(-2000)}`);
  }
}

/** What a kombu Redis broker holds for a queue: ready messages and unacked entries. */
export interface BrokerState {
  /** LLEN of the queue and its priority lists (`q`, `q\x06\x163`, `…6`, `…9`). */
  ready: number;
  /** HLEN unacked. */
  unacked: number;
  /** ZCARD unacked_index. */
  unackedIndex: number;
  /**
   * Celeriac's keys that hold messages or their ownership: `_celeriac.eta` (parked
   * ETAs), `_celeriac.owned.<consumer>`, `_celeriac.inflight.<consumer>`, and any
   * other `_celeriac.*` key except the consumer registry.
   */
  celeriacHeld: string[];
  /** `_celeriac.consumers` members: Celeriac consumers that have not retired. */
  consumers: number;
  /** Every key in the broker db (for failure messages). */
  keys: string[];
}

const CONSUMER_REGISTRY = '_celeriac.consumers';

export async function brokerState(url: string, queue = 'celery'): Promise<BrokerState> {
  const r = new Redis(url, { maxRetriesPerRequest: 1 });
  try {
    const lists = [queue, `${queue}\x06\x163`, `${queue}\x06\x166`, `${queue}\x06\x169`];
    const lens = await Promise.all(lists.map((k) => r.llen(k)));
    const [unacked, unackedIndex, consumers, keys] = await Promise.all([r.hlen('unacked'), r.zcard('unacked_index'), r.zcard(CONSUMER_REGISTRY), r.keys('*')]);
    const celeriacHeld = keys.filter((k) => k.startsWith('_celeriac.') && k !== CONSUMER_REGISTRY).sort();
    return { ready: lens.reduce((a, b) => a + b, 0), unacked, unackedIndex, celeriacHeld, consumers, keys: keys.sort() };
  } finally {
    r.disconnect();
  }
}

/** Options of `assertBrokerDrained`. */
export interface DrainedOptions {
  /** Give up after this long. Default 5000 ms. */
  timeoutMs?: number;
  /**
   * Every Celeriac worker on this broker has stopped: its entry in
   * `_celeriac.consumers` must be gone too (a clean stop retires it).
   */
  workersStopped?: boolean;
}

/**
 * Wait (up to `timeoutMs`) until nothing is left: the queue empty, nothing
 * unacked, no Celeriac-held key (parked ETAs, owned sets, in-flight lists) and,
 * with `workersStopped`, no registered consumer; fail naming what is left.
 */
export async function assertBrokerDrained(url: string, options: DrainedOptions = {}): Promise<void> {
  const deadline = Date.now() + (options.timeoutMs ?? 5000);
  const left = (s: BrokerState) => {
    const out: Record<string, unknown> = {};
    if (s.ready) out.ready = s.ready;
    if (s.unacked) out.unacked = s.unacked;
    if (s.unackedIndex) out.unackedIndex = s.unackedIndex;
    if (s.celeriacHeld.length) out.celeriacHeld = s.celeriacHeld;
    if (options.workersStopped && s.consumers) out.consumers = s.consumers;
    return out;
  };
  let state = await brokerState(url);
  while (Object.keys(left(state)).length > 0 && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 100));
    state = await brokerState(url);
  }
  const remaining = left(state);
  if (Object.keys(remaining).length > 0) {
    throw new Error(`broker not drained: ${JSON.stringify(remaining)}, keys: ${JSON.stringify(state.keys)}`);
  }
}

/** A short-lived client on one db, closed by the caller. */
export function redisClient(url: string): Redis {
  return new Redis(url, { maxRetriesPerRequest: 3 });
}

/** `python3 -m celery -A interop_tasks <args>` in test/python: resolves with its exit code and output (killed by PID past `timeoutMs`). */
export function runCeleryCli(env: InteropEnv, args: string[], timeoutMs = 30_000): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(SYSTEM_PYTHON, ['-m', 'celery', '-A', 'interop_tasks', ...args], { cwd: PY_DIR, env: pythonEnv({ ...env }), stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout!.on('data', (c: Buffer) => (stdout += c.toString()));
    child.stderr!.on('data', (c: Buffer) => (stderr += c.toString()));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`celery ${args.join(' ')} ran over ${timeoutMs} ms:\n${stderr}`));
    }, timeoutMs);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

/** A long-running `celery -A interop_tasks <args>` (e.g. `events --dump`): its output so far, and a stop by PID. */
export function startCeleryCli(env: InteropEnv, args: string[]): { output(): string; stop(): Promise<void> } {
  const child = spawn(SYSTEM_PYTHON, ['-m', 'celery', '-A', 'interop_tasks', ...args], { cwd: PY_DIR, env: pythonEnv({ ...env }), stdio: ['ignore', 'pipe', 'pipe'] });
  const tracked = track(child, `celery ${args[0]}`);
  return { output: tracked.output, stop: () => stopChild(child, 2_000) };
}
