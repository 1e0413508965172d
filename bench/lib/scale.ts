/**
 * Scale mode (`npm run bench -- --scale`): a large Celeriac backlog (default
 * 1,000,000) enqueued with `delayMany` and drained by one worker, compared with
 * the 10,000-task rates of the same run; the worker's RSS over the drain; and
 * Redis memory per queued message (`INFO memory` used_memory delta ÷ N) beside
 * Python Celery's producer (same task, same arguments, `--scale-celery-n`
 * messages) and BullMQ `addBulk`.
 */
import { MemorySampler, runClient, spawnChild, stopWorker, type Spawned } from './proc.ts';
import type { Medians } from './report.ts';
import type { RunRecord } from './measure.ts';
import type { BenchOptions } from './options.ts';
import { median, ratio } from './stats.ts';
import type { Command, Conns, SystemConfig } from './systems.ts';

export interface ScaleMemory {
  system: string;
  n: number;
  enqueuePerSec: number;
  /** (used_memory after − before) ÷ n, bytes. */
  bytesPerTask: number;
  /** Length of one queued message (the first list element), bytes; null for BullMQ (a hash per job). */
  messageBytes: number | null;
  how: string;
}

export interface ScaleDrain {
  n: number;
  concurrency: number;
  drainPerSec: number;
  drainInclStartupPerSec: number;
  /** Worker tree RSS (MB) when 10 %, 25 %, ... of the results were stored. */
  rssAtPctMB: Record<string, number>;
  maxRssMB: number;
  /** Drain rate of each tenth of the backlog (tasks/s). */
  decileRates: number[];
}

/**
 * The 10,000-task rates measured in steady state, right before the backlog: the
 * producer after `warmup` unmeasured messages, the worker timed from the moment
 * `warmup` results are stored until `warmup + n` are (a warm worker: JIT-compiled,
 * heap grown, connections up). The matrix's 10,000-task drain is timed from the
 * first result of a freshly started worker, so it includes that warm-up.
 */
export interface SteadyReference {
  n: number;
  warmup: number;
  bulkEnqueuePerSec: number;
  drainPerSec: number;
}

export interface ScaleResult {
  memory: ScaleMemory[];
  drain: ScaleDrain | null;
  /** Celeriac scale rate ÷ the 10,000-task rate of the same run (1 = same speed). */
  vs10k: { bulkEnqueue: number | null; drain: number | null; bulkEnqueue10k: number | null; drain10k: number | null };
  steady: SteadyReference | null;
  /** Celeriac scale rate ÷ the steady-state 10,000-task rate. */
  vsSteady: { bulkEnqueue: number | null; drain: number | null };
  error?: string;
}

/** Unmeasured messages before the steady-state 10,000-task window. */
const STEADY_WARMUP = 20_000;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function usedMemory(c: Conns): Promise<number> {
  const info = await c.db0.info('memory');
  return Number(/^used_memory:(\d+)/m.exec(info)?.[1] ?? NaN);
}

/** FLUSHALL, enqueue n with `cmd`, measure used_memory growth per message once the producer has exited. */
async function enqueueAndMeasure(system: string, how: string, cmd: Command, n: number, conns: Conns, queueLength: (c: Conns) => Promise<number>, firstMessage: (c: Conns) => Promise<string | null>): Promise<ScaleMemory> {
  await conns.db0.flushall();
  const before = await usedMemory(conns);
  const out = await runClient<{ ms: number }>(`${system} scale producer`, cmd.command, cmd.args, { cwd: cmd.cwd, env: cmd.env, timeoutMs: 120_000 + n * 5 });
  const after = await usedMemory(conns);
  const queued = await queueLength(conns);
  if (queued !== n) throw new Error(`${system}: expected ${n} queued messages in scale mode, found ${queued}`);
  const first = await firstMessage(conns);
  return { system, n, enqueuePerSec: n / (out.ms / 1000), bytesPerTask: (after - before) / n, messageBytes: first === null ? null : Buffer.byteLength(first), how };
}

