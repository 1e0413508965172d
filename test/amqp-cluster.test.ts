/**
 * High availability on a real RabbitMQ cluster: three private nodes on loopback
 * (test/helpers/rabbitmq-cluster.ts: own names, ports and data, one cookie,
 * joined with `rabbitmqctl join_cluster`), a quorum queue declared through
 * `taskQueues`, and Celery's failover list `amqp://n1;amqp://n2;amqp://n3`.
 *
 * - Failover: a producer publishing 500 tasks and a worker (acks late) consuming,
 *   both connected to node 1 (the first URL, where the queue's leader was
 *   declared); node 1 is SIGKILLed by PID mid-way. Both move to another node, the
 *   queue elects a new leader on the surviving majority, and every confirmed task
 *   runs (zero loss; the run reports how many ran twice).
 * - `x-delivery-limit`: a message a task keeps rejecting with requeue is delivered
 *   limit + 1 times and then dead-lettered (RabbitMQ's rule: dead-lettered once it
 *   was returned more than `x-delivery-limit` times), where a worker of the
 *   dead-letter queue runs it.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { createApp, Reject, Worker, type Celeriac } from '../packages/core/src/index.ts';
import { rabbitmqMissing } from './helpers/rabbitmq.ts';
import { startRabbitCluster, type RabbitCluster } from './helpers/rabbitmq-cluster.ts';

const skip = rabbitmqMissing();
const N = 500;
let cluster: RabbitCluster | undefined;
const apps: Celeriac[] = [];
const workers: Worker[] = [];

before(async () => {
  if (skip) return;
  cluster = await startRabbitCluster(3);
  console.log(`# 3-node cluster up and joined in ${(cluster.bootMs / 1000).toFixed(1)} s`);
});
after(async () => {
  for (const w of workers) await w.stop({ cold: true }).catch(() => undefined);
  for (const a of apps) await a.close().catch(() => undefined);
  await cluster?.stop();
});

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('RabbitMQ cluster of 3 nodes, quorum queues, failover list', { skip: skip ?? false }, () => {
  test(`node 1 SIGKILLed during ${N} publishes and consumption (acks late, quorum queue): both fail over, every confirmed task runs`, async () => {
    const c = cluster!;
    const taskQueues = [{ name: 'ha', queueArguments: { 'x-queue-type': 'quorum', 'x-delivery-limit': 10 } }];
    const settings = { brokerUrl: c.failoverUrl, resultBackend: null, taskAcksLate: true, taskQueues, taskDefaultQueue: 'ha' };
    const producer = createApp('ha-producer', settings);
    const consumerApp = createApp('ha-worker', settings);
    apps.push(producer, consumerApp);
    const runs = new Map<number, number>();
    consumerApp.task('ha.run', async (i: number) => {
      runs.set(i, (runs.get(i) ?? 0) + 1);
      await sleep(2);
    });
    producer.task('ha.run', () => undefined);
    const worker = new Worker(consumerApp, { concurrency: 4, logLevel: 'error' });
    workers.push(worker);
    await worker.start();

    // The queue lives on all three nodes, with node 1 (where it was declared) leading.
    const queues = await c.nodes[1]!.ctl(['list_queues', 'name', 'type', 'members', 'leader', '--formatter', 'json']);
    const ha = (JSON.parse(queues) as { name: string; type: string; members: string[]; leader: string }[]).find((q) => q.name === 'ha');
    assert.equal(ha?.type, 'quorum');
    assert.deepEqual([...ha!.members].sort(), c.nodes.map((n) => n.name).sort());
    assert.equal(ha!.leader, c.nodes[0]!.name);

    const confirmed = new Set<number>();
    const failed: number[] = [];
    const errors = new Map<string, number>();
    const policy = { maxRetries: 100, intervalStart: 0.2, intervalStep: 0.2, intervalMax: 1 };
    const producing = (async () => {
      for (let i = 0; i < N; i += 10) {
        await Promise.all(
          Array.from({ length: 10 }, async (_, k) => {
            try {
              await producer.sendTask('ha.run', [i + k], {}, { retryPolicy: policy });
              confirmed.add(i + k);
            } catch (err) {
              failed.push(i + k);
              const why = (err as Error).message;
              errors.set(why, (errors.get(why) ?? 0) + 1);
            }
          }),
        );
      }
    })();
    while (confirmed.size < N / 4 || runs.size === 0) await sleep(5);
    const killedAt = Date.now();
    await c.nodes[0]!.crash();
    const confirmedAtCrash = confirmed.size;
    const ranAtCrash = runs.size;
    await producing;
    const publishedAll = Date.now();

    const deadline = Date.now() + 120_000;
    const missingRuns = () => [...confirmed].filter((i) => !runs.has(i));
    while (missingRuns().length > 0 && Date.now() < deadline) await sleep(100);
    const lost = missingRuns();
    const twice = [...runs].filter(([, n]) => n > 1).length;
    const after = JSON.parse(await c.nodes[1]!.ctl(['list_queues', 'name', 'leader', 'messages', '--formatter', 'json'])) as { name: string; leader: string; messages: number }[];
    const leader = after.find((q) => q.name === 'ha')?.leader;
    console.log(
      `# cluster failover: ${confirmed.size}/${N} publishes confirmed (${confirmedAtCrash} before node 1 was killed, ${ranAtCrash} had run), ` +
        `${failed.length} failed after retries; the rest published ${((publishedAll - killedAt) / 1000).toFixed(1)} s after the kill; ` +
        `${runs.size} distinct tasks ran, ${twice} more than once, ${lost.length} confirmed tasks never ran; new leader ${leader}` + (errors.size ? `; publish errors: ${JSON.stringify([...errors])}` : ''),
    );
    assert.deepEqual(lost.slice(0, 20), [], `${lost.length} confirmed tasks never ran`);
    assert.equal(failed.length, 0, 'every publish got through on another node');
    assert.equal(confirmed.size, N);
    assert.notEqual(leader, c.nodes[0]!.name, 'a surviving node leads the queue');
    await worker.stop();
  });

  test('x-delivery-limit 2: a message rejected with requeue is delivered 3 times, then dead-lettered to its dead-letter queue', async () => {
    const c = cluster!;
    // Node 1 was killed by the previous test: the failover list skips it.
    const taskQueues = [
      {
        name: 'poison',
        queueArguments: { 'x-queue-type': 'quorum', 'x-delivery-limit': 2, 'x-dead-letter-exchange': '', 'x-dead-letter-routing-key': 'poison.dead' },
      },
      { name: 'poison.dead', queueArguments: { 'x-queue-type': 'quorum' } },
    ];
    // The dead-letter queue must exist before anything is dead-lettered to it (RabbitMQ drops
    // a message dead-lettered to a queue that does not exist): its worker declares it first.
    const dead: string[] = [];
    const deadApp = createApp('poison-dead', { brokerUrl: c.failoverUrl, resultBackend: null, taskQueues });
    apps.push(deadApp);
    deadApp.task('p.bad', (tag: string) => void dead.push(tag));
    const deadWorker = new Worker(deadApp, { concurrency: 1, queues: ['poison.dead'], logLevel: 'warn' });
    workers.push(deadWorker);
    await deadWorker.start();

    const app = createApp('poison', { brokerUrl: c.failoverUrl, resultBackend: null, taskQueues, taskAcksLate: true });
    apps.push(app);
    const deliveries: number[] = [];
    app.task('p.bad', (tag: string) => {
      deliveries.push(Date.now());
      throw new Reject(`poison ${tag}`, true);
    });
    const worker = new Worker(app, { concurrency: 1, queues: ['poison'], logLevel: 'fatal' });
    workers.push(worker);
    await worker.start();
    await app.sendTask('p.bad', ['x'], {}, { queue: 'poison' });
    // The dead-lettered message is the original task message: the dead-letter queue's worker runs it.
    const deadline = Date.now() + 60_000;
    while (dead.length === 0 && Date.now() < deadline) await sleep(50);
    await sleep(1000); // a 4th delivery, if RabbitMQ made one, would show now
    assert.equal(deliveries.length, 3, `delivered ${deliveries.length} times`);
    assert.deepEqual(dead, ['x']);
    await worker.stop();
    await deadWorker.stop();
  });
});
