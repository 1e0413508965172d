/**
 * Request → result latency through each web adapter on Redis, measured the same
 * way in one run, against calling the core directly:
 *
 *   npm run bench:web            (= npm run build && node --import tsx bench/web-latency.ts [--n=1000] [--warmup=50])
 *
 * One private redis-server on a free loopback port, one separate `celeriac worker`
 * process (the built bin, `-c 8`) on bench/web/tasks.mjs. In this process one app,
 * bound by all three adapters (each with `worker: false`: the web process only
 * produces), and three servers on 127.0.0.1, each with one route that does
 * `tasks.delay(echo, n)` through the adapter's request-scoped producer and answers
 * the awaited result as JSON:
 *   express  Express 5 + queuePlugin, `req.tasks`
 *   fastify  Fastify 5 + celeriacPlugin, `request.tasks`
 *   nest     Nest 12 on platform-express + CeleriacModule, `TaskProducer`
 *   core     `(await echo.delay(n)).get()` in this process: no HTTP, no adapter
 * Sequential round trips over one keep-alive connection per server, the four paths
 * interleaved in a rotating order (machine noise falls on all alike), `n` each after
 * a warm-up. Per path: p50/p90/p99/mean ms, the overhead against `core`, and this
 * process's CPU time per request (process.cpuUsage around each round trip: the
 * server side plus the bench's own HTTP client, the same for the three adapters;
 * the worker's share is the same for all paths and not counted). Writes
 * bench/results/web-latency.json and .md.
 */
import 'reflect-metadata';
import { writeFileSync } from 'node:fs';
import { Agent, request as httpRequest, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { cpus, loadavg } from 'node:os';
import { join } from 'node:path';
import { Controller, Get, Inject, Module, Param, type INestApplication } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import express from 'express';
import Fastify, { type FastifyInstance } from 'fastify';
import { celeriacErrorHandler, gracefulShutdown, queuePlugin } from '@celeriac/express';
import { celeriacPlugin } from '@celeriac/fastify';
import { CeleriacModule, TaskProducer } from '@celeriac/nest';
import { startBuiltWorker } from '../test/helpers/node-process.ts';
import { REPO_ROOT } from '../test/helpers/python-celery.ts';
import { startRedis } from '../test/helpers/services.ts';
import { summarize, type LatencySummary } from './lib/stats.ts';
import { app, echo } from './web/tasks.mjs';

function arg(name: string, fallback: number): number {
  const hit = process.argv.find((a) => a.startsWith(`--${name}=`));
  const value = hit ? Number(hit.split('=')[1]) : fallback;
  if (!Number.isInteger(value) || value < 1) throw new Error(`--${name} must be a positive integer, got ${hit}`);
  return value;
}

const N = arg('n', 1000);
const WARMUP = arg('warmup', 50);
const CONCURRENCY = 8;
const PATHS = ['core', 'express', 'fastify', 'nest'] as const;
type PathName = (typeof PATHS)[number];

/** GET `path` on 127.0.0.1:`port` over `agent`; resolves with the JSON body's `result`. */
function getResult(port: number, agent: Agent, path: string): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const req = httpRequest({ host: '127.0.0.1', port, path, agent }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => (res.statusCode === 200 ? resolve((JSON.parse(body) as { result: unknown }).result) : reject(new Error(`HTTP ${res.statusCode} on ${path}: ${body}`))));
    });
    req.on('error', reject);
    req.end();
  });
}

/** The Nest side. Decorators applied by hand: tsx (esbuild) has no parameter decorators or their metadata. */
class EchoController {
  constructor(private readonly tasks: TaskProducer) {}

  async echo(n: string): Promise<{ result: number }> {
    return { result: await (await this.tasks.delay(echo, Number(n))).get({ timeout: 10_000 }) };
  }
}
Inject(TaskProducer)(EchoController, undefined, 0);
Param('n')(EchoController.prototype, 'echo', 0);
Reflect.decorate([Get('echo/:n')], EchoController.prototype, 'echo', Object.getOwnPropertyDescriptor(EchoController.prototype, 'echo'));
Controller()(EchoController);

const redis = await startRedis();
const urls = { broker: redis.url(0), backend: redis.url(1) };
const settings = { brokerUrl: urls.broker, resultBackend: urls.backend };
const worker = await startBuiltWorker('bench/web/tasks.mjs', urls, ['-c', String(CONCURRENCY)]).catch(async (err: unknown) => {
  await redis.stop();
  throw err;
});

