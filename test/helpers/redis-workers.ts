/**
 * The shared set-up of the worker-process tests: one redis-server (broker db 0,
 * results db 1), a raw client on the broker db, a producer app, and the worker
 * processes a file starts — all stopped (by PID) in one `after` hook.
 */
import type { ChildProcess } from 'node:child_process';
import { after, before } from 'node:test';
import { Redis } from 'ioredis';
import { createApp, type Celeriac } from '../../packages/core/src/index.ts';
import { startRedis, stopChild, type RedisServer } from './services.ts';
import { spawnWorkerProcess, type WorkerProcess, type WorkerProcessOptions } from './worker-process.ts';

/** What `useRedisWorkers` set up; `redis` and `client` are there once `before` ran. */
export interface RedisWorkers {
  readonly redis: RedisServer;
  /** A client on the broker db (0). */
  readonly client: Redis;
  /** An app configured for the broker (db 0) and result backend (db 1); register tasks on it at module level. */
  readonly producer: Celeriac;
  /** Worker processes still running; `after` stops each. */
  readonly children: Set<ChildProcess>;
  /** Broker and backend URLs for workers and CLI calls. */
  urls(): { broker: string; backend: string };
  /** Start a `celeriac worker` process on this Redis (see WorkerProcessOptions). */
  startWorker(options?: WorkerProcessOptions): Promise<WorkerProcess>;
}

/** How `after` ends the workers, and what else it stops first. */
export interface RedisWorkersOptions {
  /**
   * `term` (default): SIGCONT (a paused worker cannot exit), then SIGTERM with SIGKILL
   * after a grace period. `kill`: SIGKILL at once (a hung loop cannot run a SIGTERM handler).
   */
  stop?: 'term' | 'kill';
  /** Runs after the workers stopped and before the producer and Redis do (e.g. stop a Python peer). */
  cleanup?: () => Promise<void>;
}

/** Register `before`/`after` hooks for a file of worker-process tests; nothing starts when `skip` is set. */
export function useRedisWorkers(skip: string | null, options: RedisWorkersOptions = {}): RedisWorkers {
  let redis: RedisServer | undefined;
  let client: Redis | undefined;
  const producer = createApp('producer');
  const children = new Set<ChildProcess>();
  const started = <T>(value: T | undefined, what: string): T => {
    if (value === undefined) throw new Error(`${what} is not started: use it inside a test, after before() ran`);
    return value;
  };
  const fixture: RedisWorkers = {
    get redis() {
      return started(redis, 'redis');
    },
    get client() {
      return started(client, 'the redis client');
    },
    producer,
    children,
    urls: () => ({ broker: fixture.redis.url(0), backend: fixture.redis.url(1) }),
    startWorker: (opts) => spawnWorkerProcess(fixture.urls(), children, opts),
  };

  before(async () => {
    if (skip) return;
    redis = await startRedis();
    client = new Redis(redis.url(0));
    producer.configure({ brokerUrl: redis.url(0), resultBackend: redis.url(1) });
  });

  after(async () => {
    if (skip) return;
    for (const child of children) await stopWorker(child, options.stop ?? 'term');
    await options.cleanup?.();
    await producer.close();
    client?.disconnect();
    await redis?.stop();
  });
  return fixture;
}

async function stopWorker(child: ChildProcess, how: 'term' | 'kill'): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null || child.pid === undefined) return;
  if (how === 'kill') return killChild(child);
  process.kill(child.pid, 'SIGCONT');
  await stopChild(child);
}

/** SIGKILL a process we started, by PID, and wait for it to exit (no-op when it already has). */
export async function killChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null || child.pid === undefined) return;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  process.kill(child.pid, 'SIGKILL');
  await exited;
}
