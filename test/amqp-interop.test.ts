/**
 * Celeriac and Python Celery 5.2 over one real RabbitMQ (results on Redis), both
 * ways: a Python producer and a `celeriac worker` CLI process; a Celeriac producer
 * and a Python worker; then both workers on the same queue, 500 tasks each way,
 * every task run exactly once (counted in an execution log in Redis db 2).
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { Worker } from '../packages/core/src/index.ts';
import { app, closeRecorder, who } from './apps/interop-app.ts';
import { pythonCeleryMissing, redisClient, runPythonProducer, startCeleriacWorker, startPythonWorker, type InteropEnv, type PeerProcess } from './helpers/python-celery.ts';
import { rabbitmqMissing, type RabbitServer } from './helpers/rabbitmq.ts';
import { useRabbitMQ } from './helpers/rabbitmq-shared.ts';
import { missing, REDIS_SERVER, startRedis, type RedisServer } from './helpers/services.ts';

const skip = rabbitmqMissing() ?? missing(REDIS_SERVER, 'apt-get install redis-server') ?? pythonCeleryMissing();
const N = 500;

let rabbit: RabbitServer | undefined;
let redis: RedisServer | undefined;
let env: InteropEnv;

before(async () => {
  if (skip) return;
  [rabbit, redis] = await Promise.all([useRabbitMQ(), startRedis()]);
  env = { INTEROP_BROKER_URL: rabbit.url, INTEROP_BACKEND_URL: redis.url(1), INTEROP_RECORD_URL: redis.url(2) };
  process.env.INTEROP_RECORD_URL = env.INTEROP_RECORD_URL;
  app.configure({ brokerUrl: env.INTEROP_BROKER_URL, resultBackend: env.INTEROP_BACKEND_URL });
});

after(async () => {
  await closeRecorder();
  await app.close();
  await rabbit?.stop();
  await redis?.stop();
});

/** Ready and unacknowledged messages of a queue, as RabbitMQ counts them. */
async function queueCounts(queue = 'celery'): Promise<{ ready: number; unacked: number }> {
  const out = await rabbit!.ctl(['list_queues', '-q', '--no-table-headers', 'name', 'messages_ready', 'messages_unacknowledged']);
  for (const line of out.trim().split('\n')) {
    const [name, ready, unacked] = line.trim().split(/\s+/);
    if (name === queue) return { ready: Number(ready), unacked: Number(unacked) };
  }
  return { ready: 0, unacked: 0 };
}

async function waitQueueEmpty(queue = 'celery'): Promise<void> {
  const deadline = Date.now() + 10_000;
  let c = await queueCounts(queue);
  while ((c.ready || c.unacked) && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 200));
    c = await queueCounts(queue);
  }
  assert.deepEqual(c, { ready: 0, unacked: 0 }, `queue ${queue} not drained`);
}

interface Outcome {
  value?: unknown;
  raised?: { type: string; str: string };
  state: string;
  states?: string[];
}

describe('Python producer → Celeriac worker (CLI) over RabbitMQ', { skip: skip ?? false }, () => {
  let worker: PeerProcess | undefined;
  before(async () => {
    worker = await startCeleriacWorker({ app: 'test/apps/interop-app.ts', env, concurrency: 8, hostname: 'ts@amqp' });
  });
  after(async () => {
    await worker?.stop();
  });
  const py = (name: string) => runPythonProducer<Outcome>(name, env);

  test('delay(2, 3): Python get() returns 5', async () => {
    const out = await py('delay_args');
    assert.equal(out.value, 5, `${JSON.stringify(out)}\n${worker?.output().slice(-2000)}`);
    assert.equal(out.state, 'SUCCESS');
  });

  test('a failing task: Python get() raises TypeError with the message', async () => {
    const out = await py('fail');
    assert.equal(out.state, 'FAILURE');
    assert.equal(out.raised?.type, 'TypeError');
    assert.match(out.raised?.str ?? '', /ts\.fail rejected/);
  });

  test('retry with countdown over RabbitMQ: Python sees RETRY then SUCCESS', async () => {
    const out = await py('retry');
    assert.equal(out.state, 'SUCCESS', JSON.stringify(out));
    assert.deepEqual((out.value as { retries: number }).retries, 1);
    assert.ok(out.states?.includes('RETRY'), JSON.stringify(out.states));
  });

  test('countdown=1 from Python runs no earlier than 1 s after sending', async () => {
    const out = await runPythonProducer<Outcome & { sent: number }>('countdown', env);
    assert.equal(out.state, 'SUCCESS');
    assert.ok((out.value as number) >= out.sent + 0.99, `ran at ${out.value}, sent at ${out.sent}`);
  });
});

