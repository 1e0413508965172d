/**
 * Canvas benchmark: a chord of N `add` tasks into `tsum` (fan-out and fan-in)
 * and a chain of M `add` steps, end to end on one local Redis — from the call
 * to the final result — for Celeriac and Python Celery 5.2, medians over runs
 * and the ratio in the same run.
 *
 *   npm run bench:canvas                    # N=1000, M=100, 3 runs
 *   BENCH_CHORD_N=200 BENCH_CHAIN_N=50 BENCH_RUNS=1 npm run bench:canvas
 *
 * Workers: `celeriac worker -c 50` (async pool) and Celery `-P prefork -c 2` (as in
 * bench/run.ts). Results: bench/results/canvas-latest.{json,md}.
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chain, chord, type Celeriac, type Task } from '@celeriac/core';
import { runClient, spawnChild, type Spawned } from './lib/proc.ts';

const root = fileURLToPath(new URL('..', import.meta.url));
const chordN = Number(process.env.BENCH_CHORD_N ?? 1000);
const chainN = Number(process.env.BENCH_CHAIN_N ?? 100);
const runs = Number(process.env.BENCH_RUNS ?? 3);
const celeriacC = Number(process.env.BENCH_CELERIAC_C ?? 50);
const celeryC = Number(process.env.BENCH_CELERY_C ?? 2);
const PY = '/usr/bin/python3';

async function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

async function waitFor(p: Spawned, pattern: RegExp, what: string): Promise<void> {
  for (let i = 0; i < 600; i++) {
    if (pattern.test(p.stdout() + p.stderrTail())) return;
    if (p.hasExited()) throw new Error(`${what} exited:\n${p.stderrTail()}`);
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`${what} did not start:\n${p.stderrTail()}`);
}

async function stop(p: Spawned): Promise<void> {
  if (p.hasExited()) return;
  process.kill(p.pid, 'SIGTERM');
  const t = setTimeout(() => !p.hasExited() && process.kill(p.pid, 'SIGKILL'), 15_000);
  await p.exited;
  clearTimeout(t);
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

async function main(): Promise<void> {
  const port = await freePort();
  const redis = spawnChild('redis', '/usr/bin/redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no']);
  await waitFor(redis, /Ready to accept connections/, 'redis-server');
  const broker = `redis://127.0.0.1:${port}/0`;
  const backend = `redis://127.0.0.1:${port}/1`;
  const env = { ...process.env, BENCH_BROKER_URL: broker, BENCH_BACKEND_URL: backend };
  Object.assign(process.env, { BENCH_BROKER_URL: broker, BENCH_BACKEND_URL: backend }); // for tasks.mjs imported below
  const times: Record<string, number[]> = { 'celeriac chord': [], 'celeriac chain': [], 'celery chord': [], 'celery chain': [], 'bullmq chord': [], 'bullmq chain': [] };
  const expectedChord = chordN * (chordN - 1);
  try {
    // Celeriac: a worker process, the producer here (timed from the call to the body's result).
    const worker = spawnChild('celeriac', process.execPath, [join(root, 'packages/core/dist/esm/cli/main.js'), 'worker', '-A', join(root, 'bench/canvas/tasks.mjs'), '-c', String(celeriacC), '-l', 'warning', '--broker', broker, '--backend', backend], { cwd: root, env });
    const { app, add, tsum } = (await import(join(root, 'bench/canvas/tasks.mjs'))) as { app: Celeriac; add: Task<[number, number], number>; tsum: Task<[number[]], number> };
    await (await add.delay(1, 1)).get({ timeout: 60_000 }); // the worker is up
    // Warm-up (unmeasured, as client.py does): JIT and connections on both sides.
    for (let i = 0; i < 3; i++) {
      await (await chord(Array.from({ length: 100 }, (_, j) => add.s(j, j)), tsum.s()).delay()).get({ timeout: 60_000 });
      await (await chain(add.s(1, 1), ...Array.from({ length: 20 }, () => add.s(1))).delay()).get({ timeout: 60_000 });
    }
    for (let r = 0; r < runs; r++) {
      let t = performance.now();
      const c = await (await chord(Array.from({ length: chordN }, (_, i) => add.s(i, i)), tsum.s()).delay()).get({ timeout: 600_000 });
      times['celeriac chord']!.push((performance.now() - t) / 1000);
      if (c !== expectedChord) throw new Error(`celeriac chord gave ${c}, expected ${expectedChord}`);
      t = performance.now();
      const v = await (await chain(add.s(1, 1), ...Array.from({ length: chainN - 1 }, () => add.s(1))).delay()).get({ timeout: 600_000 });
      times['celeriac chain']!.push((performance.now() - t) / 1000);
      if (v !== chainN + 1) throw new Error(`celeriac chain gave ${v}, expected ${chainN + 1}`);
    }
    await app.close();
    await stop(worker);

    const pyEnv = { ...env, PYTHONPATH: join(root, 'bench/canvas'), PYTHONDONTWRITEBYTECODE: '1', PYTHONUNBUFFERED: '1' };
    const celery = spawnChild('celery', PY, ['-m', 'celery', '-A', 'canvas_tasks', 'worker', '-P', 'prefork', '-c', String(celeryC), '-l', 'warning', '--without-gossip', '--without-mingle', '--without-heartbeat'], { cwd: join(root, 'bench/canvas'), env: pyEnv });
    for (let r = 0; r < runs; r++) {
      const c = await runClient<{ seconds: number; value: number }>('celery chord', PY, [join(root, 'bench/canvas/client.py'), 'chord', String(chordN)], { cwd: join(root, 'bench/canvas'), env: pyEnv, timeoutMs: 900_000 });
      if (c.value !== expectedChord) throw new Error(`celery chord gave ${c.value}`);
      times['celery chord']!.push(c.seconds);
      const v = await runClient<{ seconds: number; value: number }>('celery chain', PY, [join(root, 'bench/canvas/client.py'), 'chain', String(chainN)], { cwd: join(root, 'bench/canvas'), env: pyEnv, timeoutMs: 900_000 });
      if (v.value !== chainN + 1) throw new Error(`celery chain gave ${v.value}`);
      times['celery chain']!.push(v.seconds);
    }
    await stop(celery);

    // BullMQ FlowProducer (fan-in tree; a chain as a flow nested chainN deep), when installed by `npm run bench`.
    if (existsSync(join(root, 'bench/systems/bullmq/node_modules/bullmq'))) {
      const flows = await runClient<{ chord: number[]; chain: number[] }>('bullmq flow', process.execPath, [join(root, 'bench/systems/bullmq/canvas-flow.mjs'), broker, String(chordN), String(chainN), String(runs)], { cwd: join(root, 'bench/systems/bullmq'), env, timeoutMs: 900_000 });
      times['bullmq chord']!.push(...flows.chord);
      times['bullmq chain']!.push(...flows.chain);
    }
  } finally {
    await stop(redis);
  }
  const m = Object.fromEntries(Object.entries(times).map(([k, v]) => [k, v.length ? median(v) : null])) as Record<string, number | null>;
  const fmt = (x: number | null) => (x === null ? '—' : x.toFixed(3));
  const ratio = (other: number | null, ours: number | null) => (other === null || ours === null ? '—' : `${(other / ours).toFixed(2)}x`);
  const rows = [
    ['chord', `chord of ${chordN} add → tsum`, chordN + 1],
    ['chain', `chain of ${chainN} add`, chainN],
  ] as const;
  const md = [
    `Canvas end to end (call → final result) on one local Redis, median of ${runs} run(s) after unmeasured warm-up; Celeriac worker c=${celeriacC} (async), Celery prefork c=${celeryC}, BullMQ FlowProducer + Worker c=50 (a chain is a flow nested ${chainN} deep).`,
    '',
    '| workflow | tasks | Celeriac (s) | Python Celery 5.2 (s) | BullMQ flow (s) | Celery ÷ Celeriac | BullMQ ÷ Celeriac |',
    '|---|--:|--:|--:|--:|--:|--:|',
    ...rows.map(([k, label, n]) => `| ${label} | ${n} | ${fmt(m[`celeriac ${k}`]!)} | ${fmt(m[`celery ${k}`]!)} | ${fmt(m[`bullmq ${k}`]!)} | ${ratio(m[`celery ${k}`]!, m[`celeriac ${k}`]!)} | ${ratio(m[`bullmq ${k}`]!, m[`celeriac ${k}`]!)} |`),
    '',
    'Above 1x: Celeriac is faster.',
    '',
  ].join('\n');
  const out = join(root, 'bench/results');
  mkdirSync(out, { recursive: true });
  writeFileSync(join(out, 'canvas-latest.md'), md);
  writeFileSync(join(out, 'canvas-latest.json'), JSON.stringify({ chordN, chainN, runs, celeriacC, celeryC, times, medians: m, node: process.version, at: new Date().toISOString() }, null, 2));
  console.log(md);
}

await main();
