// Celeriac producer / round-trip client, run as its own process by bench/run.ts.
//   node client.mjs enqueue <n> <chunk>      -> {"ms": ...}
//   node client.mjs enqueue-bulk <n> <batch> [warmup] -> {"ms": ...}   (add.delayMany, one awaited batch at a time, after
//                                            `warmup` unmeasured messages, default one batch, sent to another queue and purged)
//   node client.mjs roundtrip <n> <warmup>   -> {"latencies": [...ms]}
import { Redis } from 'ioredis';
import { app, add } from './tasks.mjs';

const [mode, nArg, extraArg, warmupArg] = process.argv.slice(2);
const n = Number(nArg);

async function enqueue(chunk) {
  await app.getBroker(); // connect before timing (all systems do)
  const t0 = performance.now();
  for (let i = 0; i < n; i += chunk) {
    const batch = [];
    for (let j = i; j < Math.min(n, i + chunk); j++) batch.push(add.delay(j, j));
    await Promise.all(batch);
  }
  return { ms: performance.now() - t0 };
}

async function enqueueBulk(batchSize) {
  // One unmeasured warm-up batch to another queue (deleted again), like the round
  // trips' warm-up, so JIT compilation is not counted; then reset Redis's command
  // stats so the harness counts only the measured batches.
  const broker = await app.getBroker();
  const warmup = warmupArg === undefined ? batchSize : Number(warmupArg);
  for (let i = 0; i < warmup; i += batchSize) {
    await add.applyAsyncMany(Array.from({ length: Math.min(batchSize, warmup - i) }, (_, j) => ({ args: [j, j] })), { queue: 'bench-warmup' });
    await broker.purge(['bench-warmup']);
  }
  const stats = new Redis(process.env.BENCH_BROKER_URL);
  await stats.config('RESETSTAT');
  stats.disconnect();
  const t0 = performance.now();
  for (let i = 0; i < n; i += batchSize) {
    const batch = [];
    for (let j = i; j < Math.min(n, i + batchSize); j++) batch.push([j, j]);
    await add.delayMany(batch);
  }
  return { ms: performance.now() - t0 };
}

async function roundtrip(warmup) {
  await app.getBroker();
  await app.getBackend();
  const latencies = [];
  for (let i = 0; i < warmup + n; i++) {
    const t0 = performance.now();
    const r = await add.delay(i, i);
    const v = await r.get({ timeout: 10_000 });
    const ms = performance.now() - t0;
    if (v !== 2 * i) throw new Error(`bench.add(${i}, ${i}) returned ${JSON.stringify(v)}`);
    if (i >= warmup) latencies.push(ms);
  }
  return { latencies };
}

const out =
  mode === 'enqueue' ? await enqueue(Number(extraArg ?? 1000)) :
  mode === 'enqueue-bulk' ? await enqueueBulk(Number(extraArg ?? 1000)) : mode === 'roundtrip' ? await roundtrip(Number(extraArg ?? 0)) : null;
if (!out) throw new Error(`unknown mode ${mode}`);
await app.close();
process.stdout.write(JSON.stringify(out) + '\n');
process.exit(0);
