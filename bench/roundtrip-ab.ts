/**
 * The idle round trip, A/B: for each repetition and each worker (this build, and
 * optionally another build given with `--base`), interleaved: start the worker on a
 * fresh Redis, run `client.mjs roundtrip` (N sequential `delay → get` after 50
 * warm-up), and report the p50 / p90 and the CPU the worker and Redis spent per round
 * trip (user + system from /proc, over the client's run). Both workers run as
 * `node dist/esm/cli/main.js` (no bin flags), so only the code differs.
 *
 *   npm run build && node --import tsx bench/roundtrip-ab.ts [--n=1000] [--reps=4] [--concurrency=8]
 *     [--base=<dir inside the repo with a built @celeriac/core copy: dist/ + package.json>]
 */
import { loadavg } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startRedis } from '../test/helpers/services.ts';
import { baseBuild } from './lib/base-build.ts';
import { cpuSeconds, runClient, spawnChild, stopWorker } from './lib/proc.ts';
import { median, summarize } from './lib/stats.ts';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const log = (s: string) => process.stdout.write(s + '\n');
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const flag = (name: string, fallback: string) => process.argv.find((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3) ?? fallback;

interface Row {
  id: string;
  p50: number;
  p90: number;
  workerCpuMs: number;
  redisCpuMs: number;
}

const n = Number(flag('n', '1000'));
const reps = Number(flag('reps', '4'));
const concurrency = flag('concurrency', '8');
const base = flag('base', '');
const warmup = 50;

const builds: { id: string; cli: string; tasks: string }[] = [{ id: 'this', cli: join(ROOT, 'packages/core/dist/esm/cli/main.js'), tasks: join(ROOT, 'bench/systems/celeriac/tasks.mjs') }];
if (base) builds.unshift({ id: 'base', ...baseBuild(base) });

log(`roundtrip-ab: N=${n} after ${warmup}, reps=${reps}, -c ${concurrency}, builds=${builds.map((b) => b.id).join(', ')}; load ${loadavg().map((l) => l.toFixed(1)).join(' ')}`);
const rows: Row[] = [];
for (let rep = 1; rep <= reps; rep++) {
  for (const build of builds) {
    const redis = await startRedis();
    const env = { ...process.env, BENCH_BROKER_URL: redis.url(0), BENCH_BACKEND_URL: redis.url(1), NODE_ENV: 'production' };
    const worker = spawnChild(build.id, process.execPath, [build.cli, 'worker', '-A', build.tasks, '-c', concurrency, '-l', 'warning', '--broker', redis.url(0), '--backend', redis.url(1)], { cwd: ROOT, env });
    try {
      await sleep(1500); // started and idle
      const [w0, r0] = [cpuSeconds(worker.pid), cpuSeconds(redis.pid)];
      const out = await runClient<{ latencies: number[] }>(`${build.id} client`, process.execPath, [join(ROOT, 'bench/systems/celeriac/client.mjs'), 'roundtrip', String(n), String(warmup)], {
        cwd: ROOT,
        env,
        timeoutMs: 60_000 + n * 50,
      });
      const [w1, r1] = [cpuSeconds(worker.pid), cpuSeconds(redis.pid)];
      const s = summarize(out.latencies);
      const row = { id: build.id, p50: s.p50, p90: s.p90, workerCpuMs: ((w1 - w0) * 1000) / (n + warmup), redisCpuMs: ((r1 - r0) * 1000) / (n + warmup) };
      rows.push(row);
      log(`[rep ${rep}] ${build.id.padEnd(5)} p50 ${row.p50.toFixed(3)} ms, p90 ${row.p90.toFixed(3)} ms, worker CPU ${row.workerCpuMs.toFixed(3)} ms/rt, Redis CPU ${row.redisCpuMs.toFixed(3)} ms/rt`);
    } finally {
      await stopWorker(worker, [worker.pid]);
      await redis.stop();
    }
  }
}
log('\n| build | p50 ms (median; per rep) | p90 ms | worker CPU ms / rt | Redis CPU ms / rt |\n|---|--:|--:|--:|--:|');
for (const build of builds) {
  const mine = rows.filter((r) => r.id === build.id);
  const f = (xs: number[]) => median(xs)!.toFixed(3);
  log(`| ${build.id} | ${f(mine.map((r) => r.p50))} (${mine.map((r) => r.p50.toFixed(2)).join(' / ')}) | ${f(mine.map((r) => r.p90))} | ${f(mine.map((r) => r.workerCpuMs))} | ${f(mine.map((r) => r.redisCpuMs))} |`);
}
