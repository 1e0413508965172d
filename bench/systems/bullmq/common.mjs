// Shared BullMQ settings for the benchmark.
export const QUEUE = 'bench';
export const connection = {
  host: '127.0.0.1',
  port: Number(process.env.BENCH_REDIS_PORT ?? 6379),
  db: Number(process.env.BENCH_BULLMQ_DB ?? 0),
  maxRetriesPerRequest: null, // required by BullMQ workers
};
