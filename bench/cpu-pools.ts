/**
 * CPU-bound pools: `npm run bench:cpu` (also the last step of `npm run bench`).
 *
 * A task doing about 20 ms of SHA-256 on one core (the iteration count calibrated
 * separately for Node and for Python, so each side does 20 ms of its own work) is
 * drained N times from one Redis by: Celeriac `--pool async`, `--pool threads`,
 * `--pool processes`, and Python Celery 5.2 `-P prefork`, each at concurrency C
 * (default: the number of CPUs), each worker in its own process started by the
 * `celeriac` / `celery` command. The same Celeriac producer sends all N at once and
 * waits for every result; time runs from the send to the last result. Prints a table
 * and writes bench/results/cpu-pools.{json,md}.
 *
 * Options: --tasks N (default 200), --concurrency C, --runs R (default 1; the median is reported).
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Redis } from 'ioredis';
import { createApp } from '../packages/core/dist/index.js';
import { startRedis, stopChild, SYSTEM_PYTHON } from '../test/helpers/services.ts';
import { hashLoop } from './systems/celeriac/cpu-tasks.mjs';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const arg = (name: string, fallback: number) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? Number(process.argv[i + 1]) : fallback;
};
const TASKS = arg('tasks', 200);
const CONCURRENCY = arg('concurrency', cpus().length);
const RUNS = arg('runs', 1);
const TASK_MS = 20;

/**
 * Digests Node does in `ms` on one core: the best of 7 trials of about 100 ms, so a
 * busy machine (other processes taking the core) does not shrink the task.
 */
function calibrateNode(ms: number): number {
  hashLoop(5000); // warm up
  let best = 0;
  for (let trial = 0; trial < 7; trial++) {
    const n = 20_000;
    const t = performance.now();
    hashLoop(n);
    best = Math.max(best, n / (performance.now() - t));
  }
  return Math.round(best * ms);
}

/** The same for Python, in its own interpreter. */
function calibratePython(ms: number): number {
  const code = [
    'import hashlib, time',
    'best = 0',
    'for trial in range(7):',
    '    data = bytes(64); n = 20000; t = time.perf_counter()',
    '    for _ in range(n): data = hashlib.sha256(data).digest()',
    '    best = max(best, n / ((time.perf_counter() - t) * 1000))',
    `print(round(best * ${ms}))`,
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

interface System {
  label: string;
  start(env: NodeJS.ProcessEnv): Promise<ChildProcess>;
  iterations: number;
}

async function main(): Promise<void> {
  const redis = await startRedis();
  const env: NodeJS.ProcessEnv = { ...process.env, BENCH_BROKER_URL: redis.url(0), BENCH_BACKEND_URL: redis.url(1), PYTHONPATH: join(ROOT, 'bench/python') };
  delete env.PYTHONHOME;
  const producer = createApp('bench-cpu-producer', { brokerUrl: redis.url(0), resultBackend: redis.url(1) });
  const admin = new Redis(redis.url(0));
  const nodeIterations = calibrateNode(TASK_MS);
  const pythonIterations = calibratePython(TASK_MS);

  const celeriac = (pool: string): System => ({
    label: `Celeriac --pool ${pool} c=${CONCURRENCY}`,
    iterations: nodeIterations,
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
    label: `Celery 5.2 -P prefork c=${CONCURRENCY}`,
    iterations: pythonIterations,
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
  const rows: { label: string; iterations: number; seconds: number[]; tasksPerSecond: number }[] = [];
  try {
    for (const system of systems) {
      const seconds: number[] = [];
      for (let run = 0; run < RUNS; run++) {
        await admin.flushall();
        const worker = await system.start(env);
        try {
          const t = performance.now();
          const results = await producer.sendMany(Array.from({ length: TASKS }, () => ({ name: 'bench.hash_loop', args: [system.iterations] })));
          for (const r of results) await r.get({ timeout: 600_000 });
          seconds.push((performance.now() - t) / 1000);
        } finally {
          await stopChild(worker, 15_000);
        }
      }
      const sorted = [...seconds].sort((a, b) => a - b);
      const med = sorted[Math.floor(sorted.length / 2)]!;
      rows.push({ label: system.label, iterations: system.iterations, seconds, tasksPerSecond: TASKS / med });
      process.stdout.write(`${system.label}: ${TASKS} tasks in ${med.toFixed(2)} s = ${(TASKS / med).toFixed(1)} tasks/s\n`);
    }
  } finally {
    admin.disconnect();
    await producer.close();
    await redis.stop();
  }
  const prefork = rows.find((r) => r.label.startsWith('Celery'))!.tasksPerSecond;
  const ideal = (CONCURRENCY * 1000) / TASK_MS;
  const md = [
    `CPU-bound task (~${TASK_MS} ms of SHA-256 on one core; Node ${nodeIterations} digests, Python ${celery.iterations}), ${TASKS} tasks, concurrency ${CONCURRENCY}, ${cpus().length} CPUs, load average at the end ${loadavg().map((n) => n.toFixed(1)).join(' ')}. Ideal: ${ideal.toFixed(0)} tasks/s.`,
    '',
    '| worker | tasks/s | vs Celery prefork |',
    '|---|---:|---:|',
    ...rows.map((r) => `| ${r.label} | ${r.tasksPerSecond.toFixed(1)} | ${(r.tasksPerSecond / prefork).toFixed(2)}x |`),
    '',
  ].join('\n');
  mkdirSync(join(ROOT, 'bench/results'), { recursive: true });
  writeFileSync(join(ROOT, 'bench/results/cpu-pools.json'), JSON.stringify({ tasks: TASKS, concurrency: CONCURRENCY, taskMs: TASK_MS, loadavg: loadavg(), rows }, null, 2) + '\n');
  writeFileSync(join(ROOT, 'bench/results/cpu-pools.md'), md);
  process.stdout.write('\n' + md);
}

await main();
