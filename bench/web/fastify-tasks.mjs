// The tasks module of bench/web-fastify.ts: the bench process (producer) and the
// `celeriac worker -A bench/web/fastify-tasks.mjs` process both import it.
import { createApp } from '@celeriac/core';

export const app = createApp('bench-web-fastify');
export const echo = app.task('bench.echo', (value) => value);
