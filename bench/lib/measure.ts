/**
 * One measurement of one system: enqueue N (producer process, no worker), then
 * drain them (start the worker on the pre-filled queue, time until all N results
 * are stored, sampling the worker's memory), then 1,000 sequential round trips
 * against the warm worker, then stop the worker.
 */
import { cpuSeconds, MemorySampler, runClient, spawnChild, stopWorker, type Spawned } from './proc.ts';
import { summarize, type LatencySummary } from './stats.ts';
import type { Conns, SystemConfig } from './systems.ts';
import type { BenchOptions } from './options.ts';

export interface RunRecord {
  run: number;
  id: string;
  ok: boolean;
  error?: string;
  n: number;
  enqueueMs?: number;
  /** N / enqueue time. */
  enqueuePerSec?: number;
  /** Worker spawn → first result stored. */
  workerStartupMs?: number;
  /** First result stored → all N stored. */
  drainMs?: number;
  /** Headline: N / drainMs. */
  drainPerSec?: number;
  /** Worker spawn → all N stored. */
  drainInclStartupMs?: number;
  drainInclStartupPerSec?: number;
  /** Max over the drain of the worker tree's summed VmRSS, MB. */
  maxRssMB?: number;
  /** Max over the drain of the worker tree's summed Pss (shared pages split), MB. */
  maxPssMB?: number;
  workerProcesses?: number;
  memSamples?: number;
  /** Worker tree CPU seconds (user+sys) per 1,000 tasks, first result → last. */
  workerCpuSecPer1k?: number;
  /** Redis CPU seconds (user+sys) per 1,000 tasks over the same window. */
  redisCpuSecPer1k?: number;
  /** The broker's CPU seconds per 1,000 tasks over the same window, when it is not the bench Redis (RabbitMQ's process tree). */
  brokerCpuSecPer1k?: number;
  /** Redis commands per task during the drain (incl. those run inside Lua scripts). */
  redisCmdsPerTask?: number;
  /** Redis commands per task of the one-by-one enqueue (all commands the producer process sent, connect included). */
  enqueueCmdsPerTask?: number;
  /** enqueueCmdsPerTask + redisCmdsPerTask: one `delay` → stored result → ack, end to end. */
  e2eCmdsPerTask?: number;
  /** Per command: calls per task during the one-by-one enqueue. */
  enqueueCommands?: Record<string, { callsPerTask: number; usecPerTask: number }>;
  /** Bulk enqueue (`delayMany` / `addBulk`) per batch size: N / time, and Redis commands per task. */
  bulk?: Record<string, { ms: number; perSec: number; cmdsPerTask: number }>;
  /** Per command: calls per task and usec per task, during the drain. */
  redisCommands?: Record<string, { callsPerTask: number; usecPerTask: number }>;
  roundtrip?: LatencySummary;
  rtP50Ms?: number;
  rtP99Ms?: number;
  workerStoppedGracefully?: boolean;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function redisCpu(c: Conns): Promise<number> {
  const info = await c.db0.info('cpu');
  const num = (k: string) => Number(new RegExp(`^${k}:([\\d.]+)`, 'm').exec(info)?.[1] ?? 0);
  return num('used_cpu_user') + num('used_cpu_sys');
}

export async function commandStats(c: Conns): Promise<Map<string, { calls: number; usec: number }>> {
  const info = await c.db0.info('commandstats');
  const out = new Map<string, { calls: number; usec: number }>();
  for (const m of info.matchAll(/^cmdstat_([^:]+):calls=(\d+),usec=(\d+)/gm)) out.set(m[1]!, { calls: Number(m[2]), usec: Number(m[3]) });
  return out;
}

/**
 * Calls per task from an `INFO commandstats` snapshot, minus the harness's own
 * commands (`own`: command → calls), sorted by time spent.
 */
export function perTask(stats: Map<string, { calls: number; usec: number }>, own: Map<string, number>, n: number): { total: number; commands: Record<string, { callsPerTask: number; usecPerTask: number }> } {
  let total = 0;
  const commands: Record<string, { callsPerTask: number; usecPerTask: number }> = {};
  for (const [cmd, s] of [...stats].sort((a, b) => b[1].usec - a[1].usec)) {
    const calls = s.calls - (own.get(cmd) ?? 0);
    if (calls <= 0) continue;
    total += calls;
    commands[cmd] = { callsPerTask: calls / n, usecPerTask: s.usec / n };
  }
  return { total: total / n, commands };
}

function treeCpu(pids: Iterable<number>): number {
  let s = 0;
  for (const p of pids) s += cpuSeconds(p);
  return s;
}

/** Processes we must stop if the orchestrator is interrupted. */
export const liveWorkers = new Set<Spawned>();

/** The queue length once it reaches `n`, polling up to `timeoutMs` (unconfirmed publishes land late). */
async function waitQueued(cfg: SystemConfig, conns: Conns, n: number, timeoutMs: number): Promise<number> {
  const deadline = performance.now() + timeoutMs;
  let queued = await cfg.queueLength(conns);
  while (queued < n && performance.now() < deadline) {
    await new Promise((r) => setTimeout(r, 50));
    queued = await cfg.queueLength(conns);
  }
  return queued;
}

export async function measureOnce(cfg: SystemConfig, conns: Conns, opts: BenchOptions, run: number, log: (s: string) => void): Promise<RunRecord> {
  const n = opts.n;
  const rec: RunRecord = { run, id: cfg.id, ok: false, n };
  await conns.db0.flushall();
  await cfg.resetBroker?.();

  // 0. Bulk enqueue (delayMany / addBulk), per batch size, then flushed: the drain
  //    below runs on the one-by-one enqueue's messages, as before.
  if (cfg.enqueueBulk && opts.bulkBatches.length > 0) {
    rec.bulk = {};
    for (const batch of opts.bulkBatches) {
      const cmd = cfg.enqueueBulk(n, batch);
      await conns.db0.config('RESETSTAT');
      const out = await runClient<{ ms: number }>(`${cfg.id} bulk producer (batch ${batch})`, cmd.command, cmd.args, { cwd: cmd.cwd, env: cmd.env, timeoutMs: 60_000 + n * 5 });
      const cmds = perTask(await commandStats(conns), new Map([['config|resetstat', 1]]), n);
      const queuedBulk = await waitQueued(cfg, conns, n, 10_000);
      if (queuedBulk !== n) throw new Error(`${cfg.id}: expected ${n} queued messages after the bulk enqueue (batch ${batch}), found ${queuedBulk}`);
      rec.bulk[String(batch)] = { ms: out.ms, perSec: n / (out.ms / 1000), cmdsPerTask: cmds.total };
      await conns.db0.flushall();
    }
  }

  // 1. Enqueue: N publishes from a producer process, no worker running.
  await conns.db0.config('RESETSTAT');
  const enq = await runClient<{ ms: number }>(`${cfg.id} producer`, cfg.enqueue.command, cfg.enqueue.args, {
    cwd: cfg.enqueue.cwd,
    env: cfg.enqueue.env,
    timeoutMs: 60_000 + n * 5,
  });
  const enqCmds = perTask(await commandStats(conns), new Map([['config|resetstat', 1]]), n);
  rec.enqueueCmdsPerTask = enqCmds.total;
  rec.enqueueCommands = enqCmds.commands;
  rec.enqueueMs = enq.ms;
  rec.enqueuePerSec = n / (enq.ms / 1000);
  // Python Celery publishes to RabbitMQ without confirms: its producer may exit before
  // RabbitMQ has routed the last messages, so the queue count lags; wait (bounded) for it.
  const queued = await waitQueued(cfg, conns, n, 10_000);
  if (queued !== n) throw new Error(`${cfg.id}: expected ${n} queued messages after enqueue, found ${queued} (after waiting up to 10 s)`);
  if ((await cfg.countResults(conns)) !== 0) throw new Error(`${cfg.id}: results present before the worker started`);
  if (opts.enqueueOnly) {
    rec.ok = true;
    return rec;
  }

  // 2. Drain: start the worker on the pre-filled queue; poll until all N results are stored.
  await conns.db0.config('RESETSTAT');
  const cpu0 = await redisCpu(conns);
  const worker = spawnChild(`${cfg.id} worker`, cfg.worker.command, cfg.worker.args, { cwd: cfg.worker.cwd, env: cfg.worker.env });
  liveWorkers.add(worker);
  const sampler = new MemorySampler(worker.pid);
  sampler.start();
  let knownPids: number[] = [worker.pid];
  try {
    const deadline = performance.now() + 60_000 + n * 20;
    let polls = 0;
    let tFirst: number | undefined;
    let cpuFirst = 0;
    let redisCpuFirst = cpu0;
    let brokerCpuFirst = 0;
    let count = 0;
    while (count < n) {
      if (worker.hasExited()) throw new Error(`${cfg.id} worker exited during the drain (${await worker.exited})\n${worker.stderrTail()}`);
      if (performance.now() > deadline) throw new Error(`${cfg.id}: drain timed out with ${count}/${n} results stored\n${worker.stderrTail()}`);
      count = await cfg.countResults(conns);
      polls++;
      const now = performance.now();
      if (tFirst === undefined && count > 0) {
        tFirst = now;
        cpuFirst = treeCpu(sampler.pids);
        redisCpuFirst = await redisCpu(conns);
        brokerCpuFirst = cfg.brokerCpuSeconds?.() ?? 0;
      }
      if (count < n) await sleep(opts.pollMs);
    }
    const tDone = performance.now();
    knownPids = sampler.stop();
    const cpuDone = treeCpu(knownPids);
    const redisCpuDone = await redisCpu(conns);
    const brokerCpuDone = cfg.brokerCpuSeconds?.();
    const stats = await commandStats(conns);

    rec.workerStartupMs = tFirst! - worker.spawnedAt;
    rec.drainMs = tDone - tFirst!;
    rec.drainPerSec = n / (rec.drainMs / 1000);
    rec.drainInclStartupMs = tDone - worker.spawnedAt;
    rec.drainInclStartupPerSec = n / (rec.drainInclStartupMs / 1000);
    rec.maxRssMB = sampler.maxRssKb / 1024;
    rec.maxPssMB = sampler.maxPssKb / 1024;
    rec.workerProcesses = sampler.maxProcs;
    rec.memSamples = sampler.samples;
    rec.workerCpuSecPer1k = ((cpuDone - cpuFirst) / n) * 1000;
    rec.redisCpuSecPer1k = ((redisCpuDone - redisCpuFirst) / n) * 1000;
    if (brokerCpuDone !== undefined) rec.brokerCpuSecPer1k = ((brokerCpuDone - brokerCpuFirst) / n) * 1000;
    // Our own polling and INFO calls are not the system's work.
    const drainCmds = perTask(stats, new Map([[cfg.pollCommand, polls], ['info', 3], ['config|resetstat', 1]]), n);
    rec.redisCommands = drainCmds.commands;
    rec.redisCmdsPerTask = drainCmds.total;
    rec.e2eCmdsPerTask = rec.enqueueCmdsPerTask + drainCmds.total;

    const check = await cfg.verify(conns, n);
    if (check.problems.length) throw new Error(`${cfg.id}: result check failed:\n  ${check.problems.slice(0, 5).join('\n  ')}`);

    // 3. Round trips against the warm worker.
    const rt = await runClient<{ latencies: number[] }>(`${cfg.id} round-trip client`, cfg.roundtrip.command, cfg.roundtrip.args, {
      cwd: cfg.roundtrip.cwd,
      env: cfg.roundtrip.env,
      timeoutMs: 120_000 + (opts.rt + opts.rtWarmup) * 50,
    });
    rec.roundtrip = summarize(rt.latencies);
    rec.rtP50Ms = rec.roundtrip.p50;
    rec.rtP99Ms = rec.roundtrip.p99;
    rec.ok = true;
  } finally {
    sampler.stop();
    const { graceful } = await stopWorker(worker, knownPids);
    liveWorkers.delete(worker);
    rec.workerStoppedGracefully = graceful;
    if (!graceful) log(`  ! ${cfg.id} worker did not stop within the grace period; killed`);
  }
  return rec;
}
