/**
 * Frames per task on the RabbitMQ consumer path: drains N no-op tasks (no result
 * backend) with an in-process worker at c=8 and c=50 on a private RabbitMQ, counting
 * the basic.ack (single / multiple) and basic.qos frames every amqplib channel of this
 * process sends. Prints one JSON line per concurrency.
 *
 *   node --import tsx bench/amqp-frames.ts [N=3000]
 */
import { connect, type Channel, type Message } from 'amqplib';
import { createApp, Worker } from '../packages/core/src/index.ts';
import { startRabbitMQ } from '../test/helpers/rabbitmq.ts';

const N = Number(process.argv[2] ?? 3000);
const rabbit = await startRabbitMQ();
try {
  const probe = await connect(rabbit.url);
  // The class every channel of this process is an instance of (amqplib does not export it).
  const proto = Object.getPrototypeOf(await probe.createChannel()) as Pick<Channel, 'ack' | 'prefetch'>;
  const counts = { ack: 0, ackMultiple: 0, qos: 0 };
  const realAck = proto.ack;
  const realPrefetch = proto.prefetch;
  proto.ack = function (this: Channel, msg: Message, allUpTo?: boolean) {
    counts.ack++;
    if (allUpTo) counts.ackMultiple++;
    return realAck.call(this, msg, allUpTo);
  };
  proto.prefetch = function (this: Channel, count: number, global?: boolean) {
    counts.qos++;
    return realPrefetch.call(this, count, global);
  };
  for (const concurrency of [8, 50]) {
    const app = createApp('amqp-frames', { brokerUrl: rabbit.url, resultBackend: null });
    let done = 0;
    app.task('frames.noop', (x: number) => {
      done++;
      return x;
    });
    await app.sendMany(Array.from({ length: N }, (_, i) => ({ name: 'frames.noop', args: [i] })));
    counts.ack = counts.ackMultiple = counts.qos = 0;
    const worker = new Worker(app, { concurrency, logLevel: 'error' });
    const t0 = performance.now();
    await worker.start();
    while (done < N) await new Promise((r) => setTimeout(r, 20));
    const ms = Math.round(performance.now() - t0);
    process.stdout.write(JSON.stringify({ concurrency, n: N, msInclStart: ms, ...counts, ackFramesPerTask: counts.ack / N, qosPerTask: counts.qos / N }) + '\n');
    await worker.stop();
    await app.close();
  }
  await probe.close();
} finally {
  await rabbit.stop();
}
