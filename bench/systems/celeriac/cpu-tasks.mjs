// The Celeriac side of the CPU pool benchmark (bench/cpu-pools.ts): loaded by the
// worker and, with --pool threads/processes, by each thread / child process.
import { createHash } from 'node:crypto';
import { createApp } from '../../../packages/core/dist/esm/index.js';

export const app = createApp('bench-cpu', {
  brokerUrl: process.env.BENCH_BROKER_URL,
  resultBackend: process.env.BENCH_BACKEND_URL,
});

/** 64 KiB of 0x5a: the block both sides hash (bench/python/bench_tasks.py has the same). */
const BLOCK = Buffer.alloc(64 * 1024, 0x5a);

/**
 * SHA-256 over `blocks` × 64 KiB, one `update` per block: OpenSSL's SHA-256 does the
 * work in Node and in Python alike (both link OpenSSL 3), so equal `blocks` is equal
 * work; bench/cpu-pools.ts calibrates it to about 20 ms of CPU.
 */
export function hashLoop(blocks) {
  const hash = createHash('sha256');
  for (let i = 0; i < blocks; i++) hash.update(BLOCK);
  return hash.digest('hex').slice(0, 8);
}

app.task('bench.hash_loop', hashLoop);
