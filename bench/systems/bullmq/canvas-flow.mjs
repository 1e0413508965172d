// BullMQ's FlowProducer for the canvas benchmark (bench/canvas.ts): a fan-in of N
// `add` children into one `tsum` parent, and a chain of M steps as a flow nested M
// deep (the deepest job runs first, each parent adds its child's value). Worker and
// producer in this process (concurrency 50). Prints one JSON line of seconds per run.
//   node canvas-flow.mjs <redis url> <chordN> <chainN> <runs>
import { FlowProducer, QueueEvents, Worker } from 'bullmq';
import { Redis } from 'ioredis';

const [url, chordN, chainN, runs] = [process.argv[2], Number(process.argv[3]), Number(process.argv[4]), Number(process.argv[5])];
const connection = () => new Redis(url, { maxRetriesPerRequest: null });
const queueName = 'canvas';
const worker = new Worker(
  queueName,
  async (job) => {
    if (job.name === 'add') return job.data.x + job.data.y;
    const values = Object.values(await job.getChildrenValues());
    if (job.name === 'tsum') return values.reduce((a, b) => a + b, 0);
    return values[0] + job.data.y; // step
  },
  { connection: connection(), concurrency: 50 },
);
const events = new QueueEvents(queueName, { connection: connection() });
await events.waitUntilReady();
const flow = new FlowProducer({ connection: connection() });

const chordTree = (n) => ({ name: 'tsum', queueName, children: Array.from({ length: n }, (_, i) => ({ name: 'add', queueName, data: { x: i, y: i } })) });
function chainTree(n) {
  let node = { name: 'add', queueName, data: { x: 1, y: 1 } };
  for (let i = 1; i < n; i++) node = { name: 'step', queueName, data: { y: 1 }, children: [node] };
  return node;
}
async function timed(tree, expected) {
  const t = performance.now();
  const { job } = await flow.add(tree);
  const value = await job.waitUntilFinished(events, 600_000);
  if (value !== expected) throw new Error(`flow gave ${value}, expected ${expected}`);
  return (performance.now() - t) / 1000;
}
// Warm-up, unmeasured, as for the other systems.
for (let i = 0; i < 3; i++) {
  await timed(chordTree(100), 100 * 99);
  await timed(chainTree(21), 22);
}
const out = { chord: [], chain: [] };
for (let r = 0; r < runs; r++) {
  out.chord.push(await timed(chordTree(chordN), chordN * (chordN - 1)));
  out.chain.push(await timed(chainTree(chainN), chainN + 1));
}
await worker.close();
await events.close();
await flow.close();
process.stdout.write(`${JSON.stringify(out)}\n`);
process.exit(0);
