/**
 * The worker's logs: Celery's console form on a terminal (or with --log-format
 * pretty, or workerLogFormat), coloured by level on a TTY; pino JSON lines when
 * stderr is not a terminal (or with --log-format json); message detail at -l debug.
 */
import assert from 'node:assert/strict';
import { hostname } from 'node:os';
import { after, before, test } from 'node:test';
import { createApp } from '../packages/core/src/index.ts';
import { celeryLine, celeryStream } from '../packages/core/src/log-format.ts';
import { missing, REDIS_SERVER, startRedis, type RedisServer } from './helpers/services.ts';
import { CLI_ARGS, startCli, type CliProcess } from './helpers/cli.ts';

const skip = missing(REDIS_SERVER, 'apt-get install redis-server');
let redis: RedisServer;
const producer = createApp('log-producer');

before(async () => {
  if (skip) return;
  redis = await startRedis();
  producer.configure({ brokerUrl: redis.url(0), resultBackend: redis.url(1) });
});

after(async () => {
  if (skip) return;
  await producer.close();
  await redis.stop();
});

const PREFIX = String.raw`\[\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}: `;
const line = (level: string, rest: string) => new RegExp(`^${PREFIX}${level}/MainProcess\\] ${rest}$`, 'm');
const esc = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
const HOST = esc(`celeriac@${hostname()}`);

test('celeryLine: Celery’s format, local asctime, the stack under an error, colours by level only when asked', () => {
  const time = new Date(2026, 10, 23, 16, 0, 0, 123).getTime(); // local time, as Python's asctime
  assert.equal(celeryLine({ level: 30, time, msg: 'Task tasks.add[abc] received', pid: 1, task: 'tasks.add' }, { colors: false }), '[2026-11-23 16:00:00,123: INFO/MainProcess] Task tasks.add[abc] received\n');
  assert.equal(celeryLine({ level: 30, time, msg: 'plain' }, { colors: true }), '[2026-11-23 16:00:00,123: INFO/MainProcess] plain\n', 'INFO is not coloured (Celery)');
  assert.equal(celeryLine({ level: 40, time, msg: 'careful' }, { colors: true }), '\x1b[1;33m[2026-11-23 16:00:00,123: WARNING/MainProcess] careful\x1b[0m\n');
  assert.equal(celeryLine({ level: 60, time, msg: 'down' }, { colors: true }), '\x1b[1;35m[2026-11-23 16:00:00,123: CRITICAL/MainProcess] down\x1b[0m\n');
  const err = { type: 'TypeError', message: 'bad', stack: 'TypeError: bad\n    at f (/app/tasks.ts:3:9)' };
  assert.equal(
    celeryLine({ level: 50, time, msg: 'Task t[1] raised unexpected: TypeError(\'bad\')', err }, { colors: true }),
    "\x1b[1;31m[2026-11-23 16:00:00,123: ERROR/MainProcess] Task t[1] raised unexpected: TypeError('bad')\nTypeError: bad\n    at f (/app/tasks.ts:3:9)\x1b[0m\n",
  );
  assert.equal(
    celeryLine({ level: 20, time, msg: 'Received message', pid: 1, name: 'celeriac', headers: { task: 't' } }, { colors: false }),
    '[2026-11-23 16:00:00,123: DEBUG/MainProcess] Received message {"headers":{"task":"t"}}\n',
    'DEBUG shows the record’s own fields',
  );
  const written: string[] = [];
  const stream = celeryStream({ write: (t: string) => written.push(t) }, { colors: false });
  stream.write('not json\n');
  stream.write(JSON.stringify({ level: 30, time, msg: 'ok' }) + '\n');
  assert.deepEqual(written, ['not json\n', '[2026-11-23 16:00:00,123: INFO/MainProcess] ok\n']);
});

function worker(args: string[], env: Record<string, string> = {}): CliProcess {
  return startCli(['-A', 'test/apps/log-app.ts', '-b', redis.url(0), '--result-backend', redis.url(1), 'worker', '-c', '2', ...args], env);
}

async function runTasks(w: CliProcess): Promise<{ addId: string; failId: string; retryId: string }> {
  await w.waitFor(/ ready\./);
  const add = await producer.sendTask<number>('tasks.add', [2, 2]);
  assert.equal(await add.get({ timeout: 10_000 }), 4);
  const fail = await producer.sendTask('tasks.fail', ['no good']);
  await assert.rejects(fail.get({ timeout: 10_000 }));
  const retry = await producer.sendTask('tasks.retry_once');
  assert.equal(await retry.get({ timeout: 10_000 }), 'second time');
  await w.waitFor(new RegExp(`${esc(retry.id)}\\] succeeded`));
  return { addId: add.id, failId: fail.id, retryId: retry.id };
}

