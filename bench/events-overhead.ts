/**
 * Event overhead (issue 12): the same Celeriac drain with and without `-E` (task
 * events), in one run on one local Redis, ABBA-interleaved so drift on a loaded
 * machine hits both alike. A monitor subscribes to `celeryev` during every drain
 * (as Flower or `celeriac events` would) and counts the task-succeeded events, so
 * the `-E` rows are checked to have really sent one per task. Target: `-E` drains
 * less than 15 % slower.
 *
 *   npm run bench:events                    # N=10,000, 3 runs, c=8
 *   BENCH_N=2000 BENCH_RUNS=1 npm run bench:events
 *
 * Writes bench/results/events-overhead.{json,md} and prints the table. Part of
 * `npm run bench`. Uses the main bench's measurement (bench/lib/measure.ts): drain
 * rate from the first stored result to the last, worker CPU per 1,000 tasks.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Redis } from 'ioredis';
import { startRedis } from '../test/helpers/services.ts';
import { liveWorkers, measureOnce, type RunRecord } from './lib/measure.ts';
import { parseOptions } from './lib/options.ts';
import { killPid } from './lib/proc.ts';
import { median } from './lib/stats.ts';
import { systemConfigs, type Conns, type SystemConfig } from './lib/systems.ts';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const log = (s: string) => process.stdout.write(s + '\n');
const TARGET = 0.15;

/** Counts task-succeeded events on the `celeryev` fanout (kombu's Redis PUBLISH emulation). */
class EventCounter {
  succeeded = 0;
  constructor(private readonly sub: Redis) {
    sub.on('pmessage', (_p: string, channel: string, raw: string) => {
      if (!channel.includes('/task.')) return;
      try {
        const body = JSON.parse(Buffer.from((JSON.parse(raw) as { body: string }).body, 'base64').toString('utf8')) as unknown;
        for (const e of Array.isArray(body) ? body : [body]) if ((e as { type?: string }).type === 'task-succeeded') this.succeeded++;
      } catch {
        // not an event
      }
    });
  }
  static async open(url: string): Promise<EventCounter> {
    const sub = new Redis(url);
    await sub.psubscribe('/0.celeryev*');
    return new EventCounter(sub);
  }
  close(): void {
    this.sub.disconnect();
  }
}

interface Row {
  run: number;
  plain: RunRecord;
  events: RunRecord;
  /** `-E` drain rate / plain drain rate. */
  drainRatio: number;
  /** `-E` worker CPU per task / plain. */
  cpuRatio: number;
  succeededEvents: number;
  loadAvg: number[];
}

