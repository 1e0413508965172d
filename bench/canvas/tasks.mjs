// The Celeriac side of the canvas benchmark (bench/canvas.ts): `bench.add` and
// `bench.tsum`, loaded by `celeriac worker -A bench/canvas/tasks.mjs` and by the
// producer in bench/canvas.ts.
import { createApp } from '@celeriac/core';

export const app = createApp('bench-canvas', {
  brokerUrl: process.env.BENCH_BROKER_URL ?? 'redis://127.0.0.1:6379/0',
  resultBackend: process.env.BENCH_BACKEND_URL ?? 'redis://127.0.0.1:6379/1',
});

export const add = app.task('bench.add', (x, y) => x + y);
export const tsum = app.task('bench.tsum', (numbers) => numbers.reduce((a, b) => a + b, 0));
