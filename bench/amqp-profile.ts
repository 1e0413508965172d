/**
 * Where does the Celeriac worker spend its CPU on the RabbitMQ drain? Enqueues N
 * bench tasks on a private RabbitMQ (results on a private Redis, as in run.ts), then
 * drains them with the CLI worker under `node --cpu-prof` (with the bin's memory flags,
 * or BENCH_WORKER_NODE_ARGS in their place), and prints the worker's
 * and RabbitMQ's CPU seconds per 1k tasks and the profile's top functions.
 *
 *   npm run build && node --import tsx bench/amqp-profile.ts [--n=10000] [--concurrency=8]
 *   (BENCH_PROFILE_DIR=/tmp/prof keeps the .cpuprofile file)
 */
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Redis } from 'ioredis';
import { startRedis } from '../test/helpers/services.ts';
import { startRabbitMQ } from '../test/helpers/rabbitmq.ts';
import { summarizeProfile } from './lib/cpuprofile.ts';
import { parseOptions } from './lib/options.ts';
import { cpuSeconds, processTree, runClient, spawnChild, stopWorker } from './lib/proc.ts';
import { systemConfigs } from './lib/systems.ts';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const flag = (name: string, dflt: number) => Number(process.argv.find((a) => a.startsWith(`--${name}=`))?.split('=')[1] ?? dflt);
const n = flag('n', 10_000);
const concurrency = flag('concurrency', 8);

const redis = await startRedis();
const rabbit = await startRabbitMQ();
const db1 = new Redis({ port: redis.port, db: 1 });
const keep = process.env.BENCH_PROFILE_DIR;
const dir = keep ?? mkdtempSync(join(tmpdir(), 'amqp-prof-'));
try {
  const opts = parseOptions([`--n=${n}`, '--systems=celeriac-amqp', `--concurrency=${concurrency}`], {}, '');
  const cfg = systemConfigs(opts, ROOT, redis.port, rabbit.url)[0]!;
  await runClient(`producer`, cfg.enqueue.command, cfg.enqueue.args, { cwd: cfg.enqueue.cwd, env: cfg.enqueue.env, timeoutMs: 120_000 });
  const rabbitCpu = () => processTree(rabbit.pid).reduce((s, p) => s + cpuSeconds(p), 0);
  const r0 = rabbitCpu();
  // The worker command is the `celeriac` bin, whose shell line adds its node flags: node
  // flags for the profile go to node running the bin file, with the bin's own flags.
  const nodeArgs = ['--cpu-prof', `--cpu-prof-dir=${dir}`, ...(process.env.BENCH_WORKER_NODE_ARGS ?? '--max-semi-space-size=4 --heap-growing-percent=50').split(' ').filter(Boolean)];
  const worker = spawnChild('worker', process.execPath, [...nodeArgs, cfg.worker.command, ...cfg.worker.args], { cwd: cfg.worker.cwd, env: cfg.worker.env });
  const t0 = performance.now();
  while ((await db1.dbsize()) < n) {
    if (worker.hasExited()) throw new Error(`The worker exited before draining: ${worker.stderrTail()}`);
    await sleep(10);
  }
  const ms = performance.now() - t0;
  const workerCpu = cpuSeconds(worker.pid);
  const brokerCpu = rabbitCpu() - r0;
  await stopWorker(worker, [worker.pid]);
  const f = readdirSync(dir).find((x) => x.endsWith('.cpuprofile'));
  const summary = f ? summarizeProfile(join(dir, f), 40) : null;
  process.stdout.write(
    `c=${concurrency} n=${n}: ${Math.round(n / (ms / 1000))}/s (incl. start-up), worker CPU ${((workerCpu / n) * 1000).toFixed(3)} s/1k (incl. start-up), RabbitMQ CPU ${((brokerCpu / n) * 1000).toFixed(3)} s/1k\n`,
  );
  if (summary) {
    process.stdout.write(`busy ${summary.busyMs.toFixed(0)} ms\n`);
    for (const c of summary.byCategory) process.stdout.write(`  ${c.category.padEnd(28)} ${c.ms.toFixed(0).padStart(6)} ms ${c.pct.toFixed(1)}%\n`);
    process.stdout.write('top self:\n');
    for (const t of summary.topSelf) process.stdout.write(`  ${t.ms.toFixed(0).padStart(6)} ms ${t.pct.toFixed(1).padStart(5)}%  ${t.fn}\n`);
  }
} finally {
  db1.disconnect();
  await rabbit.stop();
  await redis.stop();
  if (!keep) rmSync(dir, { recursive: true, force: true });
}