async function main(): Promise<void> {
  const opts = parseOptions([], { BENCH_RT: '20', BENCH_RT_WARMUP: '0', BENCH_BULK_BATCHES: '', BENCH_CONCURRENCY: '8', ...process.env, BENCH_SYSTEMS: 'celeriac' }, join(ROOT, 'bench/results'));
  const redis = await startRedis();
  const conns: Conns = { db0: new Redis(redis.url(0)), db1: new Redis(redis.url(1)) };
  const c = opts.concurrency[0]!;
  const plain = systemConfigs(opts, ROOT, redis.port).find((cfg) => cfg.id === `celeriac-c${c}`)!;
  const withEvents: SystemConfig = { ...plain, id: `celeriac-c${c}-E`, label: `Celeriac c=${c} -E`, baselineId: plain.id, worker: { ...plain.worker, args: [...plain.worker.args, '-E'] } };
  const rows: Row[] = [];
  try {
    log(`events overhead: N=${opts.n}, ${opts.runs} run(s), c=${c}, load average at start ${loadavg().map((l) => l.toFixed(2)).join(' ')}`);
    for (let run = 1; run <= opts.runs; run++) {
      // ABBA: plain first in odd runs, -E first in even ones.
      const order = run % 2 === 1 ? [plain, withEvents] : [withEvents, plain];
      const got = new Map<string, RunRecord>();
      let succeededEvents = 0;
      for (const cfg of order) {
        const counter = await EventCounter.open(redis.url(0));
        try {
          const rec = await measureOnce(cfg, conns, opts, run, log);
          if (cfg === withEvents) {
            // One task-succeeded per drained task and per round trip; the last batch is
            // flushed within 100 ms of the last task: wait for it (bounded).
            const expected = opts.n + opts.rt + opts.rtWarmup;
            const deadline = Date.now() + 5_000;
            while (counter.succeeded < expected && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
            succeededEvents = counter.succeeded;
            if (succeededEvents !== expected) throw new Error(`-E run ${run}: ${succeededEvents} task-succeeded events for ${expected} tasks`);
          } else if (counter.succeeded !== 0) {
            throw new Error(`plain run ${run}: ${counter.succeeded} task-succeeded events without -E`);
          }
          got.set(cfg.id, rec);
          log(`  run ${run} ${cfg.label}: drain ${Math.round(rec.drainPerSec!)}/s, worker CPU ${rec.workerCpuSecPer1k!.toFixed(3)} s/1k tasks`);
        } finally {
          counter.close();
        }
      }
      const p = got.get(plain.id)!;
      const e = got.get(withEvents.id)!;
      rows.push({ run, plain: p, events: e, drainRatio: e.drainPerSec! / p.drainPerSec!, cpuRatio: e.workerCpuSecPer1k! / p.workerCpuSecPer1k!, succeededEvents, loadAvg: loadavg() });
    }
  } finally {
    for (const w of liveWorkers) killPid(w.pid, 'SIGKILL');
    conns.db0.disconnect();
    conns.db1.disconnect();
    await redis.stop();
  }

  const ratios = rows.map((r) => r.drainRatio);
  const medianRatio = median(ratios) ?? Number.NaN;
  const slowdown = 1 - medianRatio;
  const cpuRatios = rows.map((r) => r.cpuRatio);
  const medianCpu = median(cpuRatios) ?? Number.NaN;
  const fmt = (x: number) => x.toFixed(3);
  const lines = [
    `# Event overhead: drain with -E vs without (Celeriac c=${c}, N=${opts.n}, Redis)`,
    '',
    '| run | drain/s plain | drain/s -E | -E / plain | worker CPU s/1k plain | worker CPU s/1k -E | CPU -E / plain | task-succeeded events (drained + round trips) | load avg (1/5/15) after |',
    '|---|---|---|---|---|---|---|---|---|',
    ...rows.map(
      (r) =>
        `| ${r.run} | ${Math.round(r.plain.drainPerSec!)} | ${Math.round(r.events.drainPerSec!)} | ${fmt(r.drainRatio)} | ${fmt(r.plain.workerCpuSecPer1k!)} | ${fmt(r.events.workerCpuSecPer1k!)} | ${fmt(r.cpuRatio)} | ${r.succeededEvents} | ${r.loadAvg.map((l) => l.toFixed(2)).join(' / ')} |`,
    ),
    '',
    `Median -E / plain drain ratio ${fmt(medianRatio)} (spread ${fmt(Math.min(...ratios))}–${fmt(Math.max(...ratios))}): ` +
      `${slowdown > 0 ? `${(slowdown * 100).toFixed(1)} % slower` : `no slowdown (${(-slowdown * 100).toFixed(1)} % faster)`} with events; target < ${TARGET * 100} % slower: ${slowdown < TARGET ? 'met' : 'NOT met'}.`,
    `Median -E / plain worker CPU per task ${fmt(medianCpu)} (spread ${fmt(Math.min(...cpuRatios))}–${fmt(Math.max(...cpuRatios))}): ` +
      'the steadier measure on a shared machine, where the drain rate moves with the neighbours\' load.',
    '',
  ];
  const md = lines.join('\n');
  const out = join(ROOT, 'bench/results');
  mkdirSync(out, { recursive: true });
  writeFileSync(join(out, 'events-overhead.md'), md);
  writeFileSync(join(out, 'events-overhead.json'), JSON.stringify({ n: opts.n, concurrency: c, runs: rows, medianDrainRatio: medianRatio, medianCpuRatio: medianCpu, targetSlowdown: TARGET }, null, 2));
  log('\n' + md);
}

main().catch((err: unknown) => {
  process.stderr.write(`${(err as Error).stack ?? err}\n`);
  process.exit(1);
});