test('--log-format pretty: Celery’s lines for ready, received, succeeded, raised unexpected (with the stack) and retry', { skip: skip ?? false }, async () => {
  const w = worker(['--log-format', 'pretty', '-l', 'INFO']);
  try {
    const { addId, failId, retryId } = await runTasks(w);
    const err = w.stderr();
    assert.match(err, line('INFO', `${HOST} ready\\.`));
    assert.match(err, line('INFO', `Task tasks\\.add\\[${esc(addId)}\\] received`));
    assert.match(err, line('INFO', `Task tasks\\.add\\[${esc(addId)}\\] succeeded in \\d+\\.\\d+s: 4`));
    assert.match(err, new RegExp(`^${PREFIX}ERROR/MainProcess\\] Task tasks\\.fail\\[${esc(failId)}\\] raised unexpected: TypeError\\('no good'\\)\nTypeError: no good\n +at .*log-app\\.ts:\\d+:\\d+`, 'm'));
    assert.match(err, line('INFO', `Task tasks\\.retry_once\\[${esc(retryId)}\\] retry: .*flaky.*`));
    assert.match(err, line('INFO', `Task tasks\\.retry_once\\[${esc(retryId)}\\] succeeded in \\d+\\.\\d+s: 'second time'`));
    assert.doesNotMatch(err, /^\{"level"/m, 'no JSON lines');
    assert.doesNotMatch(err, /\x1b\[/, 'no colours when stderr is not a terminal');
  } finally {
    await w.stop();
  }
});

test('stderr not a terminal and no flag: pino JSON lines, the same messages', { skip: skip ?? false }, async () => {
  const w = worker([]);
  try {
    const { addId } = await runTasks(w);
    const records = w.stderr().trim().split('\n').map((l) => JSON.parse(l) as { level: number; msg: string; id?: string; runtime?: number });
    assert.ok(records.some((r) => r.level === 30 && r.msg === `Task tasks.add[${addId}] received` && r.id === addId));
    const done = records.find((r) => r.msg.startsWith(`Task tasks.add[${addId}] succeeded in `));
    assert.ok(done && typeof done.runtime === 'number', 'runtime stays a number field');
  } finally {
    await w.stop();
  }
});

test('workerLogFormat: "pretty" in the app gives Celery’s form without a flag; --log-format json wins over it', { skip: skip ?? false }, async () => {
  const pretty = worker([], { CELERIAC_TEST_LOG_FORMAT: 'pretty' });
  try {
    await pretty.waitFor(/ ready\./);
    assert.match(pretty.stderr(), line('INFO', `${HOST} ready\\.`));
  } finally {
    await pretty.stop();
  }
  const json = worker(['--log-format', 'json'], { CELERIAC_TEST_LOG_FORMAT: 'pretty' });
  try {
    await json.waitFor(/ ready\./);
    assert.match(json.stderr(), /^\{"level":30,.*"msg":".* ready\."\}$/m);
  } finally {
    await json.stop();
  }
});

test('-l debug: each received message with its headers and delivery info', { skip: skip ?? false }, async () => {
  const w = worker(['--log-format', 'pretty', '-l', 'debug']);
  try {
    await w.waitFor(/ ready\./);
    const r = await producer.sendTask('tasks.add', [1, 2]);
    assert.equal(await r.get({ timeout: 10_000 }), 3);
    const debug = w.stderr().split('\n').find((l) => l.includes('DEBUG/MainProcess] Received message') && l.includes(r.id));
    assert.ok(debug, w.stderr());
    const detail = JSON.parse(debug.slice(debug.indexOf('{'))) as { headers: Record<string, unknown>; deliveryInfo: Record<string, unknown> };
    assert.equal(detail.headers.task, 'tasks.add');
    assert.equal(detail.headers.id, r.id);
    assert.equal(detail.headers.argsrepr, '(1, 2)');
    assert.deepEqual(
      { queue: detail.deliveryInfo.queue, exchange: detail.deliveryInfo.exchange, routingKey: detail.deliveryInfo.routingKey, redelivered: detail.deliveryInfo.redelivered },
      { queue: 'celery', exchange: '', routingKey: 'celery', redelivered: false },
    );
  } finally {
    await w.stop();
  }
});

const SCRIPT = '/usr/bin/script';

test('on a terminal (a pseudo-TTY via script -qc): Celery’s form by default, errors in red', { skip: skip ?? missing(SCRIPT, 'apt-get install bsdutils') ?? false }, async () => {
  const quote = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;
  // Node's own colour detection (tty.hasColors) says "no colours" under CI=true or a dumb/unset
  // TERM whatever the terminal; the terminal a user runs the worker in has neither.
  const terminalEnv = ['env', '-u', 'CI', '-u', 'NO_COLOR', '-u', 'FORCE_COLOR', '-u', 'NODE_DISABLE_COLORS', 'TERM=xterm-256color'];
  const command = [...terminalEnv, process.execPath, ...CLI_ARGS, '-A', 'test/apps/log-app.ts', '-b', redis.url(0), '--result-backend', redis.url(1), 'worker', '-c', '2'].map(quote).join(' ');
  const w = startCli([], {}, [SCRIPT, '-qfec', command, '/dev/null']);
  try {
    await w.waitFor(/ ready\./);
    const ok = await producer.sendTask('tasks.add', [2, 2]);
    assert.equal(await ok.get({ timeout: 10_000 }), 4);
    const fail = await producer.sendTask('tasks.fail', ['red']);
    await assert.rejects(fail.get({ timeout: 10_000 }));
    await w.waitFor(new RegExp(`${esc(fail.id)}\\] raised unexpected`));
    await w.waitFor(/\x1b\[0m/); // the end of the red block
    const out = w.stdout().replace(/\r\n/g, '\n');
    assert.match(out, line('INFO', `Task tasks\\.add\\[${esc(ok.id)}\\] succeeded in \\d+\\.\\d+s: 4`), 'INFO lines are plain');
    assert.match(out, new RegExp(`^\\x1b\\[1;31m${PREFIX}ERROR/MainProcess\\] Task tasks\\.fail\\[${esc(fail.id)}\\] raised unexpected: TypeError\\('red'\\)\nTypeError: red\n[^]*?\\x1b\\[0m$`, 'm'));
  } finally {
    await w.stop();
  }
});
