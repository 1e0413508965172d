// The tasks module of bench/web-latency.ts: the bench process (Express, Fastify and
// Nest, all three binding this one app) and the `celeriac worker -A bench/web/tasks.mjs`
// process both import it.
import { createApp } from '@celeriac/core';

export const app = createApp('bench-web');
export const echo = app.task('bench.echo', (value) => value);
