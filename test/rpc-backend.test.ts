/**
 * The rpc:// result backend over a real RabbitMQ, against Python Celery 5.2 both
 * ways: a Python producer reads what a Celeriac worker (CLI) publishes, a Celeriac
 * producer reads what a Python worker publishes — values, failures, and the
 * STARTED and RETRY states on the way; the bytes match Celery's capture (b01); and
 * what rpc cannot do fails with a clear error.
 */
import assert from 'node:assert/strict';
import { connect } from 'amqplib';
import { after, before, describe, test } from 'node:test';
import { createApp, type Celeriac, RemoteTaskError } from '../packages/core/src/index.ts';
import { rememberReplyTo } from '../packages/core/src/backends/rpc-reply-to.ts';
import { fixture } from './helpers/fixtures.ts';
import { pythonCeleryMissing, runPythonProducer, startCeleriacWorker, startPythonWorker, type InteropEnv, type PeerProcess } from './helpers/python-celery.ts';
import { rabbitmqMissing, type RabbitServer } from './helpers/rabbitmq.ts';
import { useRabbitMQ } from './helpers/rabbitmq-shared.ts';
import { missing, REDIS_SERVER, startRedis, type RedisServer } from './helpers/services.ts';

const skip = rabbitmqMissing() ?? missing(REDIS_SERVER, 'apt-get install redis-server') ?? pythonCeleryMissing();

let rabbit: RabbitServer | undefined;
let redis: RedisServer | undefined;
let env: InteropEnv & { INTEROP_TRACK_STARTED: string };
const apps: Celeriac[] = [];

before(async () => {
  if (skip) return;
  [rabbit, redis] = await Promise.all([useRabbitMQ(), startRedis()]);
  env = { INTEROP_BROKER_URL: rabbit.url, INTEROP_BACKEND_URL: 'rpc://', INTEROP_RECORD_URL: redis.url(2), INTEROP_TRACK_STARTED: '1' };
});
after(async () => {
  for (const a of apps) await a.close();
  await rabbit?.stop();
  await redis?.stop();
});

function rpcApp(): Celeriac {
  const app = createApp(`rpc-${apps.length}`, { brokerUrl: rabbit!.url, resultBackend: 'rpc://' });
  apps.push(app);
  return app;
}

/** Every distinct state an AsyncResult shows until it is ready. */
async function statesUntilReady(app: Celeriac, id: string, timeoutMs = 20_000): Promise<string[]> {
  const seen: string[] = [];
  const deadline = Date.now() + timeoutMs;
  const r = app.AsyncResult(id);
  while (Date.now() < deadline) {
    const state = await r.state;
    if (seen.at(-1) !== state) seen.push(state);
    if (state === 'SUCCESS' || state === 'FAILURE') return seen;
    await new Promise((res) => setTimeout(res, 20));
  }
  throw new Error(`not ready after ${timeoutMs} ms: ${seen.join(' → ')}`);
}

interface Outcome {
  value?: unknown;
  raised?: { type: string; str: string };
  state: string;
  states?: string[];
}

describe('rpc:// — Python producer, Celeriac worker (CLI)', { skip: skip ?? false }, () => {
  let worker: PeerProcess | undefined;
  before(async () => {
    worker = await startCeleriacWorker({ app: 'test/apps/interop-app.ts', env, concurrency: 4, hostname: 'ts@rpc' });
  });
  after(async () => worker?.stop());

  test('delay(2, 3): Python get() over rpc:// returns 5', async () => {
    const out = await runPythonProducer<Outcome>('delay_args', env);
    assert.equal(out.value, 5, `${JSON.stringify(out)}\n${worker?.output().slice(-2000)}`);
  });

  test('FAILURE: Python get() raises the TypeError', async () => {
    const out = await runPythonProducer<Outcome>('fail', env);
    assert.equal(out.state, 'FAILURE');
    assert.equal(out.raised?.type, 'TypeError');
  });

  test('RETRY then SUCCESS: Python sees the RETRY state', async () => {
    const out = await runPythonProducer<Outcome>('retry', env);
    assert.equal(out.state, 'SUCCESS', JSON.stringify(out));
    assert.ok(out.states?.includes('RETRY'), JSON.stringify(out.states));
  });

  test('STARTED (track started) then SUCCESS: Python sees STARTED', async () => {
    const out = await runPythonProducer<Outcome>('started', env);
    assert.equal(out.value, 1);
    assert.deepEqual(out.states?.filter((s) => s !== 'PENDING'), ['STARTED', 'SUCCESS']);
  });
});

