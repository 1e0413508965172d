// The tasks module: the web process (server.mjs) and the worker both import it.
//   celeriac worker -A examples/fastify-app/tasks.mjs
// It declares the app before any config exists; the Fastify plugin binds it to the
// web process's config, `celeriac worker` to its flags / CELERY_* environment.
import { createApp, currentTask } from '@celeriac/core';

export const app = createApp('fastify-app');

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/** A long task that reports progress: PROGRESS { current, total } after each step. */
export const buildReport = app.task('reports.build', async function (pages = 5, msPerPage = 200) {
  for (let page = 1; page <= pages; page++) {
    await sleep(msPerPage);
    await this.updateState('PROGRESS', { current: page, total: pages });
  }
  return { pages, requestId: requestContext().requestId };
});

/** One section of a batch of reports: its page count. */
export const countPages = app.task('reports.count_pages', (section) => String(section).length);

/** A chord's body: the pages of every section, summed, and the request that asked for them. */
export const summarize = app.task('reports.summarize', (counts) => ({ sections: counts.length, pages: counts.reduce((sum, n) => sum + n, 0), requestId: requestContext().requestId }));

/** What the task sees of the request that sent it (request id, trace context). */
export const requestInfo = app.task('reports.request_info', () => requestContext());

function requestContext() {
  const context = currentTask()?.requestContext ?? {};
  return { requestId: context.requestId ?? null, traceparent: context.traceparent ?? null, tracestate: context.tracestate ?? null };
}
