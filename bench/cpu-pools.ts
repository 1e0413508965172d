/**
 * CPU-bound pools: `npm run bench:cpu` (also the last step of `npm run bench`).
 *
 * A task doing about 20 ms of CPU — SHA-256 over N × 64 KiB with OpenSSL, the same
 * library on both sides, N calibrated by CPU time (not wall time: the machine may be
 * shared) and checked on each side — is drained T times from one Redis by: Celeriac
 * `--pool async`, `--pool threads`, `--pool processes`, and Python Celery 5.2
 * `-P prefork`, each at concurrency C (default: the number of CPUs), each worker in
 * its own process started by the `celeriac` / `celery` command. The same Celeriac
 * producer sends all T at once and waits for every result; time runs from the send
 * to the last result. Each round runs every system once (the order rotates per
 * round, so a change in the machine's load does not always hit the same system);
 * per round the ratio to prefork is taken within the round. The CPU time of each
 * worker's process tree (parent + threads + children, from /proc) over the drain
 * gives CPU ms per task, which the load of other processes does not inflate.
 * Prints a table and writes bench/results/cpu-pools.{json,md}.
 *
 * Options: --tasks T (default 400), --concurrency C, --runs R (rounds, default 3),
 * --task-ms M (CPU per task, default 20; a small M measures the pools' own cost per task).
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Redis } from 'ioredis';
import { createApp } from '../packages/core/dist/esm/index.js';
import { startRedis, stopChild, SYSTEM_PYTHON } from '../test/helpers/services.ts';
import { cpuSeconds, processTree } from './lib/proc.ts';
import { hashLoop } from './systems/celeriac/cpu-tasks.mjs';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const arg = (name: string, fallback: number) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? Number(process.argv[i + 1]) : fallback;
};
const TASKS = arg('tasks', 400);
const CONCURRENCY = arg('concurrency', cpus().length);
const RUNS = arg('runs', 3);
const TASK_MS = arg('task-ms', 20);
const CALIBRATION_BLOCKS = 200;

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

/** CPU ms per 64 KiB block in Node: the median of 9 trials (after a warm-up). */
function nodeMsPerBlock(): number {
  hashLoop(50);
  const trials: number[] = [];
  for (let t = 0; t < 9; t++) {
    const before = process.cpuUsage();
    hashLoop(CALIBRATION_BLOCKS);
    const used = process.cpuUsage(before);
    trials.push((used.user + used.system) / 1000 / CALIBRATION_BLOCKS);
  }
  return median(trials);
}

/** The same in Python, in its own interpreter (time.process_time). */
function pythonMsPerBlock(): number {
  const code = [
    'import hashlib, time',
    "block = b'\\x5a' * 65536",
    'def run(n):',
    '    h = hashlib.sha256()',
    '    for _ in range(n): h.update(block)',
    '    return h.hexdigest()',
    'run(50)',
    'trials = []',
    'for trial in range(9):',
    '    t = time.process_time()',
    `    run(${CALIBRATION_BLOCKS})`,
    `    trials.append((time.process_time() - t) * 1000 / ${CALIBRATION_BLOCKS})`,
    'print(sorted(trials)[4])',
  ].join('\n');
  return Number(execFileSync(SYSTEM_PYTHON, ['-c', code], { encoding: 'utf8' }).trim());
}

function waitFor(child: ChildProcess, pattern: RegExp, what: string): Promise<void> {
  return new Promise((resolveReady, reject) => {
    let seen = '';
    const timer = setTimeout(() => reject(new Error(`${what} not ready within 120 s:\n${seen.slice(-2000)}`)), 120_000);
    const onData = (c: Buffer) => {
      seen += c;
      if (pattern.test(seen)) {
        clearTimeout(timer);
        resolveReady();
      }
    };
    child.stdout!.on('data', onData);
    child.stderr!.on('data', onData);
    child.once('exit', (code) => reject(new Error(`${what} exited (${code}) before it was ready:\n${seen.slice(-2000)}`)));
  });
}

/** CPU seconds so far of each process in the tree under `pid`. */
function treeCpu(pid: number): Map<number, number> {
  return new Map(processTree(pid).map((p) => [p, cpuSeconds(p)]));
}

