/**
 * Worker CPU per task, the load-independent measure of the drain: on a shared
 * machine wall-clock rates swing ±50 %, but the CPU time a worker spends per task
 * (user + system, from /proc/<pid>/stat) moves far less. For each repetition and
 * each worker (Celeriac, optionally a second Celeriac build to A/B against, and
 * BullMQ at the same concurrency), interleaved: FLUSHALL → bulk-enqueue N → start
 * the worker → time and CPU from the first result to the last, and CPU over the
 * steady-state window (from `--steady-from` of the results to the last) → Redis
 * commands per task → stop the worker.
 *
 *   npm run build && node --import tsx bench/worker-cpu.ts [--n=20000] [--reps=5] [--concurrency=8,50]
 *     [--base=<dir with a built @celeriac/core copy: dist/ + package.json>] [--steady-from=0.2]
 *     [--variants='<id>:<node flags>|...'] (more workers of this build: `node <flags> dist/esm/cli/main.js`)
 *
 * `--base` runs a second Celeriac worker from another build (copy `packages/core/dist`
 * and `package.json` of the commit to compare into a directory inside the repository,
 * so its dependencies resolve) and reports both.
 */
import { writeFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Redis } from 'ioredis';
import { startRedis } from '../test/helpers/services.ts';
import { baseBuild } from './lib/base-build.ts';
import { commandStats, perTask } from './lib/measure.ts';
import { cpuSeconds, MemorySampler, runClient, spawnChild, stopWorker } from './lib/proc.ts';
import { median } from './lib/stats.ts';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const log = (s: string) => process.stdout.write(s + '\n');
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function flag(name: string, fallback: string): string {
  const hit = process.argv.find((a) => a.startsWith(`--${name}=`));
  return hit ? hit.slice(name.length + 3) : fallback;
}

interface Worker {
  id: string;
  system: 'celeriac' | 'bullmq';
  concurrency: number;
  command: string[];
}

interface Sample {
  id: string;
  rep: number;
  drainPerSec: number;
  cpuPer1k: number;
  steadyCpuPer1k: number;
  steadyPerSec: number;
  maxRssMB: number;
  cmdsPerTask: number;
}

