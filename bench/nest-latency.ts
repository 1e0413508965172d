/**
 * Request → result latency through @celeriac/nest on Redis, against calling the core
 * directly. One redis-server, one Nest worker process (test/nest/fixtures/worker-main,
 * compiled with tsc), and in this process a Nest 12 app on platform-express
 * (worker: false). Sequential round trips, after a warm-up:
 *
 * - `nest`: POST /mul/wait — the route sends `math.mul` through TaskProducer (request
 *   context in the headers) and answers with the result;
 * - `core`: `app.sendTask('nest.math.mul')` + `get()` from this process, no HTTP;
 * - `producer`: the adapter without HTTP: TaskProducer's typed handle inside a request
 *   context (request id and traceparent into the headers), then `get()`;
 * - `http`: GET /ping on the same Nest app, no task (the HTTP share of `nest`).
 *
 * The four run interleaved, so noise from other processes hits them alike.
 *
 * Run: `npm run build && node --import tsx bench/nest-latency.ts` (N=1000; BENCH_RT=… to change).
 * Writes bench/results/nest-latency.json.
 */
import 'reflect-metadata';
import { writeFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { join } from 'node:path';
import { createApp, runWithRequestContext } from '@celeriac/core';
import type { INestApplication } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { startRedis } from '../test/helpers/services.ts';
import { compileFixtures, REPO, startChild } from '../test/nest/helpers.ts';
import { summarize, type LatencySummary } from './lib/stats.ts';

const N = Number(process.env.BENCH_RT ?? 1000);
const WARMUP = 50;

/** Run the variants interleaved (round i runs each once, in a rotating order), so machine noise hits all alike. */
async function measureInterleaved(variants: Record<string, () => Promise<void>>): Promise<Record<string, LatencySummary>> {
  const names = Object.keys(variants);
  for (let i = 0; i < WARMUP; i++) for (const name of names) await variants[name]!();
  const times: Record<string, number[]> = Object.fromEntries(names.map((n) => [n, []]));
  for (let i = 0; i < N; i++) {
    for (let k = 0; k < names.length; k++) {
      const name = names[(i + k) % names.length]!;
      const t0 = performance.now();
      await variants[name]!();
      times[name]!.push(performance.now() - t0);
    }
  }
  const out: Record<string, LatencySummary> = {};
  for (const name of names) {
    const s = (out[name] = summarize(times[name]!));
    console.log(`${name.padEnd(9)} p50 ${s.p50.toFixed(2)} ms  p90 ${s.p90.toFixed(2)} ms  p99 ${s.p99.toFixed(2)} ms  (n=${s.count})`);
  }
  return out;
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

  const { MathService } = (await import(join(out, 'math.service.js'))) as typeof import('../test/nest/fixtures/math.service.ts');
  const { TaskProducer } = await import('@celeriac/nest');
  const mul = api.get(TaskProducer).tasksOf(MathService).mul;
  const ctx = { requestId: 'bench', traceparent: '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01' };
  const results = await measureInterleaved({
    nest: async () => {
      const res = await fetch(`${base}/mul/wait`, { method: 'POST', headers, body });
      if ((await res.json()).product !== 42) throw new Error('wrong result');
    },
    producer: async () => {
      const r = await runWithRequestContext(ctx, () => mul.delay(6, 7));
      if ((await r.get({ timeout: 10_000 })).product !== 42) throw new Error('wrong result');
    },
    core: async () => {
      const r = await core.sendTask<{ product: number }>('nest.math.mul', [6, 7]);
      if ((await r.get({ timeout: 10_000 })).product !== 42) throw new Error('wrong result');
    },
    http: async () => {
      await (await fetch(`${base}/ping`)).json();
    },
  });
  await core.close();
  const r = results as Record<'nest' | 'producer' | 'core' | 'http', LatencySummary>;
  const overhead = {
    producerVsCore: { p50: r.producer.p50 - r.core.p50, p99: r.producer.p99 - r.core.p99 },
    nestVsCorePlusHttp: { p50: r.nest.p50 - r.core.p50 - r.http.p50, p99: r.nest.p99 - r.core.p99 - r.http.p99 },
  };
  console.log(`TaskProducer (request context → headers) vs core sendTask: p50 ${overhead.producerVsCore.p50.toFixed(2)} ms, p99 ${overhead.producerVsCore.p99.toFixed(2)} ms`);
  console.log(`nest route − core − http ping: p50 ${overhead.nestVsCorePlusHttp.p50.toFixed(2)} ms, p99 ${overhead.nestVsCorePlusHttp.p99.toFixed(2)} ms`);
  const file = join(REPO, 'bench/results/nest-latency.json');
  writeFileSync(file, JSON.stringify({ date: new Date().toISOString(), node: process.version, cpus: cpus().length, loadavg: loadavg(), n: N, warmup: WARMUP, results, overhead }, null, 2) + '\n');
  console.log(`wrote ${file}`);
} finally {
  await api?.close();
  await worker.stop();
  await redis.stop();
}