let expressServer: Server | undefined;
let fastify: FastifyInstance | undefined;
let nest: INestApplication | undefined;
const agents: Agent[] = [];
const samples = Object.fromEntries(PATHS.map((p) => [p, [] as number[]])) as Record<PathName, number[]>;
const cpuMicros = Object.fromEntries(PATHS.map((p) => [p, 0])) as Record<PathName, number>;
try {
  const web = express();
  web.use(queuePlugin({ app, ...settings, worker: false }));
  web.get('/echo/:n', async (req, res) => {
    res.json({ result: await (await req.tasks.delay(echo, Number(req.params.n))).get({ timeout: 10_000 }) });
  });
  web.use(celeriacErrorHandler());
  expressServer = web.listen(0, '127.0.0.1');
  await new Promise((r) => expressServer!.once('listening', r));

  fastify = Fastify({ logger: false });
  await fastify.register(celeriacPlugin, { app, ...settings, worker: false });
  fastify.get<{ Params: { n: string } }>('/echo/:n', async (request) => ({ result: await (await request.tasks.delay(echo, Number(request.params.n))).get({ timeout: 10_000 }) }));
  await fastify.listen({ port: 0, host: '127.0.0.1' });

  class BenchModule {}
  Module({ imports: [CeleriacModule.forRoot({ app, config: settings, worker: false })], controllers: [EchoController] })(BenchModule);
  nest = await NestFactory.create(BenchModule, { logger: false });
  await nest.listen(0, '127.0.0.1');

  const portOf = (server: Server) => (server.address() as AddressInfo).port;
  const via = (port: number) => {
    const agent = new Agent({ keepAlive: true, maxSockets: 1 });
    agents.push(agent);
    return (n: number) => getResult(port, agent, `/echo/${n}`);
  };
  const run: Record<PathName, (n: number) => Promise<unknown>> = {
    core: async (n) => (await echo.delay(n)).get({ timeout: 10_000 }),
    express: via(portOf(expressServer)),
    fastify: via(portOf(fastify.server)),
    nest: via(portOf(nest.getHttpServer() as Server)),
  };

  for (let i = 0; i < WARMUP + N; i++) {
    for (let k = 0; k < PATHS.length; k++) {
      const name = PATHS[(i + k) % PATHS.length]!;
      const cpu0 = process.cpuUsage();
      const t0 = performance.now();
      const got = await run[name](i);
      const ms = performance.now() - t0;
      const cpu = process.cpuUsage(cpu0);
      if (got !== i) throw new Error(`${name}: expected ${i}, got ${JSON.stringify(got)}`);
      if (i >= WARMUP) {
        samples[name].push(ms);
        cpuMicros[name] += cpu.user + cpu.system;
      }
    }
  }
} finally {
  for (const agent of agents) agent.destroy();
  await nest?.close();
  await fastify?.close();
  if (expressServer) await gracefulShutdown(expressServer, { timeoutMs: 1000 });
  await app.close();
  await worker.stop();
  await redis.stop();
}

const summary = Object.fromEntries(PATHS.map((p) => [p, summarize(samples[p])])) as Record<PathName, LatencySummary>;
const cpuPerRequestUs = Object.fromEntries(PATHS.map((p) => [p, cpuMicros[p] / N])) as Record<PathName, number>;
const overhead = Object.fromEntries(
  PATHS.filter((p) => p !== 'core').map((p) => [p, { p50: summary[p].p50 - summary.core.p50, p99: summary[p].p99 - summary.core.p99, mean: summary[p].mean - summary.core.mean, ratioP50: summary[p].p50 / summary.core.p50 }]),
);
const load = loadavg().map((x) => Number(x.toFixed(2)));
const f = (x: number) => x.toFixed(2);
const sign = (x: number) => `${x >= 0 ? '+' : ''}${f(x)}`;
const machine = `${cpus().length} CPU (${cpus()[0]?.model ?? '?'}), load average ${load.join(' / ')} (1/5/15 min) at the end, shared with other processes; Node ${process.version}; one \`celeriac worker -c ${CONCURRENCY}\` process; sequential round trips, n=${N} per path after ${WARMUP} warm-up, paths interleaved`;
const lines = [
  '# Request → result latency through each web adapter (Redis)',
  '',
  machine,
  '',
  '| path | p50 ms | p90 ms | p99 ms | mean ms | p50 / core | overhead p50 | overhead p99 | web-process CPU µs/request |',
  '|---|---|---|---|---|---|---|---|---|',
  ...PATHS.map((p) => {
    const s = summary[p];
    const o = p === 'core' ? null : overhead[p]!;
    return `| ${p} | ${f(s.p50)} | ${f(s.p90)} | ${f(s.p99)} | ${f(s.mean)} | ${o ? o.ratioP50.toFixed(2) : '1.00'} | ${o ? sign(o.p50) : '—'} | ${o ? sign(o.p99) : '—'} | ${cpuPerRequestUs[p].toFixed(0)} |`;
  }),
  '',
  'core = `echo.delay(n)` + `.get()` in the web process (no HTTP, no adapter); express / fastify / nest = GET /echo/:n over a keep-alive connection to that framework, the route sending through the adapter\'s producer (request id in the headers) and answering the awaited result. Overhead = adapter − core (HTTP included). CPU = this process over each round trip: the server side plus the bench\'s own HTTP client (the same client for the three adapters), and the result wait.',
];
const out = join(REPO_ROOT, 'bench/results');
writeFileSync(join(out, 'web-latency.json'), JSON.stringify({ date: new Date().toISOString(), node: process.version, cpus: cpus().length, loadavg: load, n: N, warmup: WARMUP, workerConcurrency: CONCURRENCY, summary, overhead, cpuPerRequestUs }, null, 2) + '\n');
writeFileSync(join(out, 'web-latency.md'), lines.join('\n') + '\n');
console.log(lines.join('\n'));
