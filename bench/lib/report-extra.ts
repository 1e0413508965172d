/**
 * The report's extra tables: bulk enqueue (Celeriac `delayMany` vs BullMQ
 * `addBulk`), Redis commands per task end to end, and the spread over the
 * repetitions of the per-run Celeriac ÷ BullMQ ratios.
 */
import type { RunRecord } from './measure.ts';
import type { BenchOptions } from './options.ts';
import { median, ratio } from './stats.ts';
import type { SystemConfig } from './systems.ts';

const fmtInt = (v: number | null | undefined) => (v == null ? '—' : Math.round(v).toLocaleString('en-US'));
const fmt = (v: number | null | undefined, digits: number) => (v == null ? '—' : v.toFixed(digits));

/** Min / median / max of a list, or null when empty. */
export interface Spread {
  min: number;
  median: number;
  max: number;
  n: number;
}

export function spreadOf(values: readonly (number | null | undefined)[]): Spread | null {
  const xs = values.filter((v): v is number => typeof v === 'number' && Number.isFinite(v)).sort((a, b) => a - b);
  if (xs.length === 0) return null;
  return { min: xs[0]!, median: median(xs)!, max: xs[xs.length - 1]!, n: xs.length };
}

const fmtSpread = (s: Spread | null) => (s == null ? '—' : `${s.min.toFixed(2)} / ${s.median.toFixed(2)} / ${s.max.toFixed(2)}×`);

/** Per-system medians of the bulk enqueue, pooled over the system's rows (the producer does not depend on the worker). */
export interface BulkSummary {
  system: string;
  batch: number;
  perSec: number | null;
  cmdsPerTask: number | null;
  /** Median over runs/rows of Celeriac ÷ BullMQ for the same run and concurrency row. */
  ratio: Spread | null;
}

/** Pairs (row, baseline row) of the same run. */
function pairs(configs: SystemConfig[], records: RunRecord[]): { cfg: SystemConfig; a: RunRecord; b: RunRecord }[] {
  const out: { cfg: SystemConfig; a: RunRecord; b: RunRecord }[] = [];
  for (const cfg of configs) {
    if (!cfg.baselineId) continue;
    for (const a of records.filter((r) => r.id === cfg.id && r.ok)) {
      const b = records.find((r) => r.id === cfg.baselineId && r.run === a.run && r.ok);
      if (b) out.push({ cfg, a, b });
    }
  }
  return out;
}

export function bulkSummaries(opts: BenchOptions, configs: SystemConfig[], records: RunRecord[]): BulkSummary[] {
  const out: BulkSummary[] = [];
  const systems = [...new Set(configs.filter((c) => c.enqueueBulk).map((c) => c.system))];
  for (const system of systems) {
    const ids = new Set(configs.filter((c) => c.system === system).map((c) => c.id));
    const recs = records.filter((r) => r.ok && ids.has(r.id));
    for (const batch of opts.bulkBatches) {
      const key = String(batch);
      const ratios = pairs(
        configs.filter((c) => c.system === system),
        records,
      ).map(({ a, b }) => ratio(a.bulk?.[key]?.perSec, b.bulk?.[key]?.perSec));
      out.push({
        system,
        batch,
        perSec: median(recs.map((r) => r.bulk?.[key]?.perSec)),
        cmdsPerTask: median(recs.map((r) => r.bulk?.[key]?.cmdsPerTask)),
        ratio: spreadOf(ratios),
      });
    }
  }
  return out;
}

