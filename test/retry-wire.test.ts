/**
 * The message a retry re-publishes, byte for byte against Celery 5.2's. The
 * original message Celery's producer sent in capture w08 (and w09b) is pushed to a
 * real Redis; a Celeriac worker runs the same task, which retries once; the
 * envelope it LPUSHes (seen with MONITOR) must equal the one Celery's worker
 * LPUSHed — same keys, same order, same values — except the fields that are
 * per-run: eta (a timestamp), the header origin (gen<pid>@<host>) and the delivery tag.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { Redis } from 'ioredis';
import { createApp, States, Worker, type TaskContext } from '../packages/core/src/index.ts';
import { fixture } from './helpers/fixtures.ts';
import { missing, REDIS_SERVER, startRedis, type RedisServer } from './helpers/services.ts';

const skip = missing(REDIS_SERVER, 'apt-get install redis-server');
let redis: RedisServer;
let client: Redis;
let monitor: Awaited<ReturnType<Redis['monitor']>>;
let worker: Worker;
const pushed: string[] = [];
const app = createApp('retrywire');

class ValueError extends Error {
  override name = 'ValueError';
}
app.task('tasks.retry_once', async function (this: TaskContext, x: number) {
  if (this.retries === 0) await this.retry({ exc: new ValueError('first attempt fails'), countdown: 1 });
  return x * 10;
});
app.task('tasks.retry_with_headers', async function (this: TaskContext) {
  if (this.retries === 0) await this.retry({ countdown: 1 });
  return { retries: this.retries, 'x-trace-id': this.headers['x-trace-id'] ?? null };
});

before(async () => {
  if (skip) return;
  redis = await startRedis();
  client = new Redis(redis.url(0));
  monitor = await client.monitor(); // a separate connection in MONITOR mode
  monitor.on('monitor', (_time: string, args: string[]) => {
    if (args[0]?.toUpperCase() === 'LPUSH' && args[1] === 'celery') pushed.push(args[2]!);
  });
  app.configure({ brokerUrl: redis.url(0), resultBackend: redis.url(1) });
  worker = new Worker(app, { concurrency: 2, logLevel: 'silent' });
  await worker.start();
});

after(async () => {
  if (skip) return;
  await worker.stop();
  await app.close();
  monitor.disconnect();
  client.disconnect();
  await redis.stop();
});

interface Command {
  db: number;
  cmd: string[];
}

/** The original (retries 0) and the retried (retries 1) envelope Celery LPUSHed in a capture. */
function capturedPair(name: string): { original: string; retried: string } {
  const lpushes = fixture<{ redis_commands: Command[] }>(`worker-redis/${name}.json`)
    .redis_commands.filter((c) => c.db === 0 && c.cmd[0] === 'LPUSH' && c.cmd[1] === 'celery')
    .map((c) => c.cmd[2]!);
  const byRetries = (n: number) => lpushes.find((raw) => JSON.parse(raw).headers.retries === n)!;
  return { original: byRetries(0), retried: byRetries(1) };
}

type Envelope = { headers: Record<string, unknown>; properties: Record<string, unknown> } & Record<string, unknown>;

/** Compare field by field; per-run fields are checked for form, not value. */
function assertSameEnvelope(ours: string, celery: string): void {
  const a = JSON.parse(ours) as Envelope;
  const b = JSON.parse(celery) as Envelope;
  assert.deepEqual(Object.keys(a), Object.keys(b), 'envelope keys and order');
  for (const key of Object.keys(b)) {
    if (key === 'headers' || key === 'properties') continue;
    assert.deepEqual(a[key], b[key], `envelope ${key}`);
  }
  assert.deepEqual(Object.keys(a.headers), Object.keys(b.headers), 'header keys and order');
  for (const [key, expected] of Object.entries(b.headers)) {
    if (key === 'eta') assert.match(String(a.headers.eta), /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{6})?\+00:00$/, 'eta: aware isoformat');
    else if (key === 'origin') assert.match(String(a.headers.origin), /^gen\d+@.+/, 'header origin: the retrying worker');
    else assert.deepEqual(a.headers[key], expected, `header ${key}`);
  }
  assert.deepEqual(Object.keys(a.properties), Object.keys(b.properties), 'property keys and order');
  for (const [key, expected] of Object.entries(b.properties)) {
    if (key === 'delivery_tag') assert.match(String(a.properties.delivery_tag), /^[0-9a-f-]{36}$/, 'delivery_tag: a fresh uuid');
    else assert.deepEqual(a.properties[key], expected, `property ${key}`);
  }
}

async function retriedBy(original: string, taskId: string): Promise<string> {
  pushed.length = 0;
  await client.lpush('celery', original);
  const result = app.AsyncResult(taskId);
  await result.get({ timeout: 10_000 });
  assert.equal(await result.state, States.SUCCESS);
  const retried = pushed.filter((raw) => JSON.parse(raw).headers.retries === 1);
  assert.equal(retried.length, 1, `one retry message, saw ${pushed.length} LPUSHes`);
  return retried[0]!;
}

test('retry message equals Celery 5.2 capture w08 (parent_id = own id when none, origin + replaced_task_nesting in properties)', { skip: skip ?? false }, async () => {
  const { original, retried } = capturedPair('w08_retry_then_success');
  const ours = await retriedBy(original, JSON.parse(original).headers.id);
  assertSameEnvelope(ours, retried);
  assert.equal(await app.AsyncResult(JSON.parse(original).headers.id).get({ timeout: 1000 }), 70);
});

test('retry message equals Celery 5.2 capture w09b (custom headers dropped)', { skip: skip ?? false }, async () => {
  const { original, retried } = capturedPair('w09b_retry_drops_custom_headers');
  assertSameEnvelope(await retriedBy(original, JSON.parse(original).headers.id), retried);
});

test('a retried sub-task keeps its original parent_id (Celery passes request.parent_id on)', { skip: skip ?? false }, async () => {
  const { original } = capturedPair('w08_retry_then_success');
  const env = JSON.parse(original) as Envelope;
  const id = '00000000-0000-4000-8000-00000000a108';
  Object.assign(env.headers, { id, parent_id: 'the-parent', root_id: 'the-root' });
  env.properties.correlation_id = id;
  env.properties.delivery_tag = crypto.randomUUID();
  const ours = JSON.parse(await retriedBy(JSON.stringify(env), id)) as Envelope;
  assert.equal(ours.headers.parent_id, 'the-parent');
  assert.equal(ours.headers.root_id, 'the-root');
});