export async function runScale(p: {
  opts: BenchOptions;
  configs: SystemConfig[];
  scaleConfigs: SystemConfig[];
  medians: Record<string, Medians>;
  records: RunRecord[];
  conns: Conns;
  live: Set<Spawned>;
  log: (s: string) => void;
}): Promise<ScaleResult> {
  const { opts, conns, log } = p;
  const result: ScaleResult = { memory: [], drain: null, vs10k: { bulkEnqueue: null, drain: null, bulkEnqueue10k: null, drain10k: null }, steady: null, vsSteady: { bulkEnqueue: null, drain: null } };
  const firstListItem = async (c: Conns) => (await c.db0.lindex('celery', 0)) ?? null;
  const celeriac = p.scaleConfigs.find((c) => c.system === 'celeriac' && c.concurrency === opts.scaleConcurrency);
  const bullmq = p.scaleConfigs.find((c) => c.system === 'bullmq');
  const celery = p.scaleConfigs.find((c) => c.system === 'celery');

  if (celeriac?.enqueueBulk) {
    log(`[scale] Celeriac: steady-state ${opts.n.toLocaleString('en-US')}-task reference (after ${STEADY_WARMUP.toLocaleString('en-US')} unmeasured) …`);
    result.steady = await steadyReference(celeriac, opts, conns, p.live);
    log(`[scale] Celeriac steady state: bulk enqueue ${Math.round(result.steady.bulkEnqueuePerSec).toLocaleString('en-US')}/s, drain ${Math.round(result.steady.drainPerSec).toLocaleString('en-US')}/s`);
    const n = opts.scaleN;
    log(`[scale] Celeriac: enqueue ${n.toLocaleString('en-US')} with delayMany (batch ${opts.scaleBatch}) …`);
    const mem = await enqueueAndMeasure('celeriac', `add.delayMany, batch ${opts.scaleBatch}`, celeriac.enqueueBulk(n, opts.scaleBatch), n, conns, celeriac.queueLength, firstListItem);
    result.memory.push(mem);
    log(`[scale] Celeriac: ${Math.round(mem.enqueuePerSec).toLocaleString('en-US')}/s, ${mem.bytesPerTask.toFixed(0)} B of Redis memory per queued task; draining with c=${celeriac.concurrency} …`);
    result.drain = await drainBacklog(celeriac, n, conns, p.live);
    log(`[scale] Celeriac: drain ${Math.round(result.drain.drainPerSec).toLocaleString('en-US')}/s, RSS ${Object.entries(result.drain.rssAtPctMB).map(([k, v]) => `${k}% ${v.toFixed(0)}`).join(', ')} MB`);
    const tenK = p.medians[celeriac.id];
    const ids = new Set(p.configs.filter((c) => c.system === 'celeriac').map((c) => c.id));
    result.vs10k.bulkEnqueue10k = median(p.records.filter((r) => r.ok && ids.has(r.id)).map((r) => r.bulk?.[String(opts.scaleBatch)]?.perSec));
    result.vs10k.drain10k = tenK?.drainPerSec ?? null;
    result.vs10k.bulkEnqueue = ratio(mem.enqueuePerSec, result.vs10k.bulkEnqueue10k);
    result.vs10k.drain = ratio(result.drain.drainPerSec, result.vs10k.drain10k);
    result.vsSteady.bulkEnqueue = ratio(mem.enqueuePerSec, result.steady.bulkEnqueuePerSec);
    result.vsSteady.drain = ratio(result.drain.drainPerSec, result.steady.drainPerSec);
  }
  if (celery) {
    const n = opts.scaleCeleryN;
    log(`[scale] Celery: enqueue ${n.toLocaleString('en-US')} with add.delay in a loop (Python Celery's producer) …`);
    result.memory.push(await enqueueAndMeasure('celery', 'add.delay in a loop (Python)', celery.enqueueN(n), n, conns, celery.queueLength, firstListItem));
  }
  if (bullmq?.enqueueBulk) {
    const n = opts.scaleCeleryN;
    log(`[scale] BullMQ: enqueue ${n.toLocaleString('en-US')} with addBulk (batch ${opts.scaleBatch}) …`);
    result.memory.push(await enqueueAndMeasure('bullmq', `queue.addBulk, batch ${opts.scaleBatch}`, bullmq.enqueueBulk(n, opts.scaleBatch), n, conns, bullmq.queueLength, async () => null));
  }
  await conns.db0.flushall();
  return result;
}

