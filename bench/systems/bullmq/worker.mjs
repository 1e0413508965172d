// BullMQ worker: node worker.mjs <concurrency>. Completed jobs are kept
// (removeOnComplete is false by default), so every return value is stored in Redis.
import { Worker } from 'bullmq';
import { QUEUE, connection } from './common.mjs';

const concurrency = Number(process.argv[2] ?? 8);
const worker = new Worker(QUEUE, async (job) => job.data.x + job.data.y, { connection, concurrency });
worker.on('error', (err) => console.error('worker error', err));
await worker.waitUntilReady();

let stopping = false;
const stop = async () => {
  if (stopping) return;
  stopping = true;
  await worker.close();
  process.exit(0);
};
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
