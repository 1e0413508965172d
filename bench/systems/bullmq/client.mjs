// BullMQ producer / round-trip client, run as its own process by bench/run.ts.
//   node client.mjs enqueue <n> <chunk>      -> {"ms": ...}   (queue.add, <chunk> at a time; not addBulk)
//   node client.mjs enqueue-bulk <n> <batch> -> {"ms": ...}   (queue.addBulk, one awaited batch at a time, after one warm-up batch)
//   node client.mjs roundtrip <n> <warmup>   -> {"latencies": [...ms]} (add → job.waitUntilFinished)
import { Queue, QueueEvents } from 'bullmq';
import { QUEUE, connection } from './common.mjs';

const [mode, nArg, extraArg] = process.argv.slice(2);
const n = Number(nArg);
const queue = new Queue(QUEUE, { connection });

async function enqueue(chunk) {
  await queue.waitUntilReady(); // connect before timing (all systems do)
  const t0 = performance.now();
  for (let i = 0; i < n; i += chunk) {
    const batch = [];
    for (let j = i; j < Math.min(n, i + chunk); j++) batch.push(queue.add('bench.add', { x: j, y: j }));
    await Promise.all(batch);
  }
  return { ms: performance.now() - t0 };
}

async function enqueueBulk(batchSize) {
  // One unmeasured warm-up batch to another queue (obliterated again), like the
  // round trips' warm-up; then reset Redis's command stats (see celeriac/client.mjs).
  await queue.waitUntilReady();
  const warm = new Queue(`${QUEUE}-warmup`, { connection });
  await warm.addBulk(Array.from({ length: batchSize }, (_, j) => ({ name: 'bench.add', data: { x: j, y: j } })));
  await warm.obliterate({ force: true });
  await warm.close();
  await (await queue.client).config('RESETSTAT');
  const t0 = performance.now();
  for (let i = 0; i < n; i += batchSize) {
    const batch = [];
    for (let j = i; j < Math.min(n, i + batchSize); j++) batch.push({ name: 'bench.add', data: { x: j, y: j } });
    await queue.addBulk(batch);
  }
  return { ms: performance.now() - t0 };
}

async function roundtrip(warmup) {
  // Start reading the events stream from its current end, whenever the first XREAD
  // is actually sent (the default '$' misses a job finishing before that: a race
  // that made the first waitUntilFinished time out now and then).
  const client = await queue.client;
  const [last] = await client.xrevrange(queue.keys.events, '+', '-', 'COUNT', 1);
  const events = new QueueEvents(QUEUE, { connection, lastEventId: last?.[0] ?? '0-0' });
  await events.waitUntilReady();
  const latencies = [];
  for (let i = 0; i < warmup + n; i++) {
    const t0 = performance.now();
    const job = await queue.add('bench.add', { x: i, y: i });
    const v = await job.waitUntilFinished(events, 10_000);
    const ms = performance.now() - t0;
    if (v !== 2 * i) throw new Error(`bench.add(${i}, ${i}) returned ${JSON.stringify(v)}`);
    if (i >= warmup) latencies.push(ms);
  }
  await events.close();
  return { latencies };
}

const out =
  mode === 'enqueue' ? await enqueue(Number(extraArg ?? 1000)) :
  mode === 'enqueue-bulk' ? await enqueueBulk(Number(extraArg ?? 1000)) : mode === 'roundtrip' ? await roundtrip(Number(extraArg ?? 0)) : null;
if (!out) throw new Error(`unknown mode ${mode}`);
await queue.close();
process.stdout.write(JSON.stringify(out) + '\n');
process.exit(0);