interface System {
  label: string;
  start(env: NodeJS.ProcessEnv): Promise<ChildProcess>;
}

interface Run {
  round: number;
  seconds: number;
  tasksPerSecond: number;
  /** CPU seconds of the worker's whole process tree over the drain. */
  cpuSeconds: number;
  /** ... of the worker's own process (broker, dispatch, results; for threads and async also the tasks). */
  parentCpuSeconds: number;
  /** ... of each child process (processes / prefork): both busy means both ran tasks side by side. */
  childCpuSeconds: number[];
  loadavgBefore: number[];
}

async function main(): Promise<void> {
  const redis = await startRedis();
  const env: NodeJS.ProcessEnv = { ...process.env, BENCH_BROKER_URL: redis.url(0), BENCH_BACKEND_URL: redis.url(1), PYTHONPATH: join(ROOT, 'bench/python') };
  delete env.PYTHONHOME;
  const producer = createApp('bench-cpu-producer', { brokerUrl: redis.url(0), resultBackend: redis.url(1) });
  const admin = new Redis(redis.url(0));
  const nodeMs = nodeMsPerBlock();
  const pythonMs = pythonMsPerBlock();
  // One count for both: the same OpenSSL work. Calibrated on Node; Python's CPU time for it is reported beside.
  const blocks = Math.max(1, Math.round(TASK_MS / nodeMs));
  process.stdout.write(`calibration: ${blocks} blocks of 64 KiB = ${(blocks * nodeMs).toFixed(1)} ms CPU in Node, ${(blocks * pythonMs).toFixed(1)} ms in Python\n`);

  const celeriac = (pool: string): System => ({
    label: `Celeriac --pool ${pool}`,
    async start(e) {
      const child = spawn(process.execPath, [join(ROOT, 'packages/core/bin/celeriac.js'), '-A', 'bench/systems/celeriac/cpu-tasks.mjs', 'worker', '--pool', pool, '-c', String(CONCURRENCY), '-l', 'info', '-n', `bench-${pool}@%h`], {
        cwd: ROOT,
        env: e,
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      await waitFor(child, /ready\./, `celeriac --pool ${pool}`);
      return child;
    },
  });
  const celery: System = {
    label: 'Celery 5.2 -P prefork',
    async start(e) {
      const child = spawn(SYSTEM_PYTHON, ['-m', 'celery', '-A', 'bench_tasks', 'worker', '-P', 'prefork', '-c', String(CONCURRENCY), '-l', 'info', '--without-gossip', '--without-mingle', '--without-heartbeat'], {
        cwd: join(ROOT, 'bench/python'),
        env: e,
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      await waitFor(child, /ready\./, 'celery prefork');
      return child;
    },
  };
  const systems = [celeriac('async'), celeriac('threads'), celeriac('processes'), celery];
  const runs = new Map<System, Run[]>(systems.map((s) => [s, []]));
  const runLines: string[] = [];
  const log = (line: string) => {
    runLines.push(line.trimEnd());
    process.stdout.write(line);
  };
  try {
    for (let round = 0; round < RUNS; round++) {
      // Rotate the order: each system runs first in some round.
      const order = systems.map((_, i) => systems[(i + round) % systems.length]!);
      for (const system of order) {
        await admin.flushall();
        const worker = await system.start(env);
        try {
          // Let the children's start-up work (module loading, JIT) finish before the clock starts.
          await new Promise((r) => setTimeout(r, 1000));
          const loadavgBefore = loadavg();
          const before = treeCpu(worker.pid!);
          const t = performance.now();
          const results = await producer.sendMany(Array.from({ length: TASKS }, () => ({ name: 'bench.hash_loop', args: [blocks] })));
          for (const r of results) await r.get({ timeout: 600_000 });
          const seconds = (performance.now() - t) / 1000;
          const after = treeCpu(worker.pid!);
          let cpu = 0;
          for (const [pid, s] of after) cpu += s - (before.get(pid) ?? 0);
          const parentCpu = (after.get(worker.pid!) ?? 0) - (before.get(worker.pid!) ?? 0);
          const childCpu = [...after].filter(([pid]) => pid !== worker.pid).map(([pid, s]) => s - (before.get(pid) ?? 0)).filter((s) => s > 0);
          const run: Run = { round, seconds, tasksPerSecond: TASKS / seconds, cpuSeconds: cpu, parentCpuSeconds: parentCpu, childCpuSeconds: childCpu, loadavgBefore };
          runs.get(system)!.push(run);
          log(
            `round ${round + 1} ${system.label}: ${TASKS} tasks in ${seconds.toFixed(2)} s = ${run.tasksPerSecond.toFixed(1)} tasks/s; ` +
              `CPU ${((cpu * 1000) / TASKS).toFixed(1)} ms/task (worker process ${((parentCpu * 1000) / TASKS).toFixed(1)}` +
              `${childCpu.length ? `; children ${childCpu.map((s) => s.toFixed(2)).join(' / ')} s` : ''}); load ${loadavgBefore[0]!.toFixed(1)}\n`,
          );
        } finally {
          await stopChild(worker, 15_000);
        }
      }
    }
  } finally {
    admin.disconnect();
    await producer.close();
    await redis.stop();
  }
  const preforkRuns = runs.get(celery)!;
  const ideal = (CONCURRENCY * 1000) / TASK_MS;
  const fmt = (n: number, d = 1) => n.toFixed(d);
  const rows = systems.map((system) => {
    const rs = runs.get(system)!;
    const tps = rs.map((r) => r.tasksPerSecond);
    const ratios = rs.map((r) => r.tasksPerSecond / preforkRuns.find((p) => p.round === r.round)!.tasksPerSecond);
    return {
      label: system.label,
      tasksPerSecond: median(tps),
      min: Math.min(...tps),
      max: Math.max(...tps),
      ratios,
      cpuMsPerTask: median(rs.map((r) => (r.cpuSeconds * 1000) / TASKS)),
      parentCpuMsPerTask: median(rs.map((r) => (r.parentCpuSeconds * 1000) / TASKS)),
      runs: rs,
    };
  });
  const loads = [...runs.values()].flat().map((r) => r.loadavgBefore[0]!);
  const md = [
    `CPU-bound task: SHA-256 over ${blocks} × 64 KiB (${fmt(blocks * nodeMs)} ms of CPU in Node, ${fmt(blocks * pythonMs)} ms in Python, OpenSSL on both sides), ` +
      `${TASKS} tasks, concurrency ${CONCURRENCY}, ${cpus().length} CPUs, ${RUNS} rounds (order rotated). ` +
      `1-minute load average before each drain: ${fmt(Math.min(...loads))}–${fmt(Math.max(...loads))}. Ideal: ${ideal.toFixed(0)} tasks/s.`,
    '',
    '| worker (c=' + CONCURRENCY + ') | tasks/s median (min–max) | ÷ prefork, per round | CPU ms/task, whole worker | of which the worker process |',
    '|---|---:|---:|---:|---:|',
    ...rows.map(
      (r) =>
        `| ${r.label} | ${fmt(r.tasksPerSecond)} (${fmt(r.min)}–${fmt(r.max)}) | ${r.ratios.map((x) => x.toFixed(2)).join(' / ')} | ${fmt(r.cpuMsPerTask)} | ${fmt(r.parentCpuMsPerTask)} |`,
    ),
    '',
    'CPU ms/task: user + system time of the worker\'s process tree over the drain ÷ tasks (from /proc; 10 ms ticks). ' +
      'For --pool async and threads the tasks run inside the worker process, so both columns include them.',
    '',
    'Each drain (children: CPU seconds of each child process over the drain, i.e. both ran tasks side by side):',
    '',
    ...runLines.map((l) => `- ${l}`),
    '',
  ].join('\n');
  mkdirSync(join(ROOT, 'bench/results'), { recursive: true });
  writeFileSync(
    join(ROOT, 'bench/results/cpu-pools.json'),
    JSON.stringify({ tasks: TASKS, concurrency: CONCURRENCY, taskMs: TASK_MS, blocks, nodeMsPerBlock: nodeMs, pythonMsPerBlock: pythonMs, rows }, null, 2) + '\n',
  );
  writeFileSync(join(ROOT, 'bench/results/cpu-pools.md'), md);
  process.stdout.write('\n' + md);
}

await main();
