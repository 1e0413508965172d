/**
 * RabbitMQ's CPU per delivered message for a channel-wide (`global`) prefetch
 * against a per-consumer one, with no worker in the way: publish N persistent
 * messages to a durable queue, then drain them with a plain amqplib consumer that
 * acks each socket read's deliveries with one `multiple` ack. Modes interleaved.
 *
 *   node --import tsx bench/amqp-qos-cost.ts [N=20000] [prefetch=32] [runs=3]
 */
import { execFileSync } from 'node:child_process';
import { connect, type ConsumeMessage } from 'amqplib';
import { startRabbitMQ } from '../test/helpers/rabbitmq.ts';
import { cpuSeconds, processTree } from './lib/proc.ts';

const N = Number(process.argv[2] ?? 20000);
const PREFETCH = Number(process.argv[3] ?? 32);
const RUNS = Number(process.argv[4] ?? 3);
const rabbit = await startRabbitMQ();
const rabbitCpu = () => processTree(rabbit.pid).reduce((s, p) => s + cpuSeconds(p), 0);
const conn = await connect(rabbit.url);
try {
  const pub = await conn.createConfirmChannel();
  await pub.assertQueue('qos-cost', { durable: true });
  const body = Buffer.from(JSON.stringify([[1, 2], {}, { callbacks: null, errbacks: null, chain: null, chord: null }]));
  for (let run = 1; run <= RUNS; run++) {
    for (const global of run % 2 ? [true, false] : [false, true]) {
      for (let i = 0; i < N; i++) pub.publish('', 'qos-cost', body, { deliveryMode: 2, headers: { id: `t-${i}`, task: 'bench.add', retries: 0 } });
      await pub.waitForConfirms();
      const ch = await conn.createChannel();
      await ch.prefetch(PREFETCH, global);
      const c0 = rabbitCpu();
      const t0 = performance.now();
      let got = 0;
      let last: ConsumeMessage | undefined;
      let scheduled = false;
      await new Promise<void>((resolve) => {
        void ch.consume('qos-cost', (msg) => {
          if (!msg) return;
          got++;
          last = msg;
          if (!scheduled) {
            scheduled = true;
            setImmediate(() => {
              scheduled = false;
              ch.ack(last!, true);
              if (got >= N) resolve();
            });
          }
        });
      });
      const ms = performance.now() - t0;
      const cpu = rabbitCpu() - c0;
      await ch.close();
      const load = execFileSync('uptime').toString().trim().replace(/.*load average: /, '');
      process.stdout.write(`run ${run} ${global ? 'global      ' : 'per-consumer'} prefetch ${PREFETCH}: ${Math.round(N / (ms / 1000))}/s, RabbitMQ CPU ${((cpu / N) * 1000).toFixed(3)} s/1k (load ${load})\n`);
    }
  }
} finally {
  await conn.close();
  await rabbit.stop();
}