async function main(): Promise<void> {
  const n = Number(flag('n', '20000'));
  const reps = Number(flag('reps', '5'));
  const concurrency = flag('concurrency', '8,50').split(',').map(Number);
  const steadyFrom = Number(flag('steady-from', '0.2'));
  const base = flag('base', '');
  const out = flag('out', '');
  // --variants='<id>:<node flags>|<id>:<node flags>': more Celeriac workers of this build, `node <flags> main.js`.
  const variants = flag('variants', '')
    .split('|')
    .filter(Boolean)
    .map((v) => ({ id: v.slice(0, v.indexOf(':')), flags: v.slice(v.indexOf(':') + 1).split(' ').filter(Boolean) }));
  const redis = await startRedis();
  const db0 = new Redis(redis.port, '127.0.0.1', { db: 0 });
  const db1 = new Redis(redis.port, '127.0.0.1', { db: 1 });
  const broker = redis.url(0);
  const env = { ...process.env, BENCH_BROKER_URL: broker, BENCH_BACKEND_URL: redis.url(1), BENCH_REDIS_PORT: String(redis.port), BENCH_BULLMQ_DB: '0', NODE_ENV: 'production' };
  const node = process.execPath;
  const celeriacWorker = (cli: string, tasks: string, c: number) => [node, cli, 'worker', '-A', tasks, '-c', String(c), '-l', 'warning', '--broker', broker, '--backend', redis.url(1)];
  const workers: Worker[] = [];
  for (const c of concurrency) {
    // The `celeriac` bin executed as a user runs it (its shell lines add the CLI's node flags).
    const [, ...cliArgs] = celeriacWorker(join(ROOT, 'packages/core/bin/celeriac.js'), join(ROOT, 'bench/systems/celeriac/tasks.mjs'), c);
    workers.push({ id: `celeriac-c${c}`, system: 'celeriac', concurrency: c, command: cliArgs });
    // A variant runs `node <its flags> dist/esm/cli/main.js`: `--variants=plain:` is the CLI without the bin's flags.
    for (const v of variants) {
      const [nodeBin, ...rest] = celeriacWorker(join(ROOT, 'packages/core/dist/esm/cli/main.js'), join(ROOT, 'bench/systems/celeriac/tasks.mjs'), c);
      workers.push({ id: `${v.id}-c${c}`, system: 'celeriac', concurrency: c, command: [nodeBin!, ...v.flags, ...rest] });
    }
    if (base) {
      const { cli, tasks } = baseBuild(base);
      workers.push({ id: `base-c${c}`, system: 'celeriac', concurrency: c, command: celeriacWorker(cli, tasks, c) });
    }
    workers.push({ id: `bullmq-c${c}`, system: 'bullmq', concurrency: c, command: [node, join(ROOT, 'bench/systems/bullmq/worker.mjs'), String(c)] });
  }
  log(`worker-cpu: N=${n}, reps=${reps}, workers=${workers.map((w) => w.id).join(', ')}; load ${loadavg().map((l) => l.toFixed(1)).join(' ')}`);
  const samples: Sample[] = [];
  try {
    for (let rep = 1; rep <= reps; rep++) {
      for (const w of workers) {
        await db0.flushall();
        const client = w.system === 'celeriac' ? join(ROOT, 'bench/systems/celeriac/client.mjs') : join(ROOT, 'bench/systems/bullmq/client.mjs');
        await runClient(`${w.id} producer`, node, [client, 'enqueue-bulk', String(n), '1000'], { cwd: ROOT, env, timeoutMs: 120_000 + n * 5 });
        const count = w.system === 'celeriac' ? () => db1.dbsize() : () => db0.zcard('bull:bench:completed');
        await db0.config('RESETSTAT');
        // BENCH_PERF=<dir>: `perf record -e cpu-clock` of the worker during the drain (JIT frames named by --perf-basic-prof).
        const command = process.env.BENCH_PERF ? [w.command[0]!, '--perf-basic-prof', ...w.command.slice(1)] : w.command;
        const worker = spawnChild(w.id, command[0]!, command.slice(1), { cwd: ROOT, env });
        const perf = process.env.BENCH_PERF ? spawnChild('perf', 'perf', ['record', '-e', 'cpu-clock', '-F', '2000', '-g', '-o', join(process.env.BENCH_PERF, `${w.id}-rep${rep}.data`), '-p', String(worker.pid)]) : undefined;
        // BENCH_STRACE=<dir>: count the worker's system calls during the drain (slows it: for counts, not times).
        const strace = process.env.BENCH_STRACE ? spawnChild('strace', 'strace', ['-f', '-c', '-o', join(process.env.BENCH_STRACE, `${w.id}-rep${rep}.txt`), '-p', String(worker.pid)]) : undefined;
        const mem = new MemorySampler(worker.pid, 100);
        mem.start();
        let polls = 0;
        let done = 0;
        let tFirst = 0;
        let cpuFirst = 0;
        let tSteady = 0;
        let cpuSteady = 0;
        let doneSteady = 0;
        const deadline = performance.now() + 120_000 + n * 20;
        try {
          while (done < n) {
            if (worker.hasExited()) throw new Error(`${w.id} exited: ${worker.stderrTail()}`);
            if (performance.now() > deadline) throw new Error(`${w.id} timed out at ${done}/${n}`);
            done = await count();
            polls++;
            if (!tFirst && done > 0) [tFirst, cpuFirst] = [performance.now(), cpuSeconds(worker.pid)];
            if (!tSteady && done >= n * steadyFrom) [tSteady, cpuSteady, doneSteady] = [performance.now(), cpuSeconds(worker.pid), done];
            if (done < n) await sleep(10);
          }
          const tDone = performance.now();
          const cpuDone = cpuSeconds(worker.pid);
          if (perf) {
            perf.child.kill('SIGINT');
            await perf.exited;
          }
          if (strace) {
            strace.child.kill('SIGINT');
            await strace.exited;
          }
          mem.stop();
          const cmds = perTask(await commandStats({ db0, db1 }), new Map([[w.system === 'celeriac' ? 'dbsize' : 'zcard', polls], ['config|resetstat', 1]]), n);
          const s: Sample = {
            id: w.id,
            rep,
            drainPerSec: n / ((tDone - tFirst) / 1000),
            cpuPer1k: ((cpuDone - cpuFirst) / n) * 1000,
            steadyCpuPer1k: ((cpuDone - cpuSteady) / (n - doneSteady)) * 1000,
            steadyPerSec: (n - doneSteady) / ((tDone - tSteady) / 1000),
            maxRssMB: mem.maxRssKb / 1024,
            cmdsPerTask: cmds.total,
          };
          samples.push(s);
          log(
            `[rep ${rep}] ${w.id.padEnd(14)} drain ${Math.round(s.drainPerSec)}/s, CPU ${s.cpuPer1k.toFixed(3)} s/1k (steady ${s.steadyCpuPer1k.toFixed(3)}), ` +
              `RSS ${s.maxRssMB.toFixed(1)} MB, ${s.cmdsPerTask.toFixed(2)} cmds/task, load ${loadavg()[0]!.toFixed(1)}`,
          );
        } finally {
          mem.stop();
          await stopWorker(worker, [worker.pid]);
        }
      }
    }
  } finally {
    db0.disconnect();
    db1.disconnect();
    await redis.stop();
  }
  log('\n| worker | drain/s median | CPU s/1k median (min–max) | steady CPU s/1k median | RSS MB median | cmds/task | CPU × BullMQ per rep |');
  log('|---|--:|--:|--:|--:|--:|--:|');
  for (const w of workers) {
    const mine = samples.filter((s) => s.id === w.id);
    const bull = samples.filter((s) => s.id === `bullmq-c${w.concurrency}`);
    const ratios = mine.map((s) => bull.find((b) => b.rep === s.rep)).map((b, i) => (b ? mine[i]!.cpuPer1k / b.cpuPer1k : NaN));
    const med = (f: (s: Sample) => number) => median(mine.map(f)) ?? NaN;
    log(
      `| ${w.id} | ${Math.round(med((s) => s.drainPerSec))} | ${med((s) => s.cpuPer1k).toFixed(3)} (${Math.min(...mine.map((s) => s.cpuPer1k)).toFixed(3)}–${Math.max(...mine.map((s) => s.cpuPer1k)).toFixed(3)}) | ` +
        `${med((s) => s.steadyCpuPer1k).toFixed(3)} | ${med((s) => s.maxRssMB).toFixed(1)} | ${med((s) => s.cmdsPerTask).toFixed(2)} | ${ratios.map((r) => r.toFixed(2)).join(' / ')} |`,
    );
  }
  if (out) writeFileSync(out, JSON.stringify({ n, reps, load: loadavg(), samples }, null, 2));
}

main().catch((err) => {
  process.stderr.write(`worker-cpu: ${(err as Error).stack ?? err}\n`);
  process.exit(1);
});
