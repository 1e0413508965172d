/**
 * The systems under test: how to start each one's worker, producer and
 * round-trip client, and how to count its queued messages and stored results.
 */
import { connect } from 'amqplib';
import type { Redis } from 'ioredis';
import { join } from 'node:path';
import type { BenchOptions, SystemName } from './options.ts';

export const SYSTEM_PYTHON = '/usr/bin/python3';

export interface Command {
  command: string;
  args: string[];
  cwd: string;
  env: NodeJS.ProcessEnv;
}

/** Connections the orchestrator holds to the benchmark Redis. */
export interface Conns {
  /** db 0: Celeriac/Celery broker, BullMQ. */
  db0: Redis;
  /** db 1: Celeriac/Celery result backend. */
  db1: Redis;
}

export interface SystemConfig {
  /** e.g. `celeriac-c8`. */
  id: string;
  system: SystemName;
  /** Table row label. */
  label: string;
  concurrency: number;
  /** The config this one's ratios are computed against (BullMQ at the same concurrency). */
  baselineId: string | null;
  worker: Command;
  enqueue: Command;
  /** The same producer for another N (scale mode). */
  enqueueN(n: number): Command;
  /** Bulk producer (`delayMany` / `addBulk`) of n tasks in batches; null when the system has none. */
  /** `warmup`: unmeasured messages sent first (default one batch), where the producer supports it. */
  enqueueBulk: ((n: number, batch: number, warmup?: number) => Command) | null;
  roundtrip: Command;
  /** Ready messages in the queue (all priorities). */
  queueLength(c: Conns): Promise<number>;
  /** Empty the broker's queue before a measurement, for brokers other than the bench Redis (flushed anyway). */
  resetBroker?(): Promise<void>;
  /** CPU seconds the broker has used so far, for brokers other than the bench Redis (RabbitMQ). */
  brokerCpuSeconds?(): number;
  /** Results stored so far; must be cheap (polled every few ms during drain). */
  countResults(c: Conns): Promise<number>;
  /** The Redis command `countResults` issues (subtracted from command stats). */
  pollCommand: string;
  /** Exact count and a spot check of stored results after the drain; returns problems found. */
  verify(c: Conns, n: number): Promise<{ stored: number; problems: string[] }>;
}

/** Every `celery-task-meta-*` key in the backend db (SCAN; not for the hot loop). */
async function metaKeys(db: Redis): Promise<string[]> {
  const keys: string[] = [];
  let cursor = '0';
  do {
    const [next, batch] = await db.scan(cursor, 'MATCH', 'celery-task-meta-*', 'COUNT', 1000);
    cursor = next;
    keys.push(...batch);
  } while (cursor !== '0');
  return keys;
}

/** kombu's Redis layout: priority 0 is the queue name itself, 3/6/9 are `name\x06\x16<p>`. */
async function kombuQueueLength(db: Redis, queue: string): Promise<number> {
  const names = [queue, ...[3, 6, 9].map((p) => `${queue}\x06\x16${p}`)];
  const lens = await Promise.all(names.map((k) => db.llen(k)));
  return lens.reduce((a, b) => a + b, 0);
}

async function verifyCeleryResults(c: Conns, n: number): Promise<{ stored: number; problems: string[] }> {
  const keys = await metaKeys(c.db1);
  const problems: string[] = [];
  if (keys.length !== n) problems.push(`expected ${n} result keys, found ${keys.length}`);
  const sample = keys.slice(0, 25);
  const docs = sample.length ? await c.db1.mget(...sample) : [];
  for (const [i, raw] of docs.entries()) {
    try {
      const doc = JSON.parse(raw ?? 'null') as { status?: string; result?: unknown };
      if (doc.status !== 'SUCCESS' || typeof doc.result !== 'number' || doc.result % 2 !== 0) problems.push(`${sample[i]}: ${raw}`);
    } catch {
      problems.push(`${sample[i]}: not JSON: ${raw}`);
    }
  }
  return { stored: keys.length, problems };
}

/** Ready messages of RabbitMQ queue `celery` (0 when it does not exist yet). */
async function amqpQueueLength(url: string): Promise<number> {
  const conn = await connect(url);
  try {
    const ch = await conn.createChannel();
    ch.on('error', () => undefined);
    return await ch.checkQueue('celery').then((q) => q.messageCount, () => 0);
  } finally {
    await conn.close().catch(() => undefined);
  }
}