describe('rpc:// — Celeriac producer, Python worker', { skip: skip ?? false }, () => {
  let pyWorker: PeerProcess | undefined;
  let app: Celeriac;
  before(async () => {
    pyWorker = await startPythonWorker({ env, hostname: 'py@rpc' });
    app = rpcApp();
  });
  after(async () => pyWorker?.stop());

  test('tasks.add(20, 22) comes back over the reply queue', async () => {
    const r = await app.sendTask<number>('tasks.add', [20, 22]);
    assert.equal(await r.get({ timeout: 15_000 }), 42);
  });

  test('FAILURE: get() throws RemoteTaskError ZeroDivisionError', async () => {
    const r = await app.sendTask('tasks.div', [1, 0]);
    await assert.rejects(r.get({ timeout: 15_000 }), (err: unknown) => err instanceof RemoteTaskError && /ZeroDivisionError/.test(`${err.excType ?? ''} ${err.message}`));
  });

  test('STARTED and RETRY states arrive before SUCCESS', async () => {
    const sleeping = await app.sendTask('tasks.sleep', [1]);
    assert.deepEqual((await statesUntilReady(app, sleeping.id)).filter((s) => s !== 'PENDING'), ['STARTED', 'SUCCESS']);
    const flaky = await app.sendTask('tasks.flaky', ['v']);
    const states = await statesUntilReady(app, flaky.id);
    assert.ok(states.includes('RETRY'), states.join(' → '));
    assert.equal(states.at(-1), 'SUCCESS');
  });
});

describe('rpc:// — wire bytes and limits', { skip: skip ?? false }, () => {
  test("a result message is Celery's: default exchange, routing key = reply_to, correlation_id, delivery_mode 1, body as fixture b01", async () => {
    const captured = fixture('amqp/b01_rpc_result_success.json') as unknown as { result_messages: { properties: Record<string, unknown>; body_text: string }[] };
    const want = captured.result_messages[0]!;
    const app = rpcApp();
    const conn = await connect(rabbit!.url);
    const ch = await conn.createChannel();
    await ch.assertQueue('capture.rpc', { durable: false, autoDelete: false });
    const id = '00000000-0000-4000-8000-000000000501';
    rememberReplyTo(id, 'capture.rpc'); // as the worker's consumer does for a task message with reply_to capture.rpc
    const backend = await app.getBackend();
    await backend.storeResult({ status: 'SUCCESS', result: 4, traceback: null, children: [], date_done: '2026-01-01T00:00:00', task_id: id });
    const msg = await ch.get('capture.rpc', { noAck: true });
    await conn.close();
    assert.ok(msg);
    assert.equal(msg.fields.exchange, '');
    assert.equal(msg.fields.routingKey, 'capture.rpc');
    assert.equal(msg.content.toString(), want.body_text);
    assert.equal(msg.properties.correlationId, want.properties.correlation_id);
    assert.equal(msg.properties.deliveryMode, want.properties.delivery_mode);
    assert.equal(msg.properties.contentType, want.properties.content_type);
    assert.equal(msg.properties.contentEncoding, want.properties.content_encoding);
    assert.deepEqual(msg.properties.headers, want.properties.application_headers);
  });

  test("reading another process's result fails naming rpc's limit and the fix", async () => {
    const app = rpcApp();
    await assert.rejects(app.AsyncResult('00000000-0000-4000-8000-00000000dead').get({ timeout: 1000 }), /did not send it.*redis:\/\//s);
  });

  test('rpc:// with a Redis broker fails naming the broker to use', async () => {
    const app = createApp('rpc-redis', { brokerUrl: redis!.url(0), resultBackend: 'rpc://' });
    apps.push(app);
    await assert.rejects(app.sendTask('tasks.add', [1, 2]), /needs an amqp:\/\/ broker/);
  });
});
