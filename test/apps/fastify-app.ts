/**
 * The tasks module of the Fastify plugin tests (test/fastify-plugin.test.ts). It
 * imports the built packages, as a user's app does, so the plugin, the worker and
 * these tasks share one copy of the core.
 */
import { createApp, currentTask } from '@celeriac/core';

export const app = createApp('fastify-test');

export const add = app.task('fx.add', (x: number, y: number) => x + y);

export const fail = app.task('fx.fail', (message: string) => {
  throw new RangeError(message);
});

/** The request context as the running task sees it. */
export const seen = app.task('fx.seen', () => {
  const task = currentTask();
  const context = task?.requestContext;
  return { requestId: context?.requestId ?? null, traceparent: context?.traceparent ?? null, tracestate: context?.tracestate ?? null, tenant: task?.headers.tenant ?? null };
});

const gates = new Map<string, () => void>();

/** Reports PROGRESS, then waits until the test calls `openGate(tag)`. */
export const gated = app.task('fx.gated', async function (tag: string) {
  await this.updateState('PROGRESS', { tag, step: 1 });
  await new Promise<void>((resolve) => gates.set(tag, resolve));
  return tag;
});

/** Let a `fx.gated` run finish; false when it has not reached its gate yet. */
export function openGate(tag: string): boolean {
  const open = gates.get(tag);
  gates.delete(tag);
  open?.();
  return open !== undefined;
}
