/**
 * Child processes for the benchmark: spawn, collect output, find a worker's
 * process tree, sample its memory and CPU from /proc, and stop it by PID.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';

const TAIL_BYTES = 8192;

/** A spawned child whose stdout is kept whole and stderr as a tail. */
export interface Spawned {
  readonly name: string;
  readonly child: ChildProcess;
  readonly pid: number;
  /** When spawn() was called (performance.now()). */
  readonly spawnedAt: number;
  stdout(): string;
  stderrTail(): string;
  /** Resolves with the exit code (or the signal name) once the child exits. */
  readonly exited: Promise<number | string>;
  hasExited(): boolean;
}

export function spawnChild(name: string, command: string, args: string[], opts: { cwd?: string; env?: NodeJS.ProcessEnv } = {}): Spawned {
  const spawnedAt = performance.now();
  const child = spawn(command, args, { cwd: opts.cwd, env: opts.env ?? process.env, stdio: ['ignore', 'pipe', 'pipe'] });
  if (child.pid === undefined) throw new Error(`${name}: could not spawn ${command}`);
  const out: Buffer[] = [];
  let err = '';
  let done = false;
  child.stdout!.on('data', (b: Buffer) => out.push(b));
  child.stderr!.on('data', (b: Buffer) => {
    err += b.toString('utf8');
    if (err.length > TAIL_BYTES * 2) err = err.slice(-TAIL_BYTES);
  });
  const exited = new Promise<number | string>((resolve) => {
    child.once('exit', (code, signal) => {
      done = true;
      resolve(code ?? signal ?? 'unknown');
    });
    child.once('error', (e) => {
      done = true;
      err += `\nspawn error: ${e.message}`;
      resolve('spawn-error');
    });
  });
  return {
    name,
    child,
    pid: child.pid,
    spawnedAt,
    stdout: () => Buffer.concat(out).toString('utf8'),
    stderrTail: () => err.slice(-TAIL_BYTES),
    exited,
    hasExited: () => done,
  };
}

/**
 * Run a client script to completion; it prints one JSON object as its last
 * stdout line. Throws with the child's stderr when it fails or times out.
 */
export async function runClient<T>(name: string, command: string, args: string[], opts: { cwd?: string; env?: NodeJS.ProcessEnv; timeoutMs: number }): Promise<T> {
  const p = spawnChild(name, command, args, opts);
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    killPid(p.pid, 'SIGKILL');
  }, opts.timeoutMs);
  const code = await p.exited;
  clearTimeout(timer);
  const lines = p.stdout().trim().split('\n');
  const last = lines[lines.length - 1] ?? '';
  if (timedOut || code !== 0 || !last.startsWith('{')) {
    const why = timedOut ? `timed out after ${opts.timeoutMs} ms` : `exited with ${code}`;
    throw new Error(`${name} ${why}\n--- stdout (tail) ---\n${p.stdout().slice(-2000)}\n--- stderr (tail) ---\n${p.stderrTail()}`);
  }
  return JSON.parse(last) as T;
}

export function killPid(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(pid, signal);
  } catch {
    /* already gone */
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** Parent PID of every process (one /proc scan). */
function parentMap(): Map<number, number[]> {
  const children = new Map<number, number[]>();
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    let stat: string;
    try {
      stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
    } catch {
      continue;
    }
    // pid (comm) state ppid ... — comm may contain spaces and parentheses.
    const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const ppid = Number(rest[1]);
    const list = children.get(ppid) ?? [];
    list.push(Number(entry));
    children.set(ppid, list);
  }
  return children;
}

/** `pid` and all its descendants. */
export function processTree(pid: number): number[] {
  const children = parentMap();
  const out: number[] = [];
  const stack = [pid];
  while (stack.length) {
    const p = stack.pop()!;
    out.push(p);
    stack.push(...(children.get(p) ?? []));
  }
  return out;
}

export interface MemSample {
  rssKb: number;
  hwmKb: number;
  pssKb: number;
}

/** VmRSS / VmHWM (status) and Pss (smaps_rollup) of one process, or null when gone. */
export function readMem(pid: number, withPss: boolean): MemSample | null {
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    const kb = (key: string) => Number(new RegExp(`^${key}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? 0);
    let pssKb = 0;
    if (withPss) {
      const rollup = readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8');
      pssKb = Number(/^Pss:\s+(\d+) kB/m.exec(rollup)?.[1] ?? 0);
    }
    return { rssKb: kb('VmRSS'), hwmKb: kb('VmHWM'), pssKb };
  } catch {
    return null;
  }
}

const CLK_TCK = 100; // sysconf(_SC_CLK_TCK) on Linux

/** User + system CPU seconds used so far by one process (0 when gone). */
export function cpuSeconds(pid: number): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    // fields after comm: state(0) ppid(1) ... utime(11) stime(12)
    return (Number(f[11]) + Number(f[12])) / CLK_TCK;
  } catch {
    return 0;
  }
}

/**
 * Samples a worker's process tree (a Python prefork pool has children) while a
 * phase runs: the max over time of the tree's summed RSS and PSS.
 */
export class MemorySampler {
  private timer: NodeJS.Timeout | undefined;
  private tick = 0;
  readonly pids = new Set<number>();
  maxRssKb = 0;
  /** The tree's summed RSS at the latest sample. */
  lastRssKb = 0;
  maxPssKb = 0;
  maxProcs = 0;
  samples = 0;

  constructor(
    private readonly rootPid: number,
    private readonly intervalMs = 50,
  ) {
    this.pids.add(rootPid);
  }

  start(): void {
    this.sample();
    this.timer = setInterval(() => this.sample(), this.intervalMs);
  }

  /** Take one more sample, stop, and return the tree's pids ever seen. */
  stop(): number[] {
    this.sample();
    clearInterval(this.timer);
    return [...this.pids];
  }

  private sample(): void {
    // Re-discover the tree now and then (pool children appear after start-up).
    if (this.tick++ % 5 === 0) for (const p of processTree(this.rootPid)) this.pids.add(p);
    let rss = 0;
    let pss = 0;
    let procs = 0;
    const withPss = this.tick % 2 === 0;
    for (const pid of this.pids) {
      const m = readMem(pid, withPss);
      if (!m) continue;
      procs++;
      rss += m.rssKb;
      pss += m.pssKb;
    }
    this.samples++;
    this.lastRssKb = rss;
    this.maxRssKb = Math.max(this.maxRssKb, rss);
    if (withPss) this.maxPssKb = Math.max(this.maxPssKb, pss);
    this.maxProcs = Math.max(this.maxProcs, procs);
  }
}

/**
 * Stop a worker we started: SIGTERM to its PID (warm shutdown), then SIGKILL
 * to it and to any of its known descendants still alive after `graceMs`.
 */
export async function stopWorker(p: Spawned, knownPids: number[], graceMs = 10_000): Promise<{ graceful: boolean }> {
  const descendants = new Set([...knownPids, ...processTree(p.pid)].filter((pid) => pid !== p.pid));
  if (!p.hasExited()) killPid(p.pid, 'SIGTERM');
  const graceful = await Promise.race([p.exited.then(() => true), new Promise<boolean>((r) => setTimeout(() => r(false), graceMs))]);
  if (!graceful) killPid(p.pid, 'SIGKILL');
  await p.exited;
  // Pool children normally exit with their parent; give them a moment, then make sure.
  const deadline = Date.now() + 3000;
  while (Date.now() < deadline && [...descendants].some(alive)) await new Promise((r) => setTimeout(r, 50));
  for (const pid of descendants) if (alive(pid)) killPid(pid, 'SIGKILL');
  return { graceful };
}
