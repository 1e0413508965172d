/**
 * The app of the hang tests (`test/worker-hang.test.ts`): tasks that block the
 * event loop, and one that records it ran. Every run is appended to the file
 * named by CELERIAC_TEST_RUNLOG as `<event> <tag> <pid>` lines.
 */
import { appendFileSync } from 'node:fs';
import { createApp } from '../../packages/core/src/index.ts';

export const app = createApp('hang-app', {
  workerHeartbeatInterval: Number(process.env.CELERIAC_TEST_HEARTBEAT ?? 2),
  workerHangTimeout: Number(process.env.CELERIAC_TEST_HANG_TIMEOUT ?? 300),
});

function record(event: string, tag: string): void {
  if (process.env.CELERIAC_TEST_RUNLOG) appendFileSync(process.env.CELERIAC_TEST_RUNLOG, `${event} ${tag} ${process.pid}\n`);
}

/** Records that it ran. */
export const note = app.task('hang.note', (tag: string) => {
  record('ran', tag);
  return tag;
});

function forever(tag: string): never {
  record('start', tag);
  for (;;) {
    // a task stuck in a synchronous loop: the event loop never runs again
  }
}

/** Never returns (early ack, the default). */
export const stuck = app.task('hang.stuck', forever);
/** Never returns; acks late (a lost worker's message is acked, Celery's default). */
export const stuckLate = app.task('hang.stuckLate', forever, { acksLate: true });
/** Never returns; acks late and rejects on worker lost (requeued). */
export const stuckRequeue = app.task('hang.stuckRequeue', forever, { acksLate: true, rejectOnWorkerLost: true });

/** Blocks the event loop for `ms`, recording start and end. */
export const block = app.task(
  'hang.block',
  (ms: number, tag: string) => {
    record('start', tag);
    const until = Date.now() + ms;
    while (Date.now() < until) {
      // busy: nothing else runs on this thread
    }
    record('end', tag);
    return tag;
  },
  { acksLate: true },
);