/** Spread over the repetitions of the per-run ratios of each row with a baseline. */
export function ratioSpreads(configs: SystemConfig[], records: RunRecord[]): Record<string, { drain: Spread | null; rtP50: Spread | null; rss: Spread | null }> {
  const out: Record<string, { drain: Spread | null; rtP50: Spread | null; rss: Spread | null }> = {};
  const ps = pairs(configs, records);
  for (const cfg of configs.filter((c) => c.baselineId)) {
    const mine = ps.filter((p) => p.cfg.id === cfg.id);
    out[cfg.id] = {
      drain: spreadOf(mine.map(({ a, b }) => ratio(a.drainPerSec, b.drainPerSec))),
      rtP50: spreadOf(mine.map(({ a, b }) => ratio(a.rtP50Ms, b.rtP50Ms))),
      rss: spreadOf(mine.map(({ a, b }) => ratio(a.maxRssMB, b.maxRssMB))),
    };
  }
  return out;
}

export function renderExtraMarkdown(p: { opts: BenchOptions; configs: SystemConfig[]; records: RunRecord[] }): string {
  const { opts, configs, records } = p;
  const lines: string[] = [];
  const bulk = bulkSummaries(opts, configs, records);
  if (bulk.length > 0) {
    lines.push(`Bulk enqueue (N = ${opts.n.toLocaleString('en-US')} from one producer process, one awaited batch at a time after one unmeasured warm-up batch; Celeriac \`add.delayMany(batch)\`, BullMQ \`queue.addBulk(batch)\`; pooled over both rows of a system):`);
    lines.push('');
    lines.push('| system | batch | enqueue/s | Redis cmds / task | × BullMQ (min / median / max over runs and rows) |');
    lines.push('|---|--:|--:|--:|--:|');
    for (const b of bulk) lines.push(`| ${b.system} | ${b.batch.toLocaleString('en-US')} | ${fmtInt(b.perSec)} | ${fmt(b.cmdsPerTask, 3)} | ${b.system === 'bullmq' ? '—' : fmtSpread(b.ratio)} |`);
    lines.push('');
  }

  const largest = opts.bulkBatches.length ? String(Math.max(...opts.bulkBatches)) : null;
  lines.push(
    'Redis commands per task, end to end (`CONFIG RESETSTAT` before, `INFO commandstats` after; calls summed, commands run inside Lua scripts included, the harness\'s own commands subtracted; medians):',
  );
  lines.push('');
  lines.push(`| system | enqueue (one by one) | enqueue (bulk${largest ? ` ${Number(largest).toLocaleString('en-US')}` : ''}) | drain (reserve, run, result, ack) | end to end | end to end with bulk enqueue |`);
  lines.push('|---|--:|--:|--:|--:|--:|');
  for (const cfg of configs) {
    const recs = records.filter((r) => r.ok && r.id === cfg.id);
    const enq = median(recs.map((r) => r.enqueueCmdsPerTask));
    const drain = median(recs.map((r) => r.redisCmdsPerTask));
    const bulkCmds = largest ? median(recs.map((r) => r.bulk?.[largest]?.cmdsPerTask)) : null;
    const e2eBulk = bulkCmds != null && drain != null ? bulkCmds + drain : null;
    lines.push(`| ${cfg.label} | ${fmt(enq, 2)} | ${fmt(bulkCmds, 3)} | ${fmt(drain, 2)} | ${fmt(median(recs.map((r) => r.e2eCmdsPerTask)), 2)} | ${fmt(e2eBulk, 2)} |`);
  }
  lines.push('');

  const spreads = ratioSpreads(configs, records);
  if (Object.keys(spreads).length > 0) {
    lines.push(`Per-repetition ratios (this row ÷ BullMQ at the same concurrency in the same run; min / median / max over ${opts.runs} run(s)):`);
    lines.push('');
    lines.push('| system | drain × BullMQ | rt p50 × BullMQ | RSS × BullMQ |');
    lines.push('|---|--:|--:|--:|');
    for (const cfg of configs.filter((c) => spreads[c.id])) {
      const s = spreads[cfg.id]!;
      lines.push(`| ${cfg.label} | ${fmtSpread(s.drain)} | ${fmtSpread(s.rtP50)} | ${fmtSpread(s.rss)} |`);
    }
    lines.push('');
  }
  return lines.join('\n');
}
