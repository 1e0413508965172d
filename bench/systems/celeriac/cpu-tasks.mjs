// The Celeriac side of the CPU pool benchmark (bench/cpu-pools.ts): loaded by the
// worker and, with --pool threads/processes, by each thread / child process.
import { createHash } from 'node:crypto';
import { createApp } from '../../../packages/core/dist/index.js';

export const app = createApp('bench-cpu', {
  brokerUrl: process.env.BENCH_BROKER_URL,
  resultBackend: process.env.BENCH_BACKEND_URL,
});

/** `iterations` SHA-256 digests of 64 bytes: calibrated to about 20 ms of one core. */
export function hashLoop(iterations) {
  let data = Buffer.alloc(64);
  for (let i = 0; i < iterations; i++) data = createHash('sha256').update(data).digest();
  return data.subarray(0, 4).toString('hex');
}

app.task('bench.hash_loop', hashLoop);
