// A Celeriac worker with its broker/backend calls timed, for bench/profile.ts.
//   node [--cpu-prof ...] profile-worker.mjs <concurrency> [prefetchMultiplier]
// On SIGTERM: warm stop, then prints one JSON line with per-call timings and exits
// (so --cpu-prof writes its profile).
import { Worker } from '@celeriac/core';
import { RedisBroker } from '../../../packages/core/dist/brokers/redis.js';
import { RedisBackend } from '../../../packages/core/dist/backends/redis.js';
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
instrument(RedisBroker.prototype, 'reserve', 'broker.reserve', (_a, out) => out?.length ?? 0);
instrument(RedisBroker.prototype, 'ack', 'broker.ack', (a) => a[0]?.length ?? 0);
instrument(RedisBackend.prototype, 'storeResults', 'backend.storeResults', (a) => a[0]?.length ?? 0);
instrument(RedisBackend.prototype, 'storeResult', 'backend.storeResult', () => 1);

// Experiments on the worker's consume loop (bench-only monkey patches, to measure an
// idea before changing the core): BENCH_EXPERIMENT=lowwater reserves again only once
// half the prefetch window is free (while tasks are still buffered), so each
// reserve round trip carries a bigger batch.
if (process.env.BENCH_EXPERIMENT === 'lowwater') {
  Worker.prototype.consumeLoop = async function consumeLoop() {
    const low = Math.max(1, Math.floor(this.prefetchLimit / 2));
    while (this.running) {
      const free = this.prefetchLimit - this.stats.reserved;
      if (free <= 0 || (free < low && this.ready.length > 0)) {
        await new Promise((resolve) => (this.slotWaiter = resolve));
        continue;
      }
      let deliveries;
      try {
        deliveries = await this.broker.reserve(this.queues, { max: free, timeoutMs: 1000 });
      } catch (err) {
        if (!this.running) break;
        await new Promise((r) => setTimeout(r, 1000));
        continue;
      }
      for (const d of deliveries) this.receive(d);
      this.maybeIdle();
    }
  };
}

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
