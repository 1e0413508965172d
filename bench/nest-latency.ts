/**
 * Request → result latency through @celeriac/nest on Redis, against calling the core
 * directly. One redis-server, one Nest worker process (test/nest/fixtures/worker-main,
 * compiled with tsc), and in this process a Nest 12 app on platform-express
 * (worker: false). Sequential round trips, after a warm-up:
 *
 * - `nest`: POST /mul/wait — the route sends `math.mul` through TaskProducer (request
 *   context in the headers) and answers with the result;
 * - `core`: `app.sendTask('nest.math.mul')` + `get()` from this process, no HTTP;
 * - `http`: GET /ping on the same Nest app, no task (the HTTP share of `nest`).
 *
 * Run: `npm run build && node --import tsx bench/nest-latency.ts` (N=1000; BENCH_RT=… to change).
 * Writes bench/results/nest-latency.json.
 */
import 'reflect-metadata';
import { writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { join } from 'node:path';
import { createApp } from '@celeriac/core';
import type { INestApplication } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { startRedis } from '../test/helpers/services.ts';
import { compileFixtures, REPO, startChild } from '../test/nest/helpers.ts';
import { summarize, type LatencySummary } from './lib/stats.ts';

const N = Number(process.env.BENCH_RT ?? 1000);
const WARMUP = 50;

async function measure(label: string, once: () => Promise<void>): Promise<LatencySummary> {
  for (let i = 0; i < WARMUP; i++) await once();
  const times: number[] = [];
  for (let i = 0; i < N; i++) {
    const t0 = performance.now();
    await once();
    times.push(performance.now() - t0);
  }
  const s = summarize(times);
  console.log(`${label.padEnd(6)} p50 ${s.p50.toFixed(2)} ms  p90 ${s.p90.toFixed(2)} ms  p99 ${s.p99.toFixed(2)} ms  (n=${s.count})`);
  return s;
}

const redis = await startRedis();
const out = compileFixtures();
const env = { CELERY_BROKER_URL: redis.url(0), CELERY_RESULT_BACKEND: redis.url(1) };
const worker = startChild(process.execPath, [join(out, 'worker-main.js')], { env });
let api: INestApplication | undefined;
try {
  await worker.waitFor(/nest worker ready/);
  const { AppModule } = (await import(join(out, 'app.module.js'))) as typeof import('../test/nest/fixtures/app.module.ts');
  api = await NestFactory.create(AppModule.register({ name: 'bench-nest', config: env, worker: false }), { logger: false });
  await api.listen(0, '127.0.0.1');
  const base = (await api.getUrl()).replace('[::1]', '127.0.0.1');
  const core = createApp('bench-core', { brokerUrl: env.CELERY_BROKER_URL, resultBackend: env.CELERY_RESULT_BACKEND });
  const body = JSON.stringify({ x: 6, y: 7 });
  const headers = { 'content-type': 'application/json' };

  const results = {
    nest: await measure('nest', async () => {
      const res = await fetch(`${base}/mul/wait`, { method: 'POST', headers, body });
      if ((await res.json()).product !== 42) throw new Error('wrong result');
    }),
    core: await measure('core', async () => {
      const r = await core.sendTask<{ product: number }>('nest.math.mul', [6, 7]);
      if ((await r.get({ timeout: 10_000 })).product !== 42) throw new Error('wrong result');
    }),
    http: await measure('http', async () => {
      await (await fetch(`${base}/ping`)).json();
    }),
  };
  await core.close();
  const overhead = { p50: results.nest.p50 - results.core.p50 - results.http.p50, p99: results.nest.p99 - results.core.p99 - results.http.p99 };
  console.log(`adapter overhead (nest − core − http): p50 ${overhead.p50.toFixed(2)} ms, p99 ${overhead.p99.toFixed(2)} ms`);
  const file = join(REPO, 'bench/results/nest-latency.json');
  writeFileSync(file, JSON.stringify({ date: new Date().toISOString(), node: process.version, cpus: cpus().length, n: N, warmup: WARMUP, results, overhead }, null, 2) + '\n');
  console.log(`wrote ${file}`);
} finally {
  await api?.close();
  await worker.stop();
  await redis.stop();
}