/** Purge RabbitMQ queue `celery` (absent: nothing to do). */
async function amqpPurge(url: string): Promise<void> {
  const conn = await connect(url);
  try {
    const ch = await conn.createChannel();
    ch.on('error', () => undefined);
    await ch.purgeQueue('celery').catch(() => undefined);
  } finally {
    await conn.close().catch(() => undefined);
  }
}

/**
 * `amqpUrl`: the private RabbitMQ of the -amqp systems (null when none runs). They are
 * the Redis systems' commands with the broker URL switched; results stay on Redis db 1,
 * so the drain is measured the same way.
 */
export function systemConfigs(
  opts: BenchOptions,
  root: string,
  redisPort: number,
  amqpUrl: string | null = null,
  amqpCpuSeconds?: () => number,
): SystemConfig[] {
  const broker = `redis://127.0.0.1:${redisPort}/0`;
  const backend = `redis://127.0.0.1:${redisPort}/1`;
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    BENCH_BROKER_URL: broker,
    BENCH_BACKEND_URL: backend,
    BENCH_REDIS_PORT: String(redisPort),
    BENCH_BULLMQ_DB: '0',
    NODE_ENV: 'production',
  };
  const node = process.execPath;
  const celeriacDir = join(root, 'bench/systems/celeriac');
  const bullmqDir = join(root, 'bench/systems/bullmq');
  const pyDir = join(root, 'bench/python');
  const pyEnv: NodeJS.ProcessEnv = { ...env, PYTHONPATH: pyDir, PYTHONDONTWRITEBYTECODE: '1', PYTHONUNBUFFERED: '1' };
  const rtArgs = [String(opts.rt), String(opts.rtWarmup)];
  const configs: SystemConfig[] = [];

  const celeriac = (c: number): SystemConfig => ({
    id: `celeriac-c${c}`,
    system: 'celeriac',
    label: `Celeriac c=${c}`,
    concurrency: c,
    baselineId: opts.systems.includes('bullmq') ? `bullmq-c${c}` : null,
    // The `celeriac` command as a user runs it (npx, node_modules/.bin): the bin, executed
    // (its shell lines start node with the CLI's memory flags), not `node dist/.../main.js`.
    worker: {
      command: join(root, 'packages/core/bin/celeriac.js'),
      args: [
        'worker',
        '-A',
        join(celeriacDir, 'tasks.mjs'),
        '-c',
        String(c),
        '-l',
        'warning',
        '--broker',
        broker,
        '--backend',
        backend,
        ...(opts.celeriacPrefetch !== undefined ? ['--prefetch-multiplier', String(opts.celeriacPrefetch)] : []),
      ],
      cwd: root,
      env,
    },
    enqueue: { command: node, args: [join(celeriacDir, 'client.mjs'), 'enqueue', String(opts.n), String(opts.chunk)], cwd: root, env },
    enqueueN: (n) => ({ command: node, args: [join(celeriacDir, 'client.mjs'), 'enqueue', String(n), String(opts.chunk)], cwd: root, env }),
    enqueueBulk: (n, batch, warmup) => ({ command: node, args: [join(celeriacDir, 'client.mjs'), 'enqueue-bulk', String(n), String(batch), ...(warmup === undefined ? [] : [String(warmup)])], cwd: root, env }),
    roundtrip: { command: node, args: [join(celeriacDir, 'client.mjs'), 'roundtrip', ...rtArgs], cwd: root, env },
    queueLength: (k) => kombuQueueLength(k.db0, 'celery'),
    countResults: (k) => k.db1.dbsize(),
    pollCommand: 'dbsize',
    verify: verifyCeleryResults,
  });

  const bullmq = (c: number): SystemConfig => ({
    id: `bullmq-c${c}`,
    system: 'bullmq',
    label: `BullMQ c=${c}`,
    concurrency: c,
    baselineId: null,
    worker: { command: node, args: [join(bullmqDir, 'worker.mjs'), String(c)], cwd: root, env },
    enqueue: { command: node, args: [join(bullmqDir, 'client.mjs'), 'enqueue', String(opts.n), String(opts.chunk)], cwd: root, env },
    enqueueN: (n) => ({ command: node, args: [join(bullmqDir, 'client.mjs'), 'enqueue', String(n), String(opts.chunk)], cwd: root, env }),
    enqueueBulk: (n, batch) => ({ command: node, args: [join(bullmqDir, 'client.mjs'), 'enqueue-bulk', String(n), String(batch)], cwd: root, env }),
    roundtrip: { command: node, args: [join(bullmqDir, 'client.mjs'), 'roundtrip', ...rtArgs], cwd: root, env },
    queueLength: async (k) => (await k.db0.llen('bull:bench:wait')) + (await k.db0.zcard('bull:bench:prioritized')),
    countResults: (k) => k.db0.zcard('bull:bench:completed'),
    pollCommand: 'zcard',
    async verify(k, n) {
      const problems: string[] = [];
      const stored = await k.db0.zcard('bull:bench:completed');
      const failed = await k.db0.zcard('bull:bench:failed');
      if (stored !== n) problems.push(`expected ${n} completed jobs, found ${stored}`);
      if (failed !== 0) problems.push(`${failed} failed jobs`);
      for (const id of await k.db0.zrange('bull:bench:completed', 0, 24)) {
        const [data, rv] = await k.db0.hmget(`bull:bench:${id}`, 'data', 'returnvalue');
        const x = (JSON.parse(data ?? '{}') as { x?: number }).x;
        if (rv === null || x === undefined || Number(JSON.parse(rv)) !== 2 * x) problems.push(`job ${id}: data ${data} returnvalue ${rv}`);
      }
      return { stored, problems };
    },
  });

  const celery = (c: number): SystemConfig => ({
    id: `celery-c${c}`,
    system: 'celery',
    label: `Celery 5.2 prefork c=${c}`,
    concurrency: c,
    baselineId: null,
    worker: {
      command: SYSTEM_PYTHON,
      args: ['-m', 'celery', '-A', 'bench_tasks', 'worker', '-P', 'prefork', '-c', String(c), '-l', 'warning', '--without-gossip', '--without-mingle', '--without-heartbeat'],
      cwd: pyDir,
      env: pyEnv,
    },
    enqueue: { command: SYSTEM_PYTHON, args: [join(pyDir, 'client.py'), 'enqueue', String(opts.n)], cwd: pyDir, env: pyEnv },
    enqueueN: (n) => ({ command: SYSTEM_PYTHON, args: [join(pyDir, 'client.py'), 'enqueue', String(n)], cwd: pyDir, env: pyEnv }),
    enqueueBulk: null,
    roundtrip: { command: SYSTEM_PYTHON, args: [join(pyDir, 'client.py'), 'roundtrip', ...rtArgs], cwd: pyDir, env: pyEnv },
    queueLength: (k) => kombuQueueLength(k.db0, 'celery'),
    countResults: (k) => k.db1.dbsize(),
    pollCommand: 'dbsize',
    verify: verifyCeleryResults,
  });

  /** The same system with RabbitMQ as broker. */
  const onAmqp = (cfg: SystemConfig, system: SystemName, baselineId: string | null): SystemConfig => {
    const url = amqpUrl!;
    // The broker URL is in the environment (clients, Celery) and in Celeriac's worker arguments (--broker).
    const swap = (cmd: Command): Command => ({ ...cmd, args: cmd.args.map((a) => (a === broker ? url : a)), env: { ...cmd.env, BENCH_BROKER_URL: url } });
    return {
      ...cfg,
      id: cfg.id.replace(/^(\w+)-/, '$1-amqp-'),
      system,
      label: cfg.label.replace(/^(\S+( 5\.2 prefork)?)/, '$1 RabbitMQ'),
      baselineId,
      worker: swap(cfg.worker),
      enqueue: swap(cfg.enqueue),
      enqueueN: (n) => swap(cfg.enqueueN(n)),
      enqueueBulk: null, // its client resets Redis command stats; the bulk rows stay Redis-only
      roundtrip: swap(cfg.roundtrip),
      queueLength: () => amqpQueueLength(url),
      resetBroker: () => amqpPurge(url),
      ...(amqpCpuSeconds ? { brokerCpuSeconds: amqpCpuSeconds } : {}),
    };
  };
  const amqp = amqpUrl !== null;

  // Interleave so that drift (thermal, noisy neighbours) spreads over all systems.
  for (const c of opts.concurrency) {
    if (opts.systems.includes('celeriac')) configs.push(celeriac(c));
    if (opts.systems.includes('bullmq')) configs.push(bullmq(c));
    // No baseline: the main table's ratio columns are × BullMQ; the RabbitMQ summary table gives its own ratios.
    if (amqp && opts.systems.includes('celeriac-amqp')) configs.push(onAmqp(celeriac(c), 'celeriac-amqp', null));
  }
  if (opts.systems.includes('celery')) configs.push(celery(opts.celeryConcurrency));
  if (amqp && opts.systems.includes('celery-amqp')) configs.push(onAmqp(celery(opts.celeryConcurrency), 'celery-amqp', null));
  return configs;
}
