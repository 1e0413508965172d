/**
 * Peak RSS of a `celeriac worker` process that receives one message far over
 * `maxMessageSize` (default 16 MiB): the message must be rejected from its size
 * alone, without being parsed. Prints VmHWM (peak RSS) when the worker is ready and
 * after it rejected the message.
 *
 *   node --import tsx bench/oversized-message-rss.ts [megabytes=50]
 */
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { Redis } from 'ioredis';
import { startRedis, stopChild } from '../test/helpers/services.ts';

const megabytes = Number(process.argv[2] ?? 50);

function memKb(pid: number, field: 'VmHWM' | 'VmRSS'): number {
  const m = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) : NaN;
}

const redis = await startRedis();
const client = new Redis(redis.url(0));
const worker = spawn(process.execPath, ['--import', 'tsx', 'packages/core/src/cli/main.ts', 'worker', '-A', 'test/apps/worker-app.ts', '--broker', redis.url(0), '--backend', redis.url(1), '-c', '1', '-l', 'info'], {
  stdio: ['ignore', 'pipe', 'pipe'],
});
let out = '';
worker.stdout!.on('data', (d) => (out += d));
worker.stderr!.on('data', (d) => (out += d));
try {
  const until = async (what: string, ok: () => boolean | Promise<boolean>, ms: number) => {
    const deadline = Date.now() + ms;
    while (!(await ok())) {
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}\n${out.slice(-2000)}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  };
  await until('worker ready', () => out.includes(' ready.'), 30_000);
  await new Promise((r) => setTimeout(r, 1000)); // let start-up settle
  const pid = worker.pid!;
  const readyHwm = memKb(pid, 'VmHWM');
  const readyRss = memKb(pid, 'VmRSS');

  const id = crypto.randomUUID();
  const rawBody = Buffer.alloc(Math.floor((megabytes * 1024 * 1024 * 3) / 4), 'x');
  const body = Buffer.from(`[["${rawBody.toString('latin1')}"], {}, {"callbacks": null, "errbacks": null, "chain": null, "chord": null}]`).toString('base64');
  const envelope = JSON.stringify({
    body,
    'content-encoding': 'utf-8',
    'content-type': 'application/json',
    headers: { lang: 'py', task: 'tasks.add', id, root_id: id, retries: 0 },
    properties: { correlation_id: id, delivery_mode: 2, delivery_info: { exchange: '', routing_key: 'celery' }, priority: 0, body_encoding: 'base64', delivery_tag: crypto.randomUUID() },
  });
  await client.lpush('celery', envelope);
  await until('rejection', async () => /exceeds maxMessageSize/.test(out) && (await client.llen('celery')) === 0 && (await client.hlen('unacked')) === 0, 60_000);
  await new Promise((r) => setTimeout(r, 500));
  const afterHwm = memKb(pid, 'VmHWM');
  console.log(`message: ${(Buffer.byteLength(envelope) / 1024 / 1024).toFixed(1)} MB envelope; maxMessageSize 16 MiB`);
  console.log(`worker peak RSS (VmHWM) when ready: ${(readyHwm / 1024).toFixed(1)} MB (RSS ${(readyRss / 1024).toFixed(1)} MB)`);
  console.log(`worker peak RSS (VmHWM) after rejecting it: ${(afterHwm / 1024).toFixed(1)} MB (+${((afterHwm - readyHwm) / 1024).toFixed(1)} MB)`);
  console.log(`log: ${out.split('\n').find((l) => l.includes('exceeds maxMessageSize'))?.slice(0, 300)}`);
} finally {
  await stopChild(worker);
  client.disconnect();
  await redis.stop();
}
