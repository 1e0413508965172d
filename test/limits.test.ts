/**
 * Limits: time limits longer than a JS timer can wait, decompression capped at
 * maxMessageSize (zip bombs), through a real worker on memory:// and unit level.
 */
import assert from 'node:assert/strict';
import { deflateSync, brotliCompressSync } from 'node:zlib';
import { after, before, mock, test } from 'node:test';
import { buildTaskMessage, createApp, decodeTaskMessage, MessageTooLarge, States, Worker } from '../packages/core/src/index.ts';
import { longTimeout, MAX_TIMER_MS } from '../packages/core/src/worker/long-timeout.ts';

const DAY_S = 86_400;
const app = createApp('limitstest', { brokerUrl: 'memory://limits' });
app.task('l.sleep', async (ms: number) => {
  await new Promise((r) => setTimeout(r, ms));
  return ms;
});

let worker: Worker;
before(async () => {
  worker = new Worker(app, { concurrency: 2, logLevel: 'silent' });
  await worker.start();
});
after(async () => {
  await worker.stop();
  await app.close();
});

test('a 30-day hard time limit does not fire at once (setTimeout holds at most 24.8 days)', async () => {
  const r = await app.sendTask('l.sleep', [50], {}, { timeLimit: 30 * DAY_S });
  assert.equal(await r.get({ timeout: 5000 }).catch((err: Error) => `${err.name}: ${err.message}`), 50);
  assert.equal(await r.state, States.SUCCESS);
});

test('a short hard time limit still fires', async () => {
  const r = await app.sendTask('l.sleep', [5000], {}, { timeLimit: 0.05 });
  await assert.rejects(r.get({ timeout: 5000 }), (err: Error) => err.name === 'TimeLimitExceeded');
});

test('longTimeout waits the whole delay, in chunks, and can be cancelled', () => {
  mock.timers.enable({ apis: ['setTimeout', 'Date'], now: 1_000_000 });
  try {
    const thirtyDays = 30 * DAY_S * 1000;
    let fired = 0;
    longTimeout(() => fired++, thirtyDays);
    mock.timers.tick(MAX_TIMER_MS);
    assert.equal(fired, 0, 'not after 24.8 days');
    mock.timers.tick(thirtyDays - MAX_TIMER_MS - 1);
    assert.equal(fired, 0, 'not 1 ms early');
    mock.timers.tick(1);
    assert.equal(fired, 1, 'at 30 days');
    const cancel = longTimeout(() => fired++, 3 * MAX_TIMER_MS);
    mock.timers.tick(MAX_TIMER_MS + 5);
    cancel();
    mock.timers.tick(3 * MAX_TIMER_MS);
    assert.equal(fired, 1, 'cancelled after re-arming');
    longTimeout(() => fired++, 10);
    mock.timers.tick(10);
    assert.equal(fired, 2, 'short delays as setTimeout');
  } finally {
    mock.timers.reset();
  }
});

function compressedMessage(body: Buffer, compression: string): ReturnType<typeof buildTaskMessage> {
  const m = buildTaskMessage({ taskName: 'l.sleep', taskId: 'bomb', args: [], kwargs: {}, origin: 'o', replyTo: 'r', serializer: 'json' });
  m.body = body;
  m.headers.compression = compression;
  return m;
}

test('decompression stops at maxBodyBytes: a zlib / brotli bomb is refused with MessageTooLarge', () => {
  const inflated = Buffer.concat([Buffer.from('[["'), Buffer.alloc(64 * 1024 * 1024, 0x61), Buffer.from('"], {}, null]')]);
  for (const [header, body] of [['application/x-gzip', deflateSync(inflated)], ['application/x-brotli', brotliCompressSync(inflated)]] as const) {
    assert.ok(body.length < 200_000, `${header}: ${body.length} compressed bytes`);
    assert.throws(() => decodeTaskMessage(compressedMessage(body, header), ['json'], { maxBodyBytes: 1024 * 1024 }), (err: Error) => {
      assert.ok(err instanceof MessageTooLarge, `${err.name}: ${err.message}`);
      assert.match(err.message, /Decompressed body .* is larger than 1048576 bytes \(maxMessageSize\); rejected before inflating the rest/);
      return true;
    });
  }
  // Under the cap it decodes.
  const small = deflateSync(Buffer.from('[[1], {}, null]'));
  assert.deepEqual(decodeTaskMessage(compressedMessage(small, 'application/x-gzip'), ['json'], { maxBodyBytes: 1024 }).args, [1]);
});
