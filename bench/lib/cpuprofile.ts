/** Summarize a V8 `.cpuprofile` (node --cpu-prof): self time by category and function, inclusive time by Celeriac function. */
import { readFileSync } from 'node:fs';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}
interface Profile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
  startTime: number;
  endTime: number;
}

export interface ProfileSummary {
  totalMs: number;
  /** Non-idle sampled time. */
  busyMs: number;
  byCategory: { category: string; ms: number; pct: number }[];
  topSelf: { fn: string; ms: number; pct: number }[];
  /** Inclusive time of Celeriac's own functions (synchronous parts only: async continuations start new stacks). */
  topCeleriacInclusive: { fn: string; ms: number; pct: number }[];
}

function shortUrl(url: string): string {
  const m = /(packages\/[^/]+\/dist\/.*|node_modules\/.*|bench\/.*)$/.exec(url);
  return m ? m[1]! : url.replace(/^file:\/\//, '');
}

export function category(url: string, fn: string): string {
  if (!url) {
    if (fn === '(garbage collector)') return 'GC';
    if (fn === '(idle)') return 'idle';
    if (fn === '(program)') return 'V8/native (program)';
    return `native ${fn}`;
  }
  if (url.includes('packages/core/dist/esm/brokers/')) return 'celeriac: brokers';
  if (url.includes('packages/core/dist/esm/backends/')) return 'celeriac: backends';
  if (url.includes('packages/core/dist/esm/protocol/')) return 'celeriac: protocol';
  if (url.includes('packages/core/dist/esm/worker/')) return 'celeriac: worker';
  if (url.includes('packages/core/dist/')) return 'celeriac: other';
  if (/node_modules\/(ioredis|redis-parser|@ioredis|denque|standard-as-callback|cluster-key-slot)\//.test(url)) return 'ioredis';
  if (/node_modules\/(pino|sonic-boom|thread-stream|pino-std-serializers|quick-format-unescaped)\//.test(url)) return 'pino (logging)';
  if (url.includes('node_modules/bullmq/')) return 'bullmq';
  if (url.includes('node_modules/msgpackr')) return 'msgpackr';
  if (url.startsWith('node:')) return 'node internals';
  if (url.includes('/bench/')) return 'bench code';
  return 'other';
}

export function summarizeProfile(path: string, top = 25): ProfileSummary {
  const p = JSON.parse(readFileSync(path, 'utf8')) as Profile;
  const byId = new Map(p.nodes.map((n) => [n.id, n]));
  const parent = new Map<number, number>();
  for (const n of p.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const selfUs = new Map<number, number>();
  for (let i = 0; i < p.samples.length; i++) {
    const dt = p.timeDeltas[i + 1] ?? p.timeDeltas[i] ?? 0;
    selfUs.set(p.samples[i]!, (selfUs.get(p.samples[i]!) ?? 0) + Math.max(0, dt));
  }
  const key = (n: ProfileNode) => `${n.callFrame.functionName || '(anonymous)'} ${shortUrl(n.callFrame.url)}:${n.callFrame.lineNumber + 1}`;
  const cat = new Map<string, number>();
  const self = new Map<string, number>();
  const incl = new Map<string, number>();
  let total = 0;
  let idle = 0;
  for (const [id, us] of selfUs) {
    const n = byId.get(id)!;
    total += us;
    const c = category(n.callFrame.url, n.callFrame.functionName);
    if (c === 'idle') idle += us;
    cat.set(c, (cat.get(c) ?? 0) + us);
    if (c !== 'idle') self.set(key(n), (self.get(key(n)) ?? 0) + us);
    // Inclusive: each Celeriac function on this stack, once.
    const seen = new Set<string>();
    for (let cur: number | undefined = id; cur !== undefined; cur = parent.get(cur)) {
      const f = byId.get(cur)!;
      if (!f.callFrame.url.includes('packages/core/dist/')) continue;
      const k = key(f);
      if (seen.has(k)) continue;
      seen.add(k);
      incl.set(k, (incl.get(k) ?? 0) + us);
    }
  }
  const busy = total - idle;
  const rows = (m: Map<string, number>, denom: number) =>
    [...m].sort((a, b) => b[1] - a[1]).map(([k, us]) => ({ k, ms: us / 1000, pct: (100 * us) / denom }));
  return {
    totalMs: total / 1000,
    busyMs: busy / 1000,
    byCategory: rows(cat, total).map(({ k, ms, pct }) => ({ category: k, ms, pct })),
    topSelf: rows(self, busy).slice(0, top).map(({ k, ms, pct }) => ({ fn: k, ms, pct })),
    topCeleriacInclusive: rows(incl, busy).slice(0, top).map(({ k, ms, pct }) => ({ fn: k, ms, pct })),
  };
}
