/**
 * Where does a Celeriac worker (and producer) spend its time? One enqueue + drain
 * of N tasks on a private redis-server, with `node --cpu-prof` on the producer and
 * the worker, wall-time instrumentation of consumer.reserve / consumer.ack /
 * backend.storeEncoded, and Redis command stats. BullMQ can be profiled the same
 * way for comparison (no instrumentation, CPU profile + Redis stats only).
 *
 *   npm run build && node --import tsx bench/profile.ts [--n=10000] [--concurrency=8] [--systems=celeriac,bullmq]
 *   (BENCH_PROFILE_DIR=/tmp/prof keeps the .cpuprofile files)
 *
 * Writes bench/results/profile.md and profile.json and prints the report.
 */
import { mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Redis } from 'ioredis';
import { startRedis } from '../test/helpers/services.ts';
import { summarizeProfile, type ProfileSummary } from './lib/cpuprofile.ts';
import { parseOptions } from './lib/options.ts';
import { runClient, spawnChild, stopWorker } from './lib/proc.ts';
import { systemConfigs } from './lib/systems.ts';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const log = (s: string) => process.stdout.write(s + '\n');
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface Timing {
  calls: number;
  items: number;
  totalMs: number;
  maxMs: number;
  busyMs: number;
  maxInFlight: number;
  /** Epoch-ms intervals with ≥ 1 call in flight (dropped from the JSON once clipped). */
  intervals?: [number, number][];
  /** Share of the drain window (first → last result) with ≥ 1 call in flight. */
  busyPctOfDrain?: number;
}

interface SystemProfile {
  system: string;
  concurrency: number;
  enqueueMs: number;
  drainMs: number;
  drainPerSec: number;
  redisCommands: { cmd: string; callsPerTask: number; usecPerTask: number }[];
  redisUsecPerTask: number;
  worker: ProfileSummary | null;
  producer: ProfileSummary | null;
  instrumentation?: { startMs: number; runMs: number; prefetchLimit: number; stats: Record<string, number>; timings: Record<string, Timing> };
}

function onlyProfile(dir: string): string | null {
  const f = readdirSync(dir).filter((x) => x.endsWith('.cpuprofile'));
  return f.length ? join(dir, f[0]!) : null;
}

async function profileSystem(system: 'celeriac' | 'bullmq', concurrency: number, n: number, port: number, db0: Redis, db1: Redis, tmp: string): Promise<SystemProfile> {
  const opts = parseOptions([`--n=${n}`, `--systems=${system}`, `--concurrency=${concurrency}`], {}, '');
  const cfg = systemConfigs(opts, ROOT, port)[0]!;
  const prodDir = join(tmp, `${system}-producer`);
  const workDir = join(tmp, `${system}-worker`);
  mkdirSync(prodDir);
  mkdirSync(workDir);
  const prof = (dir: string) => ['--cpu-prof', `--cpu-prof-dir=${dir}`];

  await db0.flushall();
  const enq = await runClient<{ ms: number }>(`${system} producer`, cfg.enqueue.command, [...prof(prodDir), ...cfg.enqueue.args], {
    cwd: cfg.enqueue.cwd,
    env: cfg.enqueue.env,
    timeoutMs: 120_000,
  });
  const queued = await cfg.queueLength({ db0, db1 });
  if (queued !== n) throw new Error(`${system}: ${queued} queued, expected ${n}`);

  await db0.config('RESETSTAT');
  const workerArgs =
    system === 'celeriac'
      ? [...prof(workDir), join(ROOT, 'bench/systems/celeriac/profile-worker.mjs'), String(concurrency)]
      : [...prof(workDir), ...cfg.worker.args];
  const worker = spawnChild(`${system} worker`, process.execPath, workerArgs, { cwd: ROOT, env: cfg.worker.env });
  let tFirst: number | undefined;
  let firstEpoch = 0;
  let polls = 0;
  let count = 0;
  const deadline = performance.now() + 300_000;
  while (count < n) {
    if (worker.hasExited() || performance.now() > deadline) throw new Error(`${system} worker failed: ${count}/${n}\n${worker.stderrTail()}`);
    count = await cfg.countResults({ db0, db1 });
    polls++;
    if (tFirst === undefined && count > 0) {
      tFirst = performance.now();
      firstEpoch = performance.timeOrigin + tFirst;
    }
    if (count < n) await sleep(10);
  }
  const drainMs = performance.now() - tFirst!;
  const doneEpoch = firstEpoch + drainMs;
  const info = await db0.info('commandstats');
  await stopWorker(worker, [], 20_000);
  const redisCommands: SystemProfile['redisCommands'] = [];
  let usec = 0;
  for (const m of info.matchAll(/^cmdstat_([^:]+):calls=(\d+),usec=(\d+)/gm)) {
    const calls = Number(m[2]) - (m[1] === cfg.pollCommand ? polls : 0);
    if (calls <= 0 || m[1] === 'info' || m[1] === 'config|resetstat') continue;
    redisCommands.push({ cmd: m[1]!, callsPerTask: calls / n, usecPerTask: Number(m[3]) / n });
    usec += Number(m[3]);
  }
  redisCommands.sort((a, b) => b.usecPerTask - a.usecPerTask);
  const lines = worker.stdout().trim().split('\n');
  const last = lines[lines.length - 1] ?? '';
  const instrumentation = system === 'celeriac' && last.startsWith('{') ? (JSON.parse(last) as SystemProfile['instrumentation']) : undefined;
  for (const t of Object.values(instrumentation?.timings ?? {})) {
    let busy = 0;
    for (const [a, b] of t.intervals ?? []) busy += Math.max(0, Math.min(b, doneEpoch) - Math.max(a, firstEpoch));
    t.busyPctOfDrain = (100 * busy) / drainMs;
    delete t.intervals;
  }
  const wp = onlyProfile(workDir);
  const pp = onlyProfile(prodDir);
  return {
    system,
    concurrency,
    enqueueMs: enq.ms,
    drainMs,
    drainPerSec: n / (drainMs / 1000),
    redisCommands,
    redisUsecPerTask: usec / n,
    worker: wp ? summarizeProfile(wp) : null,
    producer: pp ? summarizeProfile(pp) : null,
    instrumentation,
  };
}

