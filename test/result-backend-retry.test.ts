/**
 * Result writes during a result-backend outage (early acks, so the result is the
 * only record of the run): the worker keeps them and retries with backoff for
 * `resultBackendRetryWindow`; past the window it drops them and logs each task id.
 * Real redis-servers; the backend's is stopped by PID and restarted on the same
 * port with the same data dir and AOF.
 *
 * The backend client fails fast (`maxRetriesPerRequest: 1`), so what keeps the
 * results is the worker's retry, not ioredis's offline queue.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { Redis } from 'ioredis';
import { pino } from 'pino';
import { createApp, Worker, type AsyncResult, type Celeriac, type TaskContext } from '../packages/core/src/index.ts';
import { missing, REDIS_SERVER, startRedis, type RedisServer } from './helpers/services.ts';

const skip = missing(REDIS_SERVER, 'apt-get install redis-server');
const FAIL_FAST = { redis: { maxRetriesPerRequest: 1, retryStrategy: () => 200 } };

async function waitFor(what: string, check: () => boolean | Promise<boolean>, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await Promise.resolve().then(check).catch(() => false))) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for: ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

interface Rig {
  app: Celeriac;
  broker: RedisServer;
  backend: RedisServer;
  dataDir: string;
  worker: Worker;
  logs: { level: number; msg: string; id?: string }[];
  runs: Map<string, number>;
  /** Read results straight from the backend's db 1. */
  stored(id: string): Promise<string | null>;
  close(): Promise<void>;
}

/**
 * A worker (c=10, early acks) on its own broker and AOF-backed result backend.
 * `work(n)` sleeps `taskMs`; with `gateFrom`, tasks n ≥ gateFrom first wait for `openGate()`.
 */
