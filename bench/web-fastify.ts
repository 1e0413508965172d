/**
 * Request → result latency through @celeriac/fastify on a real Redis, against the
 * same round trip through the core directly.
 *
 *   npm run build && node --import tsx bench/web-fastify.ts [--n=1000] [--warmup=50] [--concurrency=8]
 *
 * Starts its own redis-server on a free loopback port and one `celeriac worker`
 * process (the built bin, `-c 8`) on bench/web/fastify-tasks.mjs. Then, one at a
 * time (sequential round trips, interleaved so drift hits every path alike), `n`
 * times each:
 *   core    `await (await echo.delay(i)).get()` in this process
 *   inject  `fastify.inject(GET /echo/i)`: the route does `request.tasks.delay(echo, i)`
 *           and awaits the result (Fastify routing, hooks, request context, no socket)
 *   http    the same route over a real keep-alive HTTP connection on 127.0.0.1
 * Prints p50/p90/p99 per path and the adapter's overhead against `core`; writes
 * bench/results/web-fastify.json and .md.
 */
import { writeFileSync } from 'node:fs';
import { Agent, request as httpRequest } from 'node:http';
import { cpus, loadavg } from 'node:os';
import { join } from 'node:path';
import Fastify from 'fastify';
import { celeriacPlugin } from '@celeriac/fastify';
import { startBuiltWorker } from '../test/helpers/node-process.ts';
import { REPO_ROOT } from '../test/helpers/python-celery.ts';
import { freePort, startRedis } from '../test/helpers/services.ts';
import { summarize, type LatencySummary } from './lib/stats.ts';
import { app, echo } from './web/fastify-tasks.mjs';

function arg(name: string, fallback: number): number {
  const hit = process.argv.find((a) => a.startsWith(`--${name}=`));
  const value = hit ? Number(hit.split('=')[1]) : fallback;
  if (!Number.isInteger(value) || value < 1) throw new Error(`--${name} must be a positive integer`);
  return value;
}

const N = arg('n', 1000);
const WARMUP = arg('warmup', 50);
const CONCURRENCY = arg('concurrency', 8);

const redis = await startRedis();
const urls = { broker: redis.url(0), backend: redis.url(1) };
// `ready.` is logged at info level, which startBuiltWorker waits for.
const worker = await startBuiltWorker('bench/web/fastify-tasks.mjs', urls, ['-c', String(CONCURRENCY)]).catch(async (err: unknown) => {
  await redis.stop();
  throw err;
});
const fastify = Fastify({ logger: false });
await fastify.register(celeriacPlugin, { app, brokerUrl: urls.broker, resultBackend: urls.backend, worker: false });
fastify.get<{ Params: { n: string } }>('/echo/:n', async (request) => {
  const result = await request.tasks.delay(echo, Number(request.params.n));
  return { result: await result.get({ timeout: 10_000 }) };
});
const port = await freePort();
await fastify.listen({ port, host: '127.0.0.1' });
const agent = new Agent({ keepAlive: true, maxSockets: 1 });

function overHttp(n: number): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const req = httpRequest({ host: '127.0.0.1', port, path: `/echo/${n}`, agent }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => (res.statusCode === 200 ? resolve(JSON.parse(body).result) : reject(new Error(`HTTP ${res.statusCode}: ${body}`))));
    });
    req.on('error', reject);
    req.end();
  });
}

const paths: Record<'core' | 'inject' | 'http', (n: number) => Promise<unknown>> = {
  core: async (n) => (await echo.delay(n)).get({ timeout: 10_000 }),
  inject: async (n) => (await fastify.inject({ method: 'GET', url: `/echo/${n}` })).json<{ result: unknown }>().result,
  http: overHttp,
};
const samples: Record<keyof typeof paths, number[]> = { core: [], inject: [], http: [] };

try {
  for (let i = 0; i < WARMUP + N; i++) {
    for (const name of Object.keys(paths) as (keyof typeof paths)[]) {
      const t0 = performance.now();
      const got = await paths[name](i);
      const ms = performance.now() - t0;
      if (got !== i) throw new Error(`${name}: expected ${i}, got ${JSON.stringify(got)}`);
      if (i >= WARMUP) samples[name].push(ms);
    }
  }
} finally {
  agent.destroy();
  await fastify.close();
  await worker.stop();
  await redis.stop();
}

const summary = Object.fromEntries(Object.entries(samples).map(([k, v]) => [k, summarize(v)])) as Record<keyof typeof paths, LatencySummary>;
const f = (x: number) => x.toFixed(3);
const overhead = (name: 'inject' | 'http') => ({ p50: summary[name].p50 - summary.core.p50, p99: summary[name].p99 - summary.core.p99 });
const machine = `${cpus().length} CPU (${cpus()[0]?.model ?? '?'}), load average ${loadavg()[0]!.toFixed(1)} at the end (other processes share the machine), Node ${process.version}, worker -c ${CONCURRENCY}, sequential round trips, n=${N} each after ${WARMUP} warm-up`;
const lines = [
  '# Request → result latency through @celeriac/fastify (Redis)',
  '',
  machine,
  '',
  '| path | p50 ms | p90 ms | p99 ms | mean ms | overhead p50 vs core | overhead p99 vs core |',
  '|---|---|---|---|---|---|---|',
  ...(['core', 'inject', 'http'] as const).map((name) => {
    const s = summary[name];
    const o = name === 'core' ? null : overhead(name);
    return `| ${name} | ${f(s.p50)} | ${f(s.p90)} | ${f(s.p99)} | ${f(s.mean)} | ${o ? `+${f(o.p50)}` : '—'} | ${o ? `${o.p99 >= 0 ? '+' : ''}${f(o.p99)}` : '—'} |`;
  }),
  '',
  'core = `echo.delay(i)` + `.get()` in-process; inject = `fastify.inject` of a route doing `request.tasks.delay` + `.get()`; http = the same route over keep-alive HTTP.',
];
const out = join(REPO_ROOT, 'bench/results');
writeFileSync(join(out, 'web-fastify.json'), JSON.stringify({ date: new Date().toISOString(), machine, n: N, warmup: WARMUP, concurrency: CONCURRENCY, summary, overhead: { inject: overhead('inject'), http: overhead('http') } }, null, 2) + '\n');
writeFileSync(join(out, 'web-fastify.md'), lines.join('\n') + '\n');
console.log(lines.join('\n'));
