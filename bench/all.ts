/**
 * `npm run bench`: every benchmark in one run, one after the other, so their ratios
 * come from the same machine state.
 *
 *   1. bench/run.ts       — enqueue/drain/round trip vs BullMQ and Python Celery (takes the
 *                           command line: `npm run bench -- --scale`, `--systems=…`, …)
 *   2. bench/cpu-pools.ts — a CPU-bound task on the async/threads/processes pools vs Celery prefork
 *   3. bench/canvas.ts    — a chord of 1,000 and a chain of 100 vs Celery and BullMQ flows
 *   4. bench/events-overhead.ts — drain with task events (-E) vs without
 *   5. bench/web-latency.ts — request → result through Express, Fastify and Nest vs the core
 *
 * `BENCH_ONLY=run,cpu,canvas,events,web` runs a subset. A step that fails stops the run with its exit code.
 */
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const steps: Array<{ name: string; file: string; args: string[] }> = [
  { name: 'run', file: 'run.ts', args: process.argv.slice(2) },
  { name: 'cpu', file: 'cpu-pools.ts', args: [] },
  { name: 'canvas', file: 'canvas.ts', args: [] },
  { name: 'events', file: 'events-overhead.ts', args: [] },
  { name: 'web', file: 'web-latency.ts', args: [] },
];
const only = process.env.BENCH_ONLY?.split(',').map((s) => s.trim()).filter(Boolean);

for (const step of steps) {
  if (only && !only.includes(step.name)) continue;
  const file = fileURLToPath(new URL(step.file, import.meta.url));
  process.stdout.write(`\n== bench/${step.file} ${step.args.join(' ')}\n`);
  const { status } = spawnSync(process.execPath, ['--import', 'tsx', file, ...step.args], { stdio: 'inherit' });
  if (status !== 0) process.exit(status ?? 1);
}
