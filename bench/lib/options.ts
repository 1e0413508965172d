/** Benchmark options: argv `--name=value` overrides env `BENCH_NAME`, which overrides the default. */

/** `-amqp`: the same system with RabbitMQ as broker (results still on Redis db 1). */
export type SystemName = 'celeriac' | 'bullmq' | 'celery' | 'celeriac-amqp' | 'celery-amqp';

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
  /** Batch sizes of the bulk enqueue (Celeriac `delayMany` vs BullMQ `addBulk`); empty = skip. */
  bulkBatches: number[];
  /** Producer side only (`--enqueue-only`): bulk and one-by-one enqueue, no worker, no drain, no round trips. */
  enqueueOnly: boolean;
  /** Run the scale mode after the matrix (`--scale`). */
  scale: boolean;
  /** Scale mode: Celeriac backlog size. */
  scaleN: number;
  /** Scale mode: messages Python Celery's producer enqueues for the memory comparison. */
  scaleCeleryN: number;
  /** Scale mode: bulk batch size of the backlog enqueue. */
  scaleBatch: number;
  /** Scale mode: Celeriac worker concurrency for the drain. */
  scaleConcurrency: number;
}

const HELP = `Usage: npm run bench [-- --n=10000 --runs=3 --systems=celeriac,bullmq,celery ...]
       (or env BENCH_N, BENCH_RUNS, BENCH_SYSTEMS, ...)

  --n                   tasks per enqueue/drain measurement     (BENCH_N, default 10000)
  --runs                repetitions; medians over them          (BENCH_RUNS, default 3)
  --systems             celeriac,bullmq,celery,celeriac-amqp,   (BENCH_SYSTEMS, default all; the -amqp ones
                        celery-amqp                             use a private RabbitMQ as broker)
  --concurrency         Celeriac/BullMQ worker concurrency list (BENCH_CONCURRENCY, default 8,50)
  --celery-concurrency  Python Celery prefork -c                (BENCH_CELERY_CONCURRENCY, default 2)
  --rt                  sequential delay→get round trips        (BENCH_RT, default 1000)
  --rt-warmup           unmeasured round trips before those     (BENCH_RT_WARMUP, default 50)
  --chunk               concurrent publishes per awaited chunk  (BENCH_CHUNK, default 1000)
  --celeriac-prefetch   Celeriac --prefetch-multiplier          (BENCH_CELERIAC_PREFETCH, default: Celeriac's)
  --out                 output directory                        (BENCH_OUT, default bench/results)
  --poll-ms             drain completion polling interval       (BENCH_POLL_MS, default 10)
  --bulk-batches        bulk enqueue batch sizes (delayMany vs  (BENCH_BULK_BATCHES, default 100,1000; "" = skip)
                        addBulk), same N
  --enqueue-only        producer side only: the bulk and one-by-one (BENCH_ENQUEUE_ONLY)
                        enqueue, no worker, drain or round trips
  --scale               also run the scale mode (opt-in, ~10 min): a --scale-n backlog enqueued with
                        delayMany and drained, worker RSS over the drain, Redis memory per queued
                        task beside Python Celery's (--scale-celery-n messages) and BullMQ's
  --scale-n             Celeriac backlog                        (BENCH_SCALE_N, default 1000000)
  --scale-celery-n      Celery/BullMQ messages for memory/task  (BENCH_SCALE_CELERY_N, default 100000)
  --scale-batch         delayMany batch size for the backlog    (BENCH_SCALE_BATCH, default 1000)
  --scale-concurrency   Celeriac worker -c for the scale drain  (BENCH_SCALE_CONCURRENCY, default: largest --concurrency)
`;

export function parseOptions(argv: string[], env: NodeJS.ProcessEnv, defaultOut: string): BenchOptions {
  const flags = new Map<string, string>();
  for (const arg of argv) {
    if (arg === '--help' || arg === '-h') {
      process.stdout.write(HELP);
      process.exit(0);
    }
    if (arg === '--scale' || arg === '--enqueue-only') {
      flags.set(arg.slice(2), '1');
      continue;
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
  const all = ['celeriac', 'bullmq', 'celery', 'celeriac-amqp', 'celery-amqp'];
  const systems = (get('systems') ?? all.join(',')).split(',').map((s) => s.trim().toLowerCase()).filter(Boolean);
  for (const s of systems) if (!all.includes(s)) throw new Error(`Unknown system ${JSON.stringify(s)}; use ${all.join(', ')}.`);
  const concurrency = (get('concurrency') ?? '8,50').split(',').map((c) => Number(c.trim()));
  if (concurrency.some((c) => !Number.isInteger(c) || c < 1)) throw new Error(`--concurrency must be a list of positive integers`);
  const prefetch = get('celeriac-prefetch');
  const bulkRaw = get('bulk-batches') ?? '100,1000';
  const bulkBatches = bulkRaw.trim() === '' ? [] : bulkRaw.split(',').map((c) => Number(c.trim()));
  if (bulkBatches.some((c) => !Number.isInteger(c) || c < 1)) throw new Error(`--bulk-batches must be a list of positive integers (or empty to skip)`);
  const scaleRaw = get('scale');
  const enqueueOnlyRaw = get('enqueue-only');
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
    bulkBatches,
    enqueueOnly: enqueueOnlyRaw !== undefined && enqueueOnlyRaw !== '' && enqueueOnlyRaw !== '0' && enqueueOnlyRaw !== 'false',
    scale: scaleRaw !== undefined && scaleRaw !== '' && scaleRaw !== '0' && scaleRaw !== 'false',
    scaleN: int('scale-n', 1_000_000),
    scaleCeleryN: int('scale-celery-n', 100_000),
    scaleBatch: int('scale-batch', 1000),
    scaleConcurrency: int('scale-concurrency', Math.max(...concurrency)),
  };
}