async function rig(
  name: string,
  settings: { resultBackendRetryWindow?: number },
  taskMs: number,
  gateFrom = Infinity,
): Promise<Rig & { work: (n: number) => Promise<AsyncResult<number>>; openGate: () => void }> {
  let openGate!: () => void;
  const gate = new Promise<void>((resolve) => (openGate = resolve));
  const broker = await startRedis();
  const dataDir = mkdtempSync(join(tmpdir(), 'celeriac-backend-aof-'));
  const backend = await startRedis(undefined, [], { dir: dataDir, aof: true });
  const app = createApp(name, { brokerUrl: broker.url(0), resultBackend: backend.url(1), resultBackendTransportOptions: FAIL_FAST, workerHeartbeatInterval: 0.5, ...settings });
  const runs = new Map<string, number>();
  const work = app.task(`${name}.work`, async function (this: TaskContext, n: number) {
    runs.set(this.id, (runs.get(this.id) ?? 0) + 1);
    if (n >= gateFrom) await gate;
    await new Promise((r) => setTimeout(r, taskMs));
    return n * 3;
  });
  const logs: Rig['logs'] = [];
  const logger = pino({ level: 'info' }, { write: (line: string) => void logs.push(JSON.parse(line)) });
  const worker = new Worker(app, { concurrency: 10, logger });
  await worker.start();
  // Reconnects by itself after the backend's restart (same port).
  const reader = new Redis(backend.url(1), { maxRetriesPerRequest: 1, retryStrategy: () => 100 });
  reader.on('error', () => undefined); // refused while the backend is down
  const r: Rig & { work: typeof work.delay; openGate: () => void } = {
    openGate,
    app,
    broker,
    backend,
    dataDir,
    worker,
    logs,
    runs,
    work: (n: number) => work.delay(n),
    async stored(id) {
      return reader.get(`celery-task-meta-${id}`);
    },
    async close() {
      await worker.stop();
      await app.close();
      reader.disconnect();
      await broker.stop();
      await r.backend.stop();
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
  return r;
}

describe('result backend outage', { skip: skip ?? false }, () => {
  test('a ~5 s outage mid-run: every result is stored once the backend is back, each task ran once', async () => {
    const r = await rig('outage5', {}, 10, 100); // default window: 60 s; tasks 100+ wait for the outage
    try {
      const TOTAL = 600;
      const sent: AsyncResult<number>[] = [];
      for (let i = 0; i < TOTAL; i++) sent.push(await r.work(i));
      // Mid-run: the first 100 results are stored, 500 tasks still to go (held at the gate).
      await waitFor('100 results stored', async () => r.worker.stats.succeeded >= 100, 20_000);
      assert.equal(r.worker.stats.succeeded, 100);
      const port = r.backend.port;
      await r.backend.stop(); // SIGTERM by PID; AOF flushed on shutdown
      const downAt = Date.now();
      r.openGate(); // the rest run while the backend is down
      await new Promise((res) => setTimeout(res, 5000)); // the outage itself: the scenario, not a wait for a condition
      r.backend = await startRedis(port, [], { dir: r.dataDir, aof: true });
      const downMs = Date.now() - downAt;
      let missingIds: string[] = [];
      await waitFor(`all ${TOTAL} results stored`, async () => {
        const docs = await Promise.all(sent.map((s) => r.stored(s.id)));
        missingIds = sent.filter((_, i) => docs[i] === null).map((s) => s.id);
        return missingIds.length === 0 && r.worker.stats.processed === TOTAL;
      }, 30_000).catch(() => undefined);
      assert.equal(missingIds.length, 0, `${missingIds.length} of ${TOTAL} results missing after a ${downMs} ms outage`);
      assert.ok(r.logs.some((l) => /retrying for up to 60 s/.test(l.msg)), 'the refused writes were reported');
      const docs = await Promise.all(sent.map(async (s) => JSON.parse((await r.stored(s.id))!) as { status: string; result: unknown }));
      assert.deepEqual(docs.map((d) => d.status), sent.map(() => 'SUCCESS'));
      assert.deepEqual(docs.map((d) => d.result), sent.map((_, i) => i * 3));
      assert.equal([...r.runs.values()].filter((n) => n !== 1).length, 0, 'each task ran exactly once');
      assert.equal(r.runs.size, TOTAL);
      assert.equal(r.logs.filter((l) => /^Result of task \S+ \(\w+\) dropped/.test(l.msg)).length, 0, 'nothing dropped');
      console.log(`# backend down ${downMs} ms; all ${TOTAL} results stored`);
    } finally {
      await r.close();
    }
  });

  test('a cold stop during an outage does not wait out the retry window; each unwritten result is logged by id', async () => {
    const r = await rig('outageCold', {}, 1); // default window: 60 s
    try {
      assert.equal(await (await r.work(1)).get({ timeout: 5000 }), 3);
      await r.backend.stop();
      const pending = await Promise.all([30, 31, 32].map((n) => r.work(n)));
      await waitFor('the three ran and their writes are being retried', () => r.runs.size === 4 && r.logs.some((l) => /retrying for up to 60 s/.test(l.msg)), 10_000);
      const t0 = Date.now();
      const stopped = await Promise.race([r.worker.stop({ cold: true }).then(() => true), new Promise<false>((res) => setTimeout(() => res(false), 15_000))]);
      assert.ok(stopped, 'cold stop waited for the 60 s retry window');
      const dropped = r.logs.filter((l) => /^Result of task \S+ \(SUCCESS\) dropped: the worker was stopped cold/.test(l.msg));
      assert.deepEqual(dropped.map((l) => l.id).sort(), pending.map((p) => p.id).sort());
      console.log(`# cold stop took ${Date.now() - t0} ms with the backend down`);
    } finally {
      r.backend = await startRedis(r.backend.port, [], { dir: r.dataDir, aof: true });
      await r.close();
    }
  });

  test('past resultBackendRetryWindow the results are dropped and each dropped task id is logged', async () => {
    const r = await rig('outageShort', { resultBackendRetryWindow: 1 }, 1);
    try {
      assert.equal(await (await r.work(1)).get({ timeout: 5000 }), 3);
      const port = r.backend.port;
      await r.backend.stop();
      const lost = await Promise.all([10, 11, 12, 13, 14].map((n) => r.work(n)));
      await waitFor('five drops logged', () => r.logs.filter((l) => /^Result of task \S+ \(\w+\) dropped/.test(l.msg)).length >= 5, 15_000);
      const dropLogs = r.logs.filter((l) => /^Result of task \S+ \(\w+\) dropped/.test(l.msg));
      assert.deepEqual(dropLogs.map((l) => l.id).sort(), lost.map((s) => s.id).sort(), 'one log line per dropped task, by id');
      for (const s of lost) {
        const line = dropLogs.find((l) => l.id === s.id)!;
        assert.match(line.msg, new RegExp(`Result of task ${s.id} \\(SUCCESS\\) dropped: .*resultBackendRetryWindow`));
        assert.equal(line.level, 50, 'logged as an error');
      }
      assert.equal([...r.runs.values()].filter((n) => n !== 1).length, 0, 'early acks: not run again');
      r.backend = await startRedis(port, [], { dir: r.dataDir, aof: true });
      const later = await r.work(20);
      assert.equal(await later.get({ timeout: 10_000 }), 60, 'the worker writes again once the backend is back');
      for (const s of lost) assert.equal(await r.stored(s.id), null, `${s.id} was dropped, not written late`);
    } finally {
      await r.close();
    }
  });
});
