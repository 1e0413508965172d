/**
 * worker-app plus tasks that kill their own worker process (poison messages) and an early-ack slow task, for
 * the fault tests (`-A test/apps/crash-app.ts`).
 */
import { appendFileSync } from 'node:fs';
import { app } from './worker-app.ts';

export { app };

// Fail fast on a lost connection (ioredis maxRetriesPerRequest), as some deployments do:
// commands issued during an outage then fail within ~100 ms instead of queueing.
if (process.env.CELERIAC_TEST_REDIS_RETRIES) {
  app.configure({ brokerTransportOptions: { redis: { maxRetriesPerRequest: Number(process.env.CELERIAC_TEST_REDIS_RETRIES) } } });
}

/** Records its start (CELERIAC_TEST_STARTLOG), then kills its own process: a poison message. Acks late. */
export const crashLate = app.task(
  'tasks.crash_late',
  (tag: string) => {
    if (process.env.CELERIAC_TEST_STARTLOG) appendFileSync(process.env.CELERIAC_TEST_STARTLOG, `${tag} ${process.pid}\n`);
    process.exit(70);
  },
  { acksLate: true },
);

/** The same with early acks (Celery's default): the message is acknowledged before the body runs. */
export const crashEarly = app.task(
  'tasks.crash_early',
  (tag: string) => {
    if (process.env.CELERIAC_TEST_STARTLOG) appendFileSync(process.env.CELERIAC_TEST_STARTLOG, `${tag} ${process.pid}\n`);
    process.exit(70);
  },
  { acksLate: false },
);

/** Sleeps, then records that it finished (CELERIAC_TEST_RUNLOG). Early ack: the message is acknowledged before it runs. */
export const slowEarly = app.task(
  'tasks.slow_early',
  async (ms: number, tag: string) => {
    await new Promise((r) => setTimeout(r, ms));
    if (process.env.CELERIAC_TEST_RUNLOG) appendFileSync(process.env.CELERIAC_TEST_RUNLOG, `${tag} ${process.pid}\n`);
    return tag;
  },
  { acksLate: false },
);
