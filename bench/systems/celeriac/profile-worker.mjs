// A Celeriac worker with its broker/backend calls timed, for bench/profile.ts.
//   node [--cpu-prof ...] profile-worker.mjs <concurrency> [prefetchMultiplier]
// On SIGTERM: warm stop, then prints one JSON line with per-call timings and exits
// (so --cpu-prof writes its profile).
import { Worker } from '@celeriac/core';
import { RedisConsumer } from '../../../packages/core/dist/esm/brokers/redis-consumer.js';
import { RedisBackend } from '../../../packages/core/dist/esm/backends/redis.js';
import { app } from './tasks.mjs';

const concurrency = Number(process.argv[2] ?? 8);
const prefetchMultiplier = process.argv[3] === undefined ? undefined : Number(process.argv[3]);

/** Wall time and batch sizes of one async method, plus how much of the time at least one call was in flight. */
const timings = {};
function instrument(proto, method, label, itemsOf) {
  const original = proto[method];
  if (typeof original !== 'function') return;
  // intervals: [start, end] in epoch ms while at least one call was in flight (clipped to the drain by profile.ts)
  const t = (timings[label] = { calls: 0, items: 0, totalMs: 0, maxMs: 0, inFlight: 0, busyMs: 0, busySince: 0, maxInFlight: 0, intervals: [] });
  proto[method] = async function (...args) {
    const t0 = performance.now();
    if (t.inFlight++ === 0) t.busySince = t0;
    t.maxInFlight = Math.max(t.maxInFlight, t.inFlight);
    try {
      const out = await original.apply(this, args);
      t.items += itemsOf(args, out);
      return out;
    } finally {
      const t1 = performance.now();
      t.calls++;
      t.totalMs += t1 - t0;
      t.maxMs = Math.max(t.maxMs, t1 - t0);
      if (--t.inFlight === 0) {
        t.busyMs += t1 - t.busySince;
        t.intervals.push([performance.timeOrigin + t.busySince, performance.timeOrigin + t1]);
      }
    }
  };
}
instrument(RedisConsumer.prototype, 'reserve', 'consumer.reserve', (_a, out) => out?.length ?? 0);
instrument(RedisConsumer.prototype, 'ack', 'consumer.ack', (a) => a[0]?.length ?? 0);
instrument(RedisBackend.prototype, 'storeEncoded', 'backend.storeEncoded', (a) => a[0]?.length ?? 0);
instrument(RedisBackend.prototype, 'storeResults', 'backend.storeResults', (a) => a[0]?.length ?? 0);
instrument(RedisBackend.prototype, 'storeResult', 'backend.storeResult', () => 1);

const worker = new Worker(app, { concurrency, prefetchMultiplier, logLevel: 'warning' });
const tStart = performance.now();
await worker.start();
const tReady = performance.now();

process.once('SIGTERM', async () => {
  const tStop = performance.now();
  await worker.stop();
  await app.close();
  for (const t of Object.values(timings)) delete t.busySince;
  process.stdout.write(JSON.stringify({ startMs: tReady - tStart, runMs: tStop - tReady, stats: worker.stats, prefetchLimit: worker.prefetchLimit, timings }) + '\n');
  process.exit(0);
});
