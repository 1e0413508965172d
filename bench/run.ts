/**
 * Celeriac benchmark harness: `npm run bench` (builds, then runs this file).
 *
 * Starts its own redis-server on a free loopback port, then for each run and each
 * system (Celeriac and BullMQ at each concurrency, Python Celery 5.2 prefork):
 * FLUSHALL → enqueue N from a producer process → drain them with a freshly started
 * worker process (timed until all N results are stored, worker RSS sampled) →
 * sequential round trips → stop the worker. Writes bench/results/latest.json
 * (every run + medians + ratios) and latest.md, and prints the table.
 * Options: see bench/lib/options.ts or `npm run bench -- --help`.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, release, totalmem } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Redis } from 'ioredis';
import { startRedis, type RedisServer } from '../test/helpers/services.ts';
import { rabbitmqMissing, startRabbitMQ, type RabbitServer } from '../test/helpers/rabbitmq.ts';
import { liveWorkers, measureOnce, type RunRecord } from './lib/measure.ts';
import { parseOptions } from './lib/options.ts';
import { cpuSeconds, killPid, processTree } from './lib/proc.ts';
import { computeMedians, computeRatios, renderMarkdown, type MachineInfo, type Medians, type Ratios } from './lib/report.ts';
import { bulkSummaries, ratioSpreads, renderExtraMarkdown } from './lib/report-extra.ts';
import { renderScaleMarkdown, runScale, type ScaleResult } from './lib/scale.ts';
import { median } from './lib/stats.ts';
import { SYSTEM_PYTHON, systemConfigs, type Conns } from './lib/systems.ts';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const log = (s: string) => process.stdout.write(s + '\n');

function tryExec(cmd: string, args: string[]): string {
  try {
    return execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
  } catch {
    return 'unknown';
  }
}

async function machineInfo(conns: Conns): Promise<MachineInfo> {
  const server = await conns.db0.info('server');
  const pkg = (p: string) => (existsSync(join(ROOT, p)) ? (JSON.parse(readFileSync(join(ROOT, p), 'utf8')) as { version: string }).version : 'not installed');
  const dirty = tryExec('git', ['-C', ROOT, 'status', '--porcelain', '--untracked-files=no']) ? '+dirty' : '';
  return {
    nproc: Number(tryExec('nproc', [])) || cpus().length,
    cpuModel: cpus()[0]?.model.trim() ?? 'unknown',
    memTotalGB: totalmem() / 2 ** 30,
    kernel: release(),
    node: process.version,
    redis: /^redis_version:(\S+)/m.exec(server)?.[1] ?? 'unknown',
    bullmq: pkg('bench/systems/bullmq/node_modules/bullmq/package.json'),
    celery: tryExec(SYSTEM_PYTHON, ['-c', 'import celery, kombu; print(celery.__version__ + " / kombu " + kombu.__version__)']),
    celeriac: pkg('packages/core/package.json'),
    gitCommit: tryExec('git', ['-C', ROOT, 'rev-parse', '--short', 'HEAD']) + dirty,
    loadAvgStart: loadavg(),
  };
}

function brief(r: RunRecord): string {
  const i = (v?: number) => (v === undefined ? '?' : Math.round(v).toLocaleString('en-US'));
  const f = (v?: number, d = 2) => (v === undefined ? '?' : v.toFixed(d));
  return (
    `enqueue ${i(r.enqueuePerSec)}/s, drain ${i(r.drainPerSec)}/s (incl. start ${i(r.drainInclStartupPerSec)}/s), ` +
    `rt p50 ${f(r.rtP50Ms)} ms p99 ${f(r.rtP99Ms)} ms, RSS ${f(r.maxRssMB, 1)} MB`
  );
}

async function main(): Promise<void> {
  const opts = parseOptions(process.argv.slice(2), process.env, join(ROOT, 'bench/results'));
  if (opts.systems.includes('celeriac') && !existsSync(join(ROOT, 'packages/core/dist/esm/brokers/redis.js'))) {
    throw new Error('packages/core/dist/esm/brokers/redis.js is missing: run `npm run build` (or `npm run bench`, which builds) first.');
  }
  if (opts.systems.includes('celery') && !existsSync(SYSTEM_PYTHON)) throw new Error(`${SYSTEM_PYTHON} not found (Debian python3-celery is needed for the Celery rows).`);

  const started = Date.now();
  let redis: RedisServer | undefined;
  let rabbit: RabbitServer | undefined;
  let conns: Conns | undefined;
  const cleanup = async () => {
    for (const w of liveWorkers) killPid(w.pid, 'SIGKILL');
    conns?.db0.disconnect();
    conns?.db1.disconnect();
    await redis?.stop();
    await rabbit?.stop();
  };
  const onSignal = () => {
    log('\nInterrupted; stopping workers and redis-server.');
    void cleanup().finally(() => process.exit(130));
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);

  try {
    redis = await startRedis();
    conns = { db0: new Redis(redis.port, '127.0.0.1', { db: 0 }), db1: new Redis(redis.port, '127.0.0.1', { db: 1 }) };
    const machine = await machineInfo(conns);
    // The -amqp systems: one private RabbitMQ (loopback, own node and ports), stopped by PID at the end.
    if (opts.systems.some((x) => x.endsWith('-amqp'))) {
      const why = rabbitmqMissing();
      if (why) log(`RabbitMQ rows skipped: ${why}`);
      else rabbit = await startRabbitMQ();
    }
    // RabbitMQ's CPU: its whole process tree (the server script and beam.smp), read from /proc.
    const server = rabbit;
    const rabbitCpu = server ? () => processTree(server.pid).reduce((s, p) => s + cpuSeconds(p), 0) : undefined;
    const configs = systemConfigs(opts, ROOT, redis.port, rabbit?.url ?? null, rabbitCpu);
    log(
      `Celeriac bench: N=${opts.n}, runs=${opts.runs}, rt=${opts.rt}, configs=${configs.map((c) => c.id).join(', ')}; ` +
        `redis-server ${machine.redis} pid ${redis.pid} on 127.0.0.1:${redis.port}; ${machine.nproc} CPU, Node ${machine.node}`,
    );

    const records: RunRecord[] = [];
    for (let run = 1; run <= opts.runs; run++) {
      for (const cfg of configs) {
        const t0 = Date.now();
        let rec: RunRecord;
        try {
          rec = await measureOnce(cfg, conns, opts, run, log);
          log(`[run ${run}/${opts.runs}] ${cfg.label.padEnd(24)} ${brief(rec)}  (${((Date.now() - t0) / 1000).toFixed(1)} s)`);
        } catch (err) {
          rec = { run, id: cfg.id, ok: false, n: opts.n, error: (err as Error).message };
          log(`[run ${run}/${opts.runs}] ${cfg.label.padEnd(24)} FAILED: ${(err as Error).message}`);
        }
        records.push(rec);
      }
    }

    const medians: Record<string, Medians> = {};
    for (const cfg of configs) medians[cfg.id] = computeMedians(records.filter((r) => r.id === cfg.id));
    // The producer does not depend on the worker's concurrency (no worker runs while
    // it publishes), so every enqueue sample of a system estimates the same thing:
    // pool them (e.g. 6 samples instead of 3) for a steadier median.
    for (const cfg of configs) {
      const sameSystem = new Set(configs.filter((c) => c.system === cfg.system).map((c) => c.id));
      medians[cfg.id]!.enqueuePerSecThisRow = medians[cfg.id]!.enqueuePerSec;
      medians[cfg.id]!.enqueuePerSec = median(records.filter((r) => r.ok && sameSystem.has(r.id)).map((r) => r.enqueuePerSec));
    }
    const ratios: Record<string, Ratios | null> = {};
    for (const cfg of configs) ratios[cfg.id] = computeRatios(cfg, medians);

    let scale: ScaleResult | undefined;
    if (opts.scale) {
      const scaleConfigs = systemConfigs({ ...opts, concurrency: [opts.scaleConcurrency] }, ROOT, redis.port).filter((c) => !c.system.endsWith('-amqp'));
      try {
        scale = await runScale({ opts, configs, scaleConfigs, medians, records, conns, live: liveWorkers, log });
      } catch (err) {
        scale = { memory: [], drain: null, vs10k: { bulkEnqueue: null, drain: null, bulkEnqueue10k: null, drain10k: null }, steady: null, vsSteady: { bulkEnqueue: null, drain: null }, error: (err as Error).message };
        log(`[scale] FAILED: ${(err as Error).message}`);
      }
    }

    machine.loadAvgEnd = loadavg();
    const date = new Date().toISOString();
    const elapsedSec = (Date.now() - started) / 1000;
    const md =
      renderMarkdown({ date, opts, machine, configs, medians, ratios, elapsedSec }) +
      '\n' +
      renderExtraMarkdown({ opts, configs, records }) +
      renderAmqpSummary(configs, medians) +
      (scale ? '\n' + renderScaleMarkdown(scale, opts) : '');
    const json = {
      date,
      elapsedSec,
      options: { ...opts, outDir: undefined },
      machine,
      configs: configs.map((c) => ({
        id: c.id,
        system: c.system,
        label: c.label,
        concurrency: c.concurrency,
        baseline: c.baselineId,
        worker: [c.worker.command, ...c.worker.args].join(' '),
      })),
      medians,
      ratios,
      bulk: bulkSummaries(opts, configs, records),
      ratioSpreads: ratioSpreads(configs, records),
      scale,
      runs: records,
    };
    mkdirSync(opts.outDir, { recursive: true });
    writeFileSync(join(opts.outDir, 'latest.json'), JSON.stringify(json, null, 2) + '\n');
    writeFileSync(join(opts.outDir, 'latest.md'), md);
    log('\n' + md);
    log(`Wrote ${join(opts.outDir, 'latest.json')} and latest.md`);
    if (records.some((r) => !r.ok) || scale?.error) process.exitCode = 1;
  } finally {
    await cleanup();
  }
}

/** Celeriac on RabbitMQ against Celery on RabbitMQ and against Celeriac on Redis, same run (drain medians). */
function renderAmqpSummary(configs: ReturnType<typeof systemConfigs>, medians: Record<string, Medians>): string {
  const rows = configs.filter((c) => c.system === 'celeriac-amqp');
  const celery = configs.find((c) => c.system === 'celery-amqp');
  if (rows.length === 0) return '';
  const fmt = (v: number | null | undefined) => (v === undefined || v === null || !Number.isFinite(v) ? '—' : `${v.toFixed(1)}×`);
  const cpu = (v: number | null | undefined) => (v === undefined || v === null ? '—' : v.toFixed(3));
  const lines = [
    '',
    '### RabbitMQ broker (drain, same run)',
    '',
    '| system | drain/s | ÷ Celery 5.2 prefork on RabbitMQ | ÷ Celeriac on Redis, same c | worker CPU s / 1k | RabbitMQ CPU s / 1k |',
    '|---|--:|--:|--:|--:|--:|',
  ];
  for (const c of rows) {
    const own = medians[c.id]?.drainPerSec;
    const py = celery ? medians[celery.id]?.drainPerSec : undefined;
    const redisRow = medians[c.id.replace('-amqp', '')]?.drainPerSec;
    const m = medians[c.id];
    lines.push(
      `| ${c.label} | ${own === undefined || own === null ? '—' : Math.round(own).toLocaleString('en-US')} | ${fmt(own && py ? own / py : undefined)} | ${fmt(own && redisRow ? own / redisRow : undefined)} | ${cpu(m?.workerCpuSecPer1k)} | ${cpu(m?.brokerCpuSecPer1k)} |`,
    );
  }
  if (celery) {
    const m = medians[celery.id];
    const py = m?.drainPerSec;
    lines.push(`| ${celery.label} | ${py === undefined || py === null ? '—' : Math.round(py).toLocaleString('en-US')} | 1.0× | — | ${cpu(m?.workerCpuSecPer1k)} | ${cpu(m?.brokerCpuSecPer1k)} |`);
  }
  return lines.join('\n') + '\n';
}

main().catch((err: Error) => {
  process.stderr.write(`bench: ${err.stack ?? err.message}\n`);
  process.exit(1);
});
