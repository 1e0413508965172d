// Producer-only client for bench/producer-ab.ts: one Celeriac build (the module at
// $CELERIAC_CORE, default @celeriac/core) enqueues N messages, after a warm-up, and
// reports wall time and its own CPU (user+sys) over the measured part.
//   node producer-ab.mjs bulk <n> <batch>     (add.delayMany, one awaited batch at a time)
//   node producer-ab.mjs single <n> <chunk>   (add.delay, <chunk> concurrent per awaited chunk)
// -> {"ms": ..., "cpuMs": ..., "minorFaults": ..., "monoUs": [start, end]}
import { pathToFileURL } from 'node:url';

const core = await import(process.env.CELERIAC_CORE ? pathToFileURL(process.env.CELERIAC_CORE).href : '@celeriac/core');
const [mode, nArg, sizeArg] = process.argv.slice(2);
const n = Number(nArg);
const size = Number(sizeArg ?? 1000);
const app = core.createApp('bench', { brokerUrl: process.env.BENCH_BROKER_URL, resultBackend: process.env.BENCH_BACKEND_URL });
const add = app.task('bench.add', (x, y) => x + y);

async function send(queueOptions, count) {
  for (let i = 0; i < count; i += size) {
    const m = Math.min(size, count - i);
    if (mode === 'bulk') {
      if (queueOptions) await add.applyAsyncMany(Array.from({ length: m }, (_, j) => ({ args: [i + j, i + j] })), queueOptions);
      else {
        const batch = [];
        for (let j = 0; j < m; j++) batch.push([i + j, i + j]);
        await add.delayMany(batch);
      }
    } else {
      const pending = [];
      for (let j = 0; j < m; j++) pending.push(queueOptions ? add.applyAsync([i + j, i + j], {}, queueOptions) : add.delay(i + j, i + j));
      await Promise.all(pending);
    }
  }
}

const broker = await app.getBroker();
await send({ queue: 'bench-warmup' }, Math.min(n, 2 * size)); // JIT warm-up, not counted
await broker.purge(['bench-warmup']);
const cpu0 = process.cpuUsage();
const faults0 = process.resourceUsage().minorPageFault;
const mono0 = process.hrtime.bigint() / 1000n;
const t0 = performance.now();
await send(null, n);
const ms = performance.now() - t0;
const cpu = process.cpuUsage(cpu0);
const faults = process.resourceUsage().minorPageFault - faults0;
const mono1 = process.hrtime.bigint() / 1000n;
await app.close();
// monoUs: the measured window on CLOCK_MONOTONIC (µs), the clock of `node --cpu-prof` timestamps.
process.stdout.write(JSON.stringify({ ms, cpuMs: (cpu.user + cpu.system) / 1000, minorFaults: faults, monoUs: [Number(mono0), Number(mono1)] }) + '\n');
process.exit(0);