/** See `SteadyReference`. */
async function steadyReference(cfg: SystemConfig, opts: BenchOptions, conns: Conns, live: Set<Spawned>): Promise<SteadyReference> {
  const n = opts.n;
  const warmup = STEADY_WARMUP;
  await conns.db0.flushall();
  const enq = await runClient<{ ms: number }>('celeriac steady producer', ...commandArgs(cfg.enqueueBulk!(n, opts.scaleBatch, warmup)));
  await conns.db0.flushall();
  await runClient<{ ms: number }>('celeriac steady backlog', ...commandArgs(cfg.enqueueBulk!(warmup + n, opts.scaleBatch)));
  const worker = spawnChild(`${cfg.id} steady worker`, cfg.worker.command, cfg.worker.args, { cwd: cfg.worker.cwd, env: cfg.worker.env });
  live.add(worker);
  try {
    const deadline = performance.now() + 120_000 + (warmup + n) * 20;
    let tWarm: number | undefined;
    let count = 0;
    while (count < warmup + n) {
      if (worker.hasExited()) throw new Error(`${cfg.id} worker exited during the steady-state reference (${await worker.exited})\n${worker.stderrTail()}`);
      if (performance.now() > deadline) throw new Error(`${cfg.id}: steady-state reference timed out with ${count}/${warmup + n} results stored`);
      count = await cfg.countResults(conns);
      if (tWarm === undefined && count >= warmup) tWarm = performance.now();
      if (count < warmup + n) await sleep(10);
    }
    const tDone = performance.now();
    return { n, warmup, bulkEnqueuePerSec: n / (enq.ms / 1000), drainPerSec: n / ((tDone - tWarm!) / 1000) };
  } finally {
    await stopWorker(worker, [worker.pid]);
    live.delete(worker);
    await conns.db0.flushall();
  }
}

function commandArgs(cmd: Command): [string, string[], { cwd: string | undefined; env: NodeJS.ProcessEnv | undefined; timeoutMs: number }] {
  return [cmd.command, cmd.args, { cwd: cmd.cwd, env: cmd.env, timeoutMs: 600_000 }];
}

async function drainBacklog(cfg: SystemConfig, n: number, conns: Conns, live: Set<Spawned>): Promise<ScaleDrain> {
  const worker = spawnChild(`${cfg.id} scale worker`, cfg.worker.command, cfg.worker.args, { cwd: cfg.worker.cwd, env: cfg.worker.env });
  live.add(worker);
  const sampler = new MemorySampler(worker.pid, 250);
  sampler.start();
  let knownPids = [worker.pid];
  try {
    const marks = [10, 25, 50, 75, 90, 100];
    const rssAtPctMB: Record<string, number> = {};
    const decileTimes: number[] = [];
    const deadline = performance.now() + 120_000 + n * 2;
    let tFirst: number | undefined;
    let count = 0;
    while (count < n) {
      if (worker.hasExited()) throw new Error(`${cfg.id} worker exited during the scale drain (${await worker.exited})\n${worker.stderrTail()}`);
      if (performance.now() > deadline) throw new Error(`${cfg.id}: scale drain timed out with ${count}/${n} results stored`);
      count = await cfg.countResults(conns);
      const now = performance.now();
      if (tFirst === undefined && count > 0) tFirst = now;
      for (const m of marks) if (rssAtPctMB[m] === undefined && count >= (n * m) / 100) rssAtPctMB[m] = sampler.lastRssKb / 1024;
      while (decileTimes.length < 10 && count >= (n * (decileTimes.length + 1)) / 10) decileTimes.push(now);
      if (count < n) await sleep(100);
    }
    const tDone = performance.now();
    knownPids = sampler.stop();
    const check = await cfg.verify(conns, n);
    if (check.problems.length) throw new Error(`${cfg.id}: scale result check failed:\n  ${check.problems.slice(0, 5).join('\n  ')}`);
    const decileRates = decileTimes.map((t, i) => n / 10 / ((t - (i === 0 ? tFirst! : decileTimes[i - 1]!)) / 1000));
    return {
      n,
      concurrency: cfg.concurrency,
      drainPerSec: n / ((tDone - tFirst!) / 1000),
      drainInclStartupPerSec: n / ((tDone - worker.spawnedAt) / 1000),
      rssAtPctMB,
      maxRssMB: sampler.maxRssKb / 1024,
      decileRates,
    };
  } finally {
    sampler.stop();
    await stopWorker(worker, knownPids);
    live.delete(worker);
  }
}

const fmtInt = (v: number | null | undefined) => (v == null ? '—' : Math.round(v).toLocaleString('en-US'));
const fmtX = (v: number | null | undefined) => (v == null ? '—' : `${v.toFixed(2)}×`);