function render(n: number, results: SystemProfile[]): string {
  const out: string[] = [`# Celeriac profile — ${new Date().toISOString()}`, '', `N = ${n}, under \`node --cpu-prof\` (slower than the plain bench; compare shares, not absolute rates).`, ''];
  const f = (x: number, d = 1) => x.toFixed(d);
  for (const r of results) {
    out.push(`## ${r.system} c=${r.concurrency}: enqueue ${Math.round(n / (r.enqueueMs / 1000))}/s, drain ${Math.round(r.drainPerSec)}/s (${f(r.drainMs, 0)} ms)`, '');
    if (r.instrumentation) {
      const ins = r.instrumentation;
      out.push(`Worker: prefetch limit ${ins.prefetchLimit}, stats ${JSON.stringify(ins.stats)}`, '');
      out.push('| call | calls | items/call | mean ms | max ms | max in flight | ≥1 in flight, % of drain window |', '|---|--:|--:|--:|--:|--:|--:|');
      for (const [k, t] of Object.entries(ins.timings)) {
        if (!t.calls) continue;
        out.push(`| ${k} | ${t.calls} | ${f(t.items / t.calls)} | ${f(t.totalMs / t.calls, 2)} | ${f(t.maxMs, 1)} | ${t.maxInFlight} | ${f(t.busyPctOfDrain ?? NaN, 0)}% |`);
      }
      out.push('', 'Calls over the whole worker life (start-up and the final idle reserve included); the last column only over first → last result.');
      out.push('');
    }
    out.push(`Redis during the drain: ${f(r.redisUsecPerTask, 1)} µs of command time per task.`, '', '| command | calls/task | µs/task |', '|---|--:|--:|');
    for (const c of r.redisCommands.slice(0, 12)) out.push(`| ${c.cmd} | ${f(c.callsPerTask, 3)} | ${f(c.usecPerTask, 2)} |`);
    out.push('');
    for (const [name, p] of [['worker', r.worker], ['producer', r.producer]] as const) {
      if (!p) continue;
      out.push(`### ${r.system} ${name} CPU profile: ${f(p.busyMs, 0)} ms busy of ${f(p.totalMs, 0)} ms sampled`, '');
      out.push('| category | ms | % of samples |', '|---|--:|--:|');
      for (const c of p.byCategory.slice(0, 12)) out.push(`| ${c.category} | ${f(c.ms, 0)} | ${f(c.pct)}% |`);
      out.push('', '| top self time (function, file:line) | ms | % of busy |', '|---|--:|--:|');
      for (const s of p.topSelf.slice(0, 15)) out.push(`| \`${s.fn}\` | ${f(s.ms, 0)} | ${f(s.pct)}% |`);
      if (p.topCeleriacInclusive.length) {
        out.push('', '| Celeriac inclusive (sync part of each call) | ms | % of busy |', '|---|--:|--:|');
        for (const s of p.topCeleriacInclusive.slice(0, 15)) out.push(`| \`${s.fn}\` | ${f(s.ms, 0)} | ${f(s.pct)}% |`);
      }
      out.push('');
    }
  }
  return out.join('\n');
}

async function main(): Promise<void> {
  const opts = parseOptions(process.argv.slice(2), process.env, join(ROOT, 'bench/results'));
  const systems = opts.systems.filter((s): s is 'celeriac' | 'bullmq' => s === 'celeriac' || s === 'bullmq');
  const redis = await startRedis();
  const db0 = new Redis(redis.port, '127.0.0.1', { db: 0 });
  const db1 = new Redis(redis.port, '127.0.0.1', { db: 1 });
  // BENCH_PROFILE_DIR keeps the .cpuprofile files (open them in Chrome DevTools › Performance).
  const keep = process.env.BENCH_PROFILE_DIR;
  const tmp = keep ? (mkdirSync(keep, { recursive: true }), mkdtempSync(join(resolve(keep), 'run-'))) : mkdtempSync(join(tmpdir(), 'celeriac-prof-'));
  try {
    const results: SystemProfile[] = [];
    for (const s of systems) {
      log(`profiling ${s} c=${opts.concurrency[0]} N=${opts.n} ...`);
      results.push(await profileSystem(s, opts.concurrency[0]!, opts.n, redis.port, db0, db1, tmp));
    }
    const md = render(opts.n, results);
    mkdirSync(opts.outDir, { recursive: true });
    writeFileSync(join(opts.outDir, 'profile.md'), md + '\n');
    writeFileSync(join(opts.outDir, 'profile.json'), JSON.stringify({ n: opts.n, results }, null, 2) + '\n');
    log('\n' + md);
  } finally {
    db0.disconnect();
    db1.disconnect();
    await redis.stop();
    if (keep) log(`profiles kept in ${tmp}`);
    else rmSync(tmp, { recursive: true, force: true });
  }
}

main().catch((err: Error) => {
  process.stderr.write(`profile: ${err.stack ?? err.message}\n`);
  process.exit(1);
});
