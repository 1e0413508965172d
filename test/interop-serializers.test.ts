/**
 * msgpack, yaml and every compression both ways with real Python Celery 5.2 on a
 * real redis-server: a Python producer's messages run on a Celeriac worker, and
 * Python reads the result Celeriac wrote with result_serializer msgpack; a Celeriac
 * producer's messages run on a Python worker, and Celeriac reads the result Python
 * wrote with result_serializer yaml. (Brotli is left out: Debian's Python has no
 * brotli module, so kombu registers no brotli codec there.)
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { pino } from 'pino';
import { createApp, Worker } from '../packages/core/src/index.ts';
import { PY_DIR, pythonCeleryMissing } from './helpers/python-celery.ts';
import { missing, REDIS_SERVER, startRedis, stopChild, SYSTEM_PYTHON, type RedisServer } from './helpers/services.ts';

const skip = missing(REDIS_SERVER, 'apt-get install redis-server') ?? pythonCeleryMissing();
const PAYLOAD = ['h\u00e9llo', 2 ** 40, 1.5, [1, null, true], { k: 'v', n: -3 }];
const CASES: [serializer: string, compression: string][] = [
  ['msgpack', 'none'],
  ['yaml', 'none'],
  ['json', 'zlib'],
  ['json', 'bzip2'],
  ['json', 'xz'],
  ['json', 'lzma'],
  ['msgpack', 'bzip2'],
  ['yaml', 'xz'],
];

let redis: RedisServer;
const pythonEnv = (resultSerializer: string): NodeJS.ProcessEnv => {
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    PYTHONPATH: PY_DIR,
    PYTHONUNBUFFERED: '1',
    PYTHONDONTWRITEBYTECODE: '1',
    INTEROP_BROKER_URL: redis.url(0),
    INTEROP_BACKEND_URL: redis.url(1),
    SER_RESULT_SERIALIZER: resultSerializer,
  };
  delete env.PYTHONHOME;
  return env;
};

before(async () => {
  if (!skip) redis = await startRedis();
});
after(async () => {
  if (!skip) await redis.stop();
});

type Seen = { case: [string, string]; value?: { args: unknown[]; kwargs: Record<string, unknown>; types: string[] }; raised?: unknown };

/** One Python process sends every case in turn (a Python start-up per case would cost seconds each). */
async function pythonProduce(cases: [string, string][]): Promise<Seen[]> {
  const child = spawn(SYSTEM_PYTHON, [join(PY_DIR, 'serializer_peer.py'), 'produce', JSON.stringify(cases)], { cwd: PY_DIR, env: pythonEnv('msgpack'), stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stdout!.on('data', (c: Buffer) => (out += c));
  child.stderr!.on('data', (c: Buffer) => (err += c));
  const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
  const code = await new Promise<number | null>((resolve) => child.once('exit', resolve));
  clearTimeout(timer);
  if (code !== 0) throw new Error(`serializer_peer.py produce exited ${code}:\n${err.slice(-3000)}`);
  return out.trim().split('\n').map((line) => JSON.parse(line) as Seen);
}

describe('Python producer → Celeriac worker (results written as msgpack, read by Python)', { skip: skip ?? false }, () => {
  const app = createApp('ser-ts-worker', { acceptContent: ['json', 'msgpack', 'yaml'], resultSerializer: 'msgpack' });
  app.task('ts.echo', function (...args: unknown[]) {
    return { args, kwargs: { ...this.kwargs }, types: args.map((a) => (Array.isArray(a) ? 'array' : typeof a)) };
  }, { acceptKwargs: true });
  let worker: Worker;
  before(async () => {
    app.configure({ brokerUrl: redis.url(0), resultBackend: redis.url(1) });
    worker = new Worker(app, { concurrency: 2, logger: pino({ level: 'silent' }) });
    await worker.start();
  });
  after(async () => {
    await worker.stop();
    await app.close();
  });
  test('every serializer and compression case, sent by Python', async () => {
    const seen = await pythonProduce(CASES);
    assert.deepEqual(seen.map((s) => s.case), CASES, 'one answer per case');
    for (const s of seen) {
      const [serializer, compression] = s.case;
      assert.equal(s.raised, undefined, `${serializer}+${compression}: ${JSON.stringify(s.raised)}`);
      assert.deepEqual(s.value!.args, PAYLOAD, `${serializer}+${compression}: Python got its arguments back`);
      assert.deepEqual(s.value!.kwargs, { tag: `${serializer}+${compression}` });
      assert.deepEqual(s.value!.types, ['string', 'number', 'number', 'array', 'object'], 'typed as JavaScript values in the task');
    }
  });
});

describe('Celeriac producer → Python worker (results written as yaml, read by Celeriac)', { skip: skip ?? false }, () => {
  const app = createApp('ser-ts-producer', { acceptContent: ['json', 'msgpack', 'yaml'], resultSerializer: 'yaml' });
  let python: ChildProcess;
  before(async () => {
    app.configure({ brokerUrl: redis.url(0), resultBackend: redis.url(1) });
    python = spawn(SYSTEM_PYTHON, ['-m', 'celery', '-A', 'serializer_peer', 'worker', '-P', 'solo', '-l', 'info', '-Q', 'py', '-n', 'py@ser', '--without-gossip', '--without-mingle', '--without-heartbeat'], {
      cwd: PY_DIR,
      env: pythonEnv('yaml'),
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let log = '';
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`Python worker not ready:\n${log}`)), 30_000);
      const onData = (c: Buffer) => {
        log += c;
        if (/\bready\.$/m.test(log)) (clearTimeout(timer), resolve());
      };
      python.stdout!.on('data', onData);
      python.stderr!.on('data', onData);
    });
  });
  after(async () => {
    await stopChild(python);
    await app.close();
  });
  for (const [serializer, compression] of CASES) {
    test(`${serializer} + ${compression}`, async () => {
      const r = await app.sendTask<{ args: unknown[]; types: string[] }>('py.echo', PAYLOAD, {}, { queue: 'py', serializer, ...(compression === 'none' ? {} : { compression }) });
      const value = await r.get({ timeout: 20_000 });
      assert.deepEqual(value.args, PAYLOAD, 'Python ran it with the values sent');
      assert.deepEqual(value.types, ['str', 'int', 'float', 'list', 'dict'], 'typed as Python values');
    });
  }
});