export function renderScaleMarkdown(s: ScaleResult, opts: BenchOptions): string {
  const lines: string[] = [];
  lines.push(`## Scale mode (--scale)`);
  lines.push('');
  if (s.error) lines.push(`**Scale mode failed:** ${s.error}`, '');
  if (s.drain) {
    const d = s.drain;
    lines.push(
      `Celeriac: ${d.n.toLocaleString('en-US')}-task backlog enqueued with \`add.delayMany\` (batch ${opts.scaleBatch}), drained by one worker at c=${d.concurrency}; compared with the ${opts.n.toLocaleString('en-US')}-task medians of this run.`,
    );
    lines.push('');
    lines.push(`| | ${d.n.toLocaleString('en-US')} tasks | ${opts.n.toLocaleString('en-US')} tasks | ratio |`);
    lines.push('|---|--:|--:|--:|');
    const mem = s.memory.find((m) => m.system === 'celeriac');
    lines.push(`| bulk enqueue/s | ${fmtInt(mem?.enqueuePerSec)} | ${fmtInt(s.vs10k.bulkEnqueue10k)} | ${fmtX(s.vs10k.bulkEnqueue)} |`);
    lines.push(`| drain/s (c=${d.concurrency}) | ${fmtInt(d.drainPerSec)} | ${fmtInt(s.vs10k.drain10k)} | ${fmtX(s.vs10k.drain)} |`);
    lines.push('');
    if (s.steady) {
      const st = s.steady;
      lines.push(
        `The ${opts.n.toLocaleString('en-US')}-task medians above come from fresh processes (the drain is timed from a new worker's first result), so JIT ` +
          `compilation, heap growth and connection set-up weigh on them far more than on a ${d.n.toLocaleString('en-US')}-task run. Steady state, measured ` +
          `right before the backlog: the producer after ${st.warmup.toLocaleString('en-US')} unmeasured messages, the worker timed from its ` +
          `${st.warmup.toLocaleString('en-US')}th result to its ${(st.warmup + st.n).toLocaleString('en-US')}th:`,
      );
      lines.push('');
      lines.push(`| | ${d.n.toLocaleString('en-US')} tasks | ${st.n.toLocaleString('en-US')} tasks, steady state | ratio (target 0.85–1.15×) |`);
      lines.push('|---|--:|--:|--:|');
      lines.push(`| bulk enqueue/s | ${fmtInt(mem?.enqueuePerSec)} | ${fmtInt(st.bulkEnqueuePerSec)} | ${fmtX(s.vsSteady.bulkEnqueue)} |`);
      lines.push(`| drain/s (c=${d.concurrency}) | ${fmtInt(d.drainPerSec)} | ${fmtInt(st.drainPerSec)} | ${fmtX(s.vsSteady.drain)} |`);
      lines.push('');
    }
    lines.push(`Drain rate per tenth of the backlog (tasks/s): ${d.decileRates.map((r) => fmtInt(r)).join(', ')}.`);
    lines.push('');
    lines.push(`Worker RSS (MB) when x % of the results were stored: ${Object.entries(d.rssAtPctMB).map(([k, v]) => `${k} %: ${v.toFixed(1)}`).join(', ')}; max ${d.maxRssMB.toFixed(1)}.`);
    lines.push('');
  }
  if (s.memory.length > 0) {
    lines.push('Redis memory per queued task (`INFO memory` used_memory after the producer exited − before, ÷ N; the same `add(i, i)` message for Celeriac and Celery):');
    lines.push('');
    lines.push('| system | producer | N | enqueue/s | bytes / queued task | bytes of one message |');
    lines.push('|---|---|--:|--:|--:|--:|');
    for (const m of s.memory) lines.push(`| ${m.system} | ${m.how} | ${m.n.toLocaleString('en-US')} | ${fmtInt(m.enqueuePerSec)} | ${fmtInt(m.bytesPerTask)} | ${fmtInt(m.messageBytes)} |`);
    lines.push('');
    if (s.memory.some((m) => m.system !== 'celeriac' && m.n !== opts.scaleN)) {
      lines.push(`Celery and BullMQ enqueue ${opts.scaleCeleryN.toLocaleString('en-US')} messages, not ${opts.scaleN.toLocaleString('en-US')}, to bound the time (Celery's Python producer runs ~1,000/s); bytes per task do not depend on N beyond Redis's list/hash encodings.`);
      lines.push('');
    }
  }
  return lines.join('\n');
}
