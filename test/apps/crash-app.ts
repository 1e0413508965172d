/**
 * worker-app plus tasks that kill their own worker process (poison messages), for
 * the fault tests (`-A test/apps/crash-app.ts`).
 */
import { appendFileSync } from 'node:fs';
import { app } from './worker-app.ts';

export { app };

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
