/**
 * Producer-only A/B bench (issue 5): bulk enqueue (`delayMany`, one pipeline per
 * batch) and one-by-one `delay`, for two Celeriac builds and BullMQ `addBulk`,
 * interleaved round by round on one private redis-server. Nothing is consumed:
 * each measurement starts from FLUSHALL and checks the queued count.
 *
 *   node --import tsx bench/producer-ab.ts [--base=<core esm index.js>] [--new=<core esm index.js>] [--rounds=5] [--n=10000] [--batch=1000] [--chunk=1000] [--modes=bulk,single] [--bullmq=0]
 *
 * `--modes=bulk,single` picks the measurements, `--bullmq=0` leaves BullMQ out.
 * `--base` is an older build of packages/core (e.g. a copy of dist/esm made before
 * a change); without it only the current build and BullMQ run. Prints, per
 * variant, enqueue/s and producer CPU ms per 1,000 messages (Celeriac only:
 * `process.cpuUsage` of the client over the measured part), min/median/max, with
 * the load average before and after.
 */
import { loadavg } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Redis } from 'ioredis';
import { startRedis } from '../test/helpers/services.ts';
import { runClient } from './lib/proc.ts';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const args = new Map(process.argv.slice(2).map((a) => /^--([a-z-]+)=(.*)$/.exec(a) ?? [a, a, '']).map((m) => [m[1]!, m[2]!]));
const num = (k: string, d: number) => (args.has(k) ? Number(args.get(k)) : d);
const rounds = num('rounds', 5);
const n = num('n', 10_000);
const batch = num('batch', 1000);
const chunk = num('chunk', 1000);
const base = args.get('base');
/** The build under test; default the workspace's packages/core (via @celeriac/core). */
const current = args.get('new');
const modes = (args.get('modes') ?? 'bulk,single').split(',');

interface Variant {
  name: string;
  args: string[];
  env: Record<string, string>;
}
const celeriac = (label: string, mode: 'bulk' | 'single', core: string | undefined): Variant => ({
  name: `${label} ${mode === 'bulk' ? `delayMany(${batch})` : `delay x${chunk}`}`,
  args: [join(ROOT, 'bench/systems/celeriac/producer-ab.mjs'), mode, String(n), String(mode === 'bulk' ? batch : chunk)],
  env: core ? { CELERIAC_CORE: core } : {},
});
const withBullmq = args.get('bullmq') !== '0';
const variants: Variant[] = [];
if (modes.includes('bulk')) {
  if (base) variants.push(celeriac('base', 'bulk', base));
  variants.push(celeriac('new', 'bulk', current));
  if (withBullmq) variants.push({ name: `bullmq addBulk(${batch})`, args: [join(ROOT, 'bench/systems/bullmq/client.mjs'), 'enqueue-bulk', String(n), String(batch)], env: {} });
}
if (modes.includes('single')) {
  if (base) variants.push(celeriac('base', 'single', base));
  variants.push(celeriac('new', 'single', current));
  if (withBullmq) variants.push({ name: `bullmq add x${chunk}`, args: [join(ROOT, 'bench/systems/bullmq/client.mjs'), 'enqueue', String(n), String(chunk)], env: {} });
}

const fmt = (xs: number[], d = 0) => {
  const s = [...xs].sort((a, b) => a - b);
  return `${s[0]!.toFixed(d)} / ${s[Math.floor(s.length / 2)]!.toFixed(d)} / ${s[s.length - 1]!.toFixed(d)}`;
};

const redis = await startRedis();
const db0 = new Redis(redis.port, '127.0.0.1');
const env = {
  ...process.env,
  BENCH_BROKER_URL: `redis://127.0.0.1:${redis.port}/0`,
  BENCH_BACKEND_URL: `redis://127.0.0.1:${redis.port}/1`,
  BENCH_REDIS_PORT: String(redis.port),
  BENCH_BULLMQ_DB: '0',
  NODE_ENV: 'production',
};
const results = new Map<string, { perSec: number[]; cpuPer1k: number[] }>(variants.map((v) => [v.name, { perSec: [], cpuPer1k: [] }]));
const load0 = loadavg();
try {
  for (let r = 0; r < rounds; r++) {
    // Rotate the order each round so no variant always runs first.
    const order = variants.map((_, i) => variants[(i + r) % variants.length]!);
    for (const v of order) {
      await db0.flushall();
      const out = await runClient<{ ms: number; cpuMs?: number }>(v.name, process.execPath, v.args, { cwd: ROOT, env: { ...env, ...v.env }, timeoutMs: 120_000 });
      const queued = (await db0.llen('celery')) + (await db0.llen('bull:bench:wait'));
      if (queued !== n) throw new Error(`${v.name}: ${queued} queued, expected ${n}`);
      const rec = results.get(v.name)!;
      rec.perSec.push(n / (out.ms / 1000));
      if (out.cpuMs !== undefined) rec.cpuPer1k.push(out.cpuMs / (n / 1000));
      process.stdout.write(`round ${r + 1} ${v.name}: ${Math.round(n / (out.ms / 1000))}/s${out.cpuMs !== undefined ? `, ${(out.cpuMs / (n / 1000)).toFixed(1)} ms CPU/1k` : ''} (load ${loadavg()[0]!.toFixed(2)})\n`);
    }
  }
} finally {
  db0.disconnect();
  await redis.stop();
}
const load1 = loadavg();
process.stdout.write(`\nN=${n}, ${rounds} rounds, load ${load0.map((x) => x.toFixed(2)).join(' ')} -> ${load1.map((x) => x.toFixed(2)).join(' ')}\n`);
process.stdout.write(`| variant | enqueue/s min / median / max | producer CPU ms per 1k min / median / max |\n|---|---|---|\n`);
for (const v of variants) {
  const rec = results.get(v.name)!;
  process.stdout.write(`| ${v.name} | ${fmt(rec.perSec)} | ${rec.cpuPer1k.length ? fmt(rec.cpuPer1k, 1) : 'n/a'} |\n`);
}
