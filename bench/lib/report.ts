/** Medians, ratios and the markdown report. */
import type { RunRecord } from './measure.ts';
import type { BenchOptions } from './options.ts';
import { median, ratio } from './stats.ts';
import type { SystemConfig } from './systems.ts';

export const METRICS = [
  'enqueuePerSec',
  'drainPerSec',
  'drainInclStartupPerSec',
  'workerStartupMs',
  'rtP50Ms',
  'rtP99Ms',
  'maxRssMB',
  'maxPssMB',
  'workerCpuSecPer1k',
  'redisCpuSecPer1k',
  'brokerCpuSecPer1k',
  'redisCmdsPerTask',
  'enqueueCmdsPerTask',
  'e2eCmdsPerTask',
] as const;
export type Metric = (typeof METRICS)[number];

export type Medians = Record<Metric, number | null> & {
  okRuns: number;
  failedRuns: number;
  /** Median enqueue/s of this row's runs only (`enqueuePerSec` pools all rows of the system). */
  enqueuePerSecThisRow?: number | null;
};

export interface Ratios {
  baseline: string;
  enqueue: number | null;
  drain: number | null;
  rtP50: number | null;
  rtP99: number | null;
  rss: number | null;
}

export function computeMedians(records: RunRecord[]): Medians {
  const ok = records.filter((r) => r.ok);
  const m = {} as Medians;
  for (const k of METRICS) m[k] = median(ok.map((r) => r[k]));
  m.okRuns = ok.length;
  m.failedRuns = records.length - ok.length;
  return m;
}

export function computeRatios(cfg: SystemConfig, medians: Record<string, Medians>): Ratios | null {
  if (!cfg.baselineId || !medians[cfg.baselineId]) return null;
  const a = medians[cfg.id]!;
  const b = medians[cfg.baselineId]!;
  return {
    baseline: cfg.baselineId,
    enqueue: ratio(a.enqueuePerSec, b.enqueuePerSec),
    drain: ratio(a.drainPerSec, b.drainPerSec),
    rtP50: ratio(a.rtP50Ms, b.rtP50Ms),
    rtP99: ratio(a.rtP99Ms, b.rtP99Ms),
    rss: ratio(a.maxRssMB, b.maxRssMB),
  };
}

export interface MachineInfo {
  nproc: number;
  cpuModel: string;
  memTotalGB: number;
  kernel: string;
  node: string;
  redis: string;
  bullmq: string;
  celery: string;
  celeriac: string;
  gitCommit: string;
  /** 1/5/15-min load averages when the bench started and ended (other load skews results). */
  loadAvgStart: number[];
  loadAvgEnd?: number[];
}

const fmtInt = (v: number | null | undefined) => (v == null ? '—' : Math.round(v).toLocaleString('en-US'));
const fmt = (v: number | null | undefined, digits: number) => (v == null ? '—' : v.toFixed(digits));
const fmtX = (v: number | null | undefined) => (v == null ? '—' : `${v.toFixed(2)}×`);

export function renderMarkdown(p: {
  date: string;
  opts: BenchOptions;
  machine: MachineInfo;
  configs: SystemConfig[];
  medians: Record<string, Medians>;
  ratios: Record<string, Ratios | null>;
  elapsedSec: number;
}): string {
  const { opts, machine: m } = p;
  const lines: string[] = [];
  lines.push(`# Celeriac benchmark — ${p.date}`);
  lines.push('');
  lines.push(
    `N = ${opts.n.toLocaleString('en-US')} no-op \`add(i, i)\` tasks, one local Redis, medians of ${opts.runs} run(s); ` +
      `round trip = ${opts.rt} sequential delay→get (after ${opts.rtWarmup} warm-up). Total ${p.elapsedSec.toFixed(0)} s.`,
  );
  lines.push('');
  lines.push(
    `Machine: ${m.nproc} CPU (${m.cpuModel}), ${m.memTotalGB.toFixed(0)} GB, Linux ${m.kernel}; Node ${m.node}; Redis ${m.redis}; ` +
      `BullMQ ${m.bullmq}; Celery ${m.celery} (${'/usr/bin/python3'}); Celeriac ${m.celeriac} @ ${m.gitCommit}. ` +
      `Load average (1/5/15 min) at start ${m.loadAvgStart.map((x) => x.toFixed(2)).join(' ')}, at end ${m.loadAvgEnd?.map((x) => x.toFixed(2)).join(' ') ?? '?'}.`,
  );
  lines.push('');
  lines.push(
    '| system | enqueue/s | drain/s | drain/s incl. start | rt p50 ms | rt p99 ms | worker max RSS MB | enqueue × BullMQ | drain × BullMQ | p50 × BullMQ | p99 × BullMQ | RSS × BullMQ |',
  );
  lines.push('|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|');
  for (const cfg of p.configs) {
    const md = p.medians[cfg.id]!;
    const r = p.ratios[cfg.id];
    const failed = md.failedRuns ? ` (${md.failedRuns} failed run${md.failedRuns > 1 ? 's' : ''})` : '';
    lines.push(
      `| ${cfg.label}${failed} | ${fmtInt(md.enqueuePerSec)} | ${fmtInt(md.drainPerSec)} | ${fmtInt(md.drainInclStartupPerSec)} | ${fmt(md.rtP50Ms, 2)} | ${fmt(md.rtP99Ms, 2)} | ${fmt(md.maxRssMB, 1)} | ` +
        `${fmtX(r?.enqueue)} | ${fmtX(r?.drain)} | ${fmtX(r?.rtP50)} | ${fmtX(r?.rtP99)} | ${fmtX(r?.rss)} |`,
    );
  }
  lines.push('');
  lines.push(
    'Ratios are this row ÷ BullMQ at the same concurrency: above 1× is better for enqueue/drain, below 1× is better for latency and RSS. ' +
      'enqueue/s pools the producer runs of both concurrency rows of a system (no worker runs while it publishes). ' +
      'drain/s counts from the first stored result to the N-th; "incl. start" counts from spawning the worker process. ' +
      'RSS is the worker process tree (Celery: main + pool children), max during the drain.',
  );
  lines.push('');
  lines.push('Diagnostics (medians, during the drain):');
  lines.push('');
  lines.push('| system | worker start → 1st result ms | worker CPU s / 1k tasks | Redis CPU s / 1k tasks | Redis cmds / task | worker max PSS MB |');
  lines.push('|---|--:|--:|--:|--:|--:|');
  for (const cfg of p.configs) {
    const md = p.medians[cfg.id]!;
    lines.push(
      `| ${cfg.label} | ${fmtInt(md.workerStartupMs)} | ${fmt(md.workerCpuSecPer1k, 3)} | ${fmt(md.redisCpuSecPer1k, 3)} | ${fmt(md.redisCmdsPerTask, 1)} | ${fmt(md.maxPssMB, 1)} |`,
    );
  }
  lines.push('');
  return lines.join('\n');
}
