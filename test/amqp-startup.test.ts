/**
 * A `celeriac worker` started while RabbitMQ is down says so as Celery does
 * (`Cannot connect to amqp://guest:****@...: Connection refused. Trying again in
 * 2.00 seconds... (1/100)`), with the password masked, and starts consuming
 * once RabbitMQ comes up on that port; with a failover list it moves to the next
 * URL (`Will retry using next failover.`); past `brokerConnectionMaxRetries` it
 * exits non-zero with the reason; a wrong password is not retried.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { createApp } from '../packages/core/src/index.ts';
import { rabbitmqMissing } from './helpers/rabbitmq.ts';
import { startRabbitCluster, type RabbitCluster } from './helpers/rabbitmq-cluster.ts';
import { freePort, stopChild } from './helpers/services.ts';

const skip = rabbitmqMissing();
const CLI = ['--import', 'tsx', 'packages/core/src/cli/main.ts'];
const children = new Set<ChildProcess>();
let rabbit: RabbitCluster | undefined;
const dir = mkdtempSync(join(tmpdir(), 'celeriac-amqp-startup-'));

after(async () => {
  for (const child of children) await stopChild(child, 1000);
  await rabbit?.stop();
  rmSync(dir, { recursive: true, force: true });
});

interface RunningWorker {
  child: ChildProcess;
  output(): string;
  exited: Promise<number | null>;
}

function spawnWorker(broker: string, env: Record<string, string> = {}): RunningWorker {
  const args = [...CLI, 'worker', '-A', 'test/apps/worker-app.ts', '--broker', broker, '-c', '2', '-l', 'info', '--without-mingle'];
  const child = spawn(process.execPath, args, { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  children.add(child);
  let out = '';
  child.stdout!.on('data', (d) => (out += d));
  child.stderr!.on('data', (d) => (out += d));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => (children.delete(child), resolve(code))));
  return { child, output: () => out, exited };
}

async function until(what: string, check: () => boolean, timeoutMs: number, output: () => string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`${what}: not within ${timeoutMs} ms\n--- output ---\n${output()}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

test('RabbitMQ down at start-up: Celery\'s retry lines with the password masked, then consuming once RabbitMQ is up on that port', { skip: skip ?? false }, async () => {
  const port = await freePort();
  const url = `amqp://guest:guest@127.0.0.1:${port}//`;
  const runlog = join(dir, 'runs.log');
  const w = spawnWorker(url, { CELERIAC_TEST_RUNLOG: runlog });
  const line = `Cannot connect to amqp://guest:****@127.0.0.1:${port}//: Connection refused. Trying again in 2.00 seconds... (1/100)`;
  await until('first retry line', () => w.output().includes(line), 30_000, w.output);
  await until('second retry line', () => w.output().includes('Trying again in 4.00 seconds... (2/100)'), 30_000, w.output);
  assert.ok(!w.output().includes(' ready.'), 'ready. before connecting');
  assert.ok(!w.output().includes(':guest@'), 'the password is printed');
  rabbit = await startRabbitCluster(1, { ports: [port] });
  await until('ready.', () => w.output().includes(' ready.'), 60_000, w.output);
  const producer = createApp('startup-producer', { brokerUrl: url, resultBackend: null });
  try {
    await producer.sendTask('tasks.slow', [0, 'after-start']);
  } finally {
    await producer.close();
  }
  await until('task ran', () => readFileSync(runlog, { encoding: 'utf8', flag: 'a+' }).includes('after-start'), 30_000, w.output);
  w.child.kill('SIGTERM');
  assert.equal(await w.exited, 0, w.output());
});

test('a wrong password is reported at once, not retried, exits non-zero, and is never printed', { skip: skip ?? false }, async () => {
  rabbit ??= await startRabbitCluster(1);
  const port = rabbit.nodes[0]!.port;
  const w = spawnWorker(`amqp://guest:wr0ngPW@127.0.0.1:${port}//`);
  const code = await w.exited;
  const out = w.output();
  assert.notEqual(code, 0, out);
  assert.match(out, new RegExp(`Cannot connect to amqp://guest:\\*\\*\\*\\*@127\\.0\\.0\\.1:${port}//: .*ACCESS.REFUSED.*Check the user name and password`));
  assert.doesNotMatch(out, /Trying again/);
  assert.ok(!out.includes('wr0ngPW'), `the password leaked:\n${out}`);
});

test('failover list, nothing up: "Will retry using next failover.", then past brokerConnectionMaxRetries Celery\'s exit', async () => {
  const [a, b] = [await freePort(), await freePort()];
  const w = spawnWorker(`amqp://guest:guest@127.0.0.1:${a}//;amqp://guest:guest@127.0.0.1:${b}//`, { CELERIAC_TEST_MAX_RETRIES: '3' });
  const code = await w.exited;
  const out = w.output();
  assert.notEqual(code, 0, out);
  // kombu counts every failed attempt: a (next failover), b (wait 2 s), a (next failover), b → gives up.
  // The retry lines are log lines on stdout; the final error goes to stderr (the two streams may interleave either way).
  const lines = out.split('\n').filter((l) => l.includes('Cannot connect to') && !l.startsWith('celeriac: error'));
  assert.match(lines[0]!, new RegExp(`Cannot connect to amqp://guest:\\*\\*\\*\\*@127\\.0\\.0\\.1:${a}//: Connection refused\\. Will retry using next failover\\.`));
  assert.match(lines[1]!, new RegExp(`Cannot connect to amqp://guest:\\*\\*\\*\\*@127\\.0\\.0\\.1:${b}//: Connection refused\\. Trying again in 2\\.00 seconds\\.\\.\\. \\(1/3\\)`));
  assert.match(lines[2]!, new RegExp(`:${a}//: Connection refused\\. Will retry using next failover\\.`));
  assert.equal(lines.length, 3, lines.join('\n'));
  assert.match(out, new RegExp(`Cannot connect to amqp://guest:\\*\\*\\*\\*@127\\.0\\.0\\.1:${b}//: Connection refused\\. Gave up after 3 retries \\(brokerConnectionMaxRetries\\)`));
  assert.ok(!out.includes(' ready.'), out);
});
