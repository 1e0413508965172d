/** Benchmark options: argv `--name=value` overrides env `BENCH_NAME`, which overrides the default. */

export type SystemName = 'celeriac' | 'bullmq' | 'celery';

export interface BenchOptions {
  /** Tasks per enqueue/drain measurement. */
  n: number;
  /** Repetitions of the whole matrix; medians are taken over them. */
  runs: number;
  systems: SystemName[];
  /** Worker concurrency for Celeriac and BullMQ. */
  concurrency: number[];
  /** Prefork pool size for Python Celery. */
  celeryConcurrency: number;
  /** Sequential round trips measured per run, after `rtWarmup` unmeasured ones. */
  rt: number;
  rtWarmup: number;
  /** Concurrent publishes per awaited chunk (Celeriac, BullMQ). */
  chunk: number;
  /** Celeriac `--prefetch-multiplier` (undefined = its default). */
  celeriacPrefetch: number | undefined;
  /** Where latest.json / latest.md go. */
  outDir: string;
  /** Result-count polling interval during drain, ms. */
  pollMs: number;
}

const HELP = `Usage: npm run bench [-- --n=10000 --runs=3 --systems=celeriac,bullmq,celery ...]
       (or env BENCH_N, BENCH_RUNS, BENCH_SYSTEMS, ...)

  --n                   tasks per enqueue/drain measurement     (BENCH_N, default 10000)
  --runs                repetitions; medians over them          (BENCH_RUNS, default 3)
  --systems             celeriac,bullmq,celery                  (BENCH_SYSTEMS, default all)
  --concurrency         Celeriac/BullMQ worker concurrency list (BENCH_CONCURRENCY, default 8,50)
  --celery-concurrency  Python Celery prefork -c                (BENCH_CELERY_CONCURRENCY, default 2)
  --rt                  sequential delay→get round trips        (BENCH_RT, default 1000)
  --rt-warmup           unmeasured round trips before those     (BENCH_RT_WARMUP, default 50)
  --chunk               concurrent publishes per awaited chunk  (BENCH_CHUNK, default 1000)
  --celeriac-prefetch   Celeriac --prefetch-multiplier          (BENCH_CELERIAC_PREFETCH, default: Celeriac's)
  --out                 output directory                        (BENCH_OUT, default bench/results)
  --poll-ms             drain completion polling interval       (BENCH_POLL_MS, default 10)
`;

export function parseOptions(argv: string[], env: NodeJS.ProcessEnv, defaultOut: string): BenchOptions {
  const flags = new Map<string, string>();
  for (const arg of argv) {
    if (arg === '--help' || arg === '-h') {
      process.stdout.write(HELP);
      process.exit(0);
    }
    const m = /^--([a-z-]+)=(.*)$/.exec(arg);
    if (!m) throw new Error(`Unknown argument ${JSON.stringify(arg)}\n\n${HELP}`);
    flags.set(m[1]!, m[2]!);
  }
  const get = (name: string): string | undefined => flags.get(name) ?? env[`BENCH_${name.toUpperCase().replace(/-/g, '_')}`];
  const int = (name: string, def: number, min = 1): number => {
    const raw = get(name);
    if (raw === undefined || raw === '') return def;
    const v = Number(raw);
    if (!Number.isInteger(v) || v < min) throw new Error(`--${name} must be an integer >= ${min}, got ${JSON.stringify(raw)}`);
    return v;
  };
  const systems = (get('systems') ?? 'celeriac,bullmq,celery').split(',').map((s) => s.trim().toLowerCase()).filter(Boolean);
  for (const s of systems) if (!['celeriac', 'bullmq', 'celery'].includes(s)) throw new Error(`Unknown system ${JSON.stringify(s)}; use celeriac, bullmq, celery.`);
  const concurrency = (get('concurrency') ?? '8,50').split(',').map((c) => Number(c.trim()));
  if (concurrency.some((c) => !Number.isInteger(c) || c < 1)) throw new Error(`--concurrency must be a list of positive integers`);
  const prefetch = get('celeriac-prefetch');
  return {
    n: int('n', 10_000),
    runs: int('runs', 3),
    systems: systems as SystemName[],
    concurrency,
    celeryConcurrency: int('celery-concurrency', 2),
    rt: int('rt', 1000),
    rtWarmup: int('rt-warmup', 50, 0),
    chunk: int('chunk', 1000),
    celeriacPrefetch: prefetch === undefined || prefetch === '' ? undefined : int('celeriac-prefetch', 4, 0),
    outDir: get('out') ?? defaultOut,
    pollMs: int('poll-ms', 10),
  };
}