describe('Celeriac producer → Python worker over RabbitMQ', { skip: skip ?? false }, () => {
  let pyWorker: PeerProcess | undefined;
  before(async () => {
    pyWorker = await startPythonWorker({ env, hostname: 'py@amqp' });
  });
  after(async () => {
    await pyWorker?.stop();
  });

  test('sendTask(tasks.add) runs on Python; the result comes back through Redis', async () => {
    const r = await app.sendTask<number>('tasks.add', [20, 22]);
    assert.equal(await r.get({ timeout: 15_000 }), 42);
  });

  test('priority and countdown options travel as Celery sends them', async () => {
    const r = await app.sendTask<number>('tasks.mul', [6, 7], {}, { countdown: 1, priority: 5 });
    assert.equal(await r.get({ timeout: 15_000 }), 42);
  });

  test('a Python failure reads as RemoteTaskError ZeroDivisionError', async () => {
    const r = await app.sendTask('tasks.div', [1, 0]);
    await assert.rejects(r.get({ timeout: 15_000 }), (err: Error & { excType?: string }) => err.excType === 'ZeroDivisionError' || /ZeroDivisionError/.test(String(err)));
  });
});

describe(`Python and Celeriac workers on one RabbitMQ queue: ${N} tasks each way, each run exactly once`, { skip: skip ?? false }, () => {
  let pyWorker: PeerProcess | undefined;
  let tsWorker: Worker | undefined;
  before(async () => {
    pyWorker = await startPythonWorker({ env, hostname: 'py@amqp-mixed', pool: 'prefork', concurrency: 2 });
    tsWorker = new Worker(app, { concurrency: 4, hostname: 'ts@amqp-mixed', logLevel: 'warn' });
    await tsWorker.start();
  });
  after(async () => {
    await tsWorker?.stop();
    await pyWorker?.stop();
  });

  async function takeExecutions(): Promise<string[]> {
    const r = redisClient(env.INTEROP_RECORD_URL);
    try {
      const [[, list]] = (await r.multi().lrange('interop:executions', 0, -1).del('interop:executions').exec()) as [[null, string[]], [null, number]];
      return list;
    } finally {
      r.disconnect();
    }
  }

  function checkSplit(values: unknown[], executions: string[]): { py: number; ts: number } {
    const counts = { py: 0, ts: 0 };
    values.forEach((v, i) => {
      assert.ok(Array.isArray(v) && v[1] === i && (v[0] === 'py' || v[0] === 'ts'), `result ${i} is ${JSON.stringify(v)}`);
      counts[v[0] as 'py' | 'ts']++;
    });
    const byTask = new Map<string, number>();
    for (const e of executions) byTask.set(e.split(':')[1]!, (byTask.get(e.split(':')[1]!) ?? 0) + 1);
    const twice = [...byTask].filter(([, n]) => n > 1);
    assert.deepEqual(twice, [], 'tasks executed more than once');
    assert.equal(executions.length, N, `${executions.length} executions for ${N} tasks`);
    assert.ok(counts.py > 0 && counts.ts > 0, `both workers ran tasks: ${JSON.stringify(counts)}`);
    return counts;
  }

  test('Celeriac sends: every result once, split between both workers, queue drained', async () => {
    await takeExecutions();
    const results = await app.sendMany(Array.from({ length: N }, (_, i) => ({ name: 'mixed.who', args: [i] })));
    const values = await Promise.all(results.map((r) => r.get({ timeout: 60_000 })));
    const counts = checkSplit(values, await takeExecutions());
    console.log(`RabbitMQ split of ${N} Celeriac-sent tasks: py ${counts.py}, ts ${counts.ts}`);
    await waitQueueEmpty();
  });

  test('Python sends: Python reads every result, each task ran once', async () => {
    await takeExecutions();
    const out = await runPythonProducer<{ ids: string[]; values: Record<string, unknown>; failures: Record<string, unknown> }>('mixed', env, [String(N)], 90_000);
    assert.deepEqual(out.failures, {}, 'Python get() raised');
    const counts = checkSplit(Array.from({ length: N }, (_, i) => out.values[String(i)]), await takeExecutions());
    console.log(`RabbitMQ split of ${N} Python-sent tasks: py ${counts.py}, ts ${counts.ts}`);
    await waitQueueEmpty();
    void who;
  });
});
