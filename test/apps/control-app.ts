/**
 * Tasks for the remote-control tests (test/remote-control.test.ts): a task that
 * sleeps (to be seen by `inspect active`) and one that adds. Broker and backend
 * from INTEROP_BROKER_URL / INTEROP_BACKEND_URL, as the interop apps read them.
 */
import { createApp } from '../../packages/core/src/index.ts';

export const app = createApp('control-ts', {
  brokerUrl: process.env.INTEROP_BROKER_URL ?? 'memory://control',
  resultBackend: process.env.INTEROP_BACKEND_URL,
});

/** `ctl.sleep(ms)`: resolves with `ms` after that long. */
export const sleep = app.task('ctl.sleep', async (ms: number) => {
  await new Promise((r) => setTimeout(r, ms));
  return ms;
});

/** `ctl.add(x, y)`. */
export const add = app.task('ctl.add', (x: number, y: number) => x + y);
