/**
 * A/B of the RabbitMQ drain in one run, interleaved: the Celeriac worker of this tree
 * ("new") against the worker of another built checkout ("base", e.g. a `git archive`
 * of main with its own `npm run build`), beside Celery 5.2 prefork on the same
 * RabbitMQ and Celeriac on Redis, measured as run.ts measures them (measureOnce).
 * The A/B order alternates per repetition. Prints one line per measurement and, per
 * row, min / median / max of drain/s, worker CPU s / 1k and RabbitMQ CPU s / 1k.
 *
 *   npm run build && node --import tsx bench/amqp-ab.ts --base=/path/to/base [--runs=3] [--n=10000] [--concurrency=8,50]
 *
 * The base checkout needs its own node_modules whose `@celeriac/core` is its own
 * packages/core (the bench tasks module imports it), not a link to this tree.
 */
import { execFileSync } from 'node:child_process';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Redis } from 'ioredis';
import { startRedis } from '../test/helpers/services.ts';
import { startRabbitMQ } from '../test/helpers/rabbitmq.ts';
import { liveWorkers, measureOnce, type RunRecord } from './lib/measure.ts';
import { parseOptions } from './lib/options.ts';
import { cpuSeconds, killPid, processTree } from './lib/proc.ts';
import { median } from './lib/stats.ts';
import { systemConfigs, type Conns, type SystemConfig } from './lib/systems.ts';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const log = (s: string) => process.stdout.write(s + '\n');
const baseArg = process.argv.find((a) => a.startsWith('--base='));
if (!baseArg) throw new Error('--base=<built checkout> is required');
const BASE = resolve(baseArg.slice('--base='.length));
const rest = process.argv.slice(2).filter((a) => a !== baseArg);
const opts = parseOptions(['--systems=celeriac,celeriac-amqp,celery-amqp', '--rt=1', '--rt-warmup=0', '--bulk-batches=', ...rest], process.env, '');
const loadavg = () => execFileSync('uptime').toString().trim().replace(/.*load average: /, '');

/** The same system with the worker (CLI and tasks module) of the base checkout. */
function onBase(cfg: SystemConfig): SystemConfig {
  const args = cfg.worker.args.map((a) => (a.startsWith(ROOT) ? BASE + a.slice(ROOT.length) : a));
  return { ...cfg, id: `${cfg.id}-base`, label: `${cfg.label} (base)`, worker: { ...cfg.worker, args, cwd: BASE } };
}

const redis = await startRedis();
const rabbit = await startRabbitMQ();
const conns: Conns = { db0: new Redis(redis.port, '127.0.0.1', { db: 0 }), db1: new Redis(redis.port, '127.0.0.1', { db: 1 }) };
try {
  const rabbitCpu = () => processTree(rabbit.pid).reduce((s, p) => s + cpuSeconds(p), 0);
  const all = systemConfigs(opts, ROOT, redis.port, rabbit.url, rabbitCpu);
  const records: RunRecord[] = [];
  const ids: string[] = [];
  for (let run = 1; run <= opts.runs; run++) {
    const order: SystemConfig[] = [];
    for (const c of opts.concurrency) {
      const fresh = all.find((x) => x.system === 'celeriac-amqp' && x.concurrency === c)!;
      const pair = [onBase(fresh), fresh];
      order.push(...(run % 2 === 1 ? pair : pair.reverse()), all.find((x) => x.system === 'celeriac' && x.concurrency === c)!);
    }
    order.push(all.find((x) => x.system === 'celery-amqp')!);
    for (const cfg of order) {
      if (!ids.includes(cfg.id)) ids.push(cfg.id);
      const before = loadavg();
      try {
        const rec = await measureOnce(cfg, conns, opts, run, () => undefined);
        records.push(rec);
        log(
          `[run ${run}] ${cfg.id.padEnd(24)} drain ${Math.round(rec.drainPerSec ?? 0)}/s, worker CPU ${rec.workerCpuSecPer1k?.toFixed(3)} s/1k, ` +
            `RabbitMQ CPU ${rec.brokerCpuSecPer1k?.toFixed(3) ?? '—'} s/1k, Redis CPU ${rec.redisCpuSecPer1k?.toFixed(3)} s/1k (load before: ${before})`,
        );
      } catch (err) {
        log(`[run ${run}] ${cfg.id} FAILED: ${(err as Error).message}`);
      }
    }
  }
  const stat = (id: string, f: (r: RunRecord) => number | undefined) => {
    const v = records.filter((r) => r.id === id && r.ok !== false).map(f).filter((x): x is number => x !== undefined);
    return v.length ? { min: Math.min(...v), med: median(v) ?? 0, max: Math.max(...v) } : undefined;
  };
  const fmt = (s: { min: number; med: number; max: number } | undefined, d: number) =>
    s ? `${s.min.toFixed(d)} / **${s.med.toFixed(d)}** / ${s.max.toFixed(d)}` : '—';
  const celery = stat('celery-amqp-c' + opts.celeryConcurrency, (r) => r.drainPerSec)?.med;
  log(`\nN=${opts.n}, runs=${opts.runs}; min / median / max per row; load at the end: ${loadavg()}`);
  log('| row | drain/s | ÷ Celery on RabbitMQ (medians) | ÷ Celeriac on Redis (medians) | worker CPU s / 1k | RabbitMQ CPU s / 1k | Redis CPU s / 1k |');
  log('|---|--:|--:|--:|--:|--:|--:|');
  for (const id of ids) {
    const drain = stat(id, (r) => r.drainPerSec);
    const c = /-c(\d+)/.exec(id)?.[1];
    const redisDrain = stat(`celeriac-c${c}`, (r) => r.drainPerSec)?.med;
    const ratio = (x: number | undefined) => (drain && x ? `${(drain.med / x).toFixed(2)}×` : '—');
    log(
      `| ${id} | ${fmt(drain, 0)} | ${ratio(celery)} | ${id.includes('amqp') && !id.startsWith('celery-') ? ratio(redisDrain) : '—'} | ${fmt(stat(id, (r) => r.workerCpuSecPer1k), 3)} | ${fmt(stat(id, (r) => r.brokerCpuSecPer1k), 3)} | ${fmt(stat(id, (r) => r.redisCpuSecPer1k), 3)} |`,
    );
  }
} finally {
  for (const w of liveWorkers) killPid(w.pid, 'SIGKILL');
  conns.db0.disconnect();
  conns.db1.disconnect();
  await rabbit.stop();
  await redis.stop();
}
