// The Celeriac side of the benchmark: one app and one no-op task. Loaded by the
// worker (`celeriac worker -A bench/systems/celeriac/tasks.mjs`) and by client.mjs.
import { createApp } from '@celeriac/core';

export const app = createApp('bench', {
  brokerUrl: process.env.BENCH_BROKER_URL ?? 'redis://127.0.0.1:6379/0',
  resultBackend: process.env.BENCH_BACKEND_URL ?? 'redis://127.0.0.1:6379/1',
});

export const add = app.task('bench.add', (x, y) => x + y);
