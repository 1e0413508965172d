/**
 * Request → result latency through @celeriac/express on Redis, against calling the
 * core directly: `node --import tsx bench/express-latency.ts [--requests 1000]`
 * (after `npm run build`).
 *
 * Starts a private redis-server on a free loopback port and one separate
 * `celeriac worker` process (the compiled CLI, `-c 8`) on examples/express-app/tasks.mjs.
 * Then, one request at a time (a keep-alive HTTP client):
 *   - express: POST /add on the example's Express app (queuePlugin → req.tasks.delay →
 *     worker → result.get() → JSON), timed at the HTTP client;
 *   - direct:  add.delay(2, 2) then get() on the same app, in the same process.
 * Both run warm-up rounds first, then alternate in blocks of 100 so machine noise
 * falls on both. Prints p50/p90/p99/mean per path and the adapter's overhead
 * (express − direct) and writes bench/results/express-latency.json.
 */
import { spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { Agent, request } from 'node:http';
import type { AddressInfo } from 'node:net';
import { cpus, loadavg } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startRedis, stopChild } from '../test/helpers/services.ts';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const argIndex = process.argv.indexOf('--requests');
const REQUESTS = argIndex > 0 ? Number(process.argv[argIndex + 1]) : 1000;
const WARMUP = 100;
const BLOCK = 100;

const quantile = (sorted: number[], q: number) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!;
const summary = (ms: number[]) => {
  const s = [...ms].sort((a, b) => a - b);
  return { n: s.length, p50: quantile(s, 0.5), p90: quantile(s, 0.9), p99: quantile(s, 0.99), mean: s.reduce((a, b) => a + b, 0) / s.length };
};
const fmt = (x: number) => x.toFixed(2);

const redis = await startRedis();
const broker = redis.url(0);
const backend = redis.url(1);
const worker = spawn(process.execPath, [join(ROOT, 'packages/core/bin/celeriac.js'), 'worker', '-A', 'examples/express-app/tasks.mjs', '-b', broker, '--result-backend', backend, '-c', '8', '-l', 'warning'], {
  cwd: ROOT,
  stdio: ['ignore', 'ignore', 'inherit'],
});
try {
  const { buildApp } = (await import('../examples/express-app/server.mjs' as string)) as { buildApp: (env: Record<string, string>) => import('express').Express };
  const { add } = (await import('../examples/express-app/tasks.mjs' as string)) as { add: { delay(x: number, y: number): Promise<{ get(o: { timeout: number }): Promise<number> }> } };
  const { gracefulShutdown } = await import('@celeriac/express');
  const web = buildApp({ CELERY_BROKER_URL: broker, CELERY_RESULT_BACKEND: backend });
  const server = web.listen(0, '127.0.0.1');
  await new Promise((r) => server.once('listening', r));
  const port = (server.address() as AddressInfo).port;
  const agent = new Agent({ keepAlive: true, maxSockets: 1 });

  const viaExpress = () =>
    new Promise<number>((resolvePost, reject) => {
      const started = performance.now();
      const req = request({ host: '127.0.0.1', port, path: '/add?x=2&y=2', method: 'POST', agent }, (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => (body += c));
        res.on('end', () => {
          if (res.statusCode !== 200 || (JSON.parse(body) as { result: number }).result !== 4) reject(new Error(`unexpected answer ${res.statusCode} ${body}`));
          else resolvePost(performance.now() - started);
        });
      });
      req.on('error', reject);
      req.end();
    });
  const direct = async () => {
    const started = performance.now();
    const r = await add.delay(2, 2);
    if ((await r.get({ timeout: 10_000 })) !== 4) throw new Error('wrong result');
    return performance.now() - started;
  };

  // The worker is ready once a task round-trips.
  await direct();
  for (let i = 0; i < WARMUP; i++) await viaExpress(), await direct();
  const samples = { express: [] as number[], direct: [] as number[] };
  for (let done = 0; done < REQUESTS; done += BLOCK) {
    const n = Math.min(BLOCK, REQUESTS - done);
    for (let i = 0; i < n; i++) samples.express.push(await viaExpress());
    for (let i = 0; i < n; i++) samples.direct.push(await direct());
  }
  const express = summary(samples.express);
  const core = summary(samples.direct);
  const overhead = { p50: express.p50 - core.p50, p99: express.p99 - core.p99, mean: express.mean - core.mean };
  const result = {
    date: new Date().toISOString(),
    node: process.version,
    cpus: cpus().length,
    loadavg: loadavg().map((x) => Number(x.toFixed(2))),
    requests: REQUESTS,
    workerConcurrency: 8,
    ms: { express, direct: core, overhead },
  };
  console.log(`request → result on Redis, ${REQUESTS} sequential requests each (load average ${result.loadavg.join(' ')}, ${result.cpus} CPUs)`);
  console.log('path      p50     p90     p99     mean   (ms)');
  for (const [name, s] of [['express', express], ['direct', core]] as const) console.log(`${name.padEnd(8)} ${fmt(s.p50).padStart(6)}  ${fmt(s.p90).padStart(6)}  ${fmt(s.p99).padStart(6)}  ${fmt(s.mean).padStart(6)}`);
  console.log(`overhead of Express + queuePlugin: p50 ${fmt(overhead.p50)} ms, p99 ${fmt(overhead.p99)} ms, mean ${fmt(overhead.mean)} ms`);
  writeFileSync(join(ROOT, 'bench/results/express-latency.json'), JSON.stringify(result, null, 2) + '\n');
  agent.destroy();
  await gracefulShutdown(server, { timeoutMs: 1000 });
} finally {
  await stopChild(worker);
  await redis.stop();
}
