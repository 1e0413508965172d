/**
 * What `waitForReplicas` buys on Redis Sentinel: the killed-master fault scenario of
 * test/redis-sentinel.test.ts, run alternately with `waitForReplicas: 1` (the
 * Sentinel default) and `0`, on one topology (master + 2 replicas + 3 sentinels on
 * loopback). Each round: a producer publishes N tasks (10 in flight, generous retry
 * policy), a worker (acks late, concurrency 8) consumes them, and the master is
 * SIGKILLed once N/4 publishes resolved. Prints, per round, how many resolved tasks
 * never ran within 30 s after the last publish (lost), how many ran twice, the
 * publish wall time and the producer's CPU per task, then the load average.
 *
 *   node --import tsx bench/sentinel-failover.ts [rounds=3] [tasks=2000]
 */
import { loadavg } from 'node:os';
import { createApp, Worker } from '../packages/core/src/index.ts';
import { startSentinelTopology } from '../test/helpers/redis-sentinel.ts';

const rounds = Number(process.argv[2] ?? 3);
const N = Number(process.argv[3] ?? 2000);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const topo = await startSentinelTopology();
try {
  for (let round = 0; round < rounds; round++) {
    for (const waitForReplicas of [1, 0]) {
      const queue = `bench-${round}-${waitForReplicas}`;
      const app = createApp(queue, {
        brokerUrl: topo.url(0),
        resultBackend: null,
        taskAcksLate: true,
        taskDefaultQueue: queue,
        brokerTransportOptions: { ...topo.transportOptions(), waitForReplicas },
      });
      const runs = new Map<number, number>();
      app.task('bench.run', async (i: number) => {
        runs.set(i, (runs.get(i) ?? 0) + 1);
        await sleep(1);
      });
      const worker = new Worker(app, { concurrency: 8, logLevel: 'error' });
      await worker.start();
      const resolved = new Set<number>();
      const policy = { maxRetries: 200, intervalStart: 0.1, intervalStep: 0.1, intervalMax: 0.5 };
      const started = performance.now();
      const cpu = process.cpuUsage();
      const producing = (async () => {
        for (let i = 0; i < N; i += 10) {
          await Promise.all(
            Array.from({ length: 10 }, async (_, k) => {
              try {
                await app.sendTask('bench.run', [i + k], {}, { retryPolicy: policy });
                resolved.add(i + k);
              } catch {
                // counted as not resolved
              }
            }),
          );
        }
      })();
      while (resolved.size < N / 4 || runs.size === 0) await sleep(5);
      const switched = await topo.killMaster();
      await producing;
      const publishMs = performance.now() - started;
      const used = process.cpuUsage(cpu);
      const deadline = Date.now() + 30_000;
      const missing = () => [...resolved].filter((i) => !runs.has(i)).length;
      while (missing() > 0 && Date.now() < deadline) await sleep(100);
      console.log(
        `round ${round} waitForReplicas=${waitForReplicas}: ${resolved.size}/${N} resolved, ${missing()} never ran (lost), ` +
          `${[...runs.values()].filter((n) => n > 1).length} ran twice; publishing took ${(publishMs / 1000).toFixed(1)} s ` +
          `(incl. the failover), producer+worker CPU ${((used.user + used.system) / N).toFixed(0)} µs/task`,
      );
      await worker.stop({ cold: true });
      await app.close();
      await topo.nodes.find((n) => n.port === switched.from)!.restart();
      await topo.settled(2);
    }
  }
  console.log(`load average ${loadavg().map((l) => l.toFixed(1)).join(' ')}`);
} finally {
  await topo.stop();
}
