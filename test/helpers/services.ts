/**
 * Real servers for tests: each test file starts its own on a free loopback port
 * and stops it by PID. Outside CI a missing binary skips the dependent tests,
 * loudly; with CI=true or CI=1 a missing binary is a failure.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** True when run by CI (`CI=true`, `CI=1`, any case): then nothing may skip. */
export const IN_CI = /^(true|1)$/i.test(process.env.CI ?? '');

/** Ask the kernel for a free loopback port. */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as { port: number };
      srv.close(() => resolve(port));
    });
  });
}

/** Why a service is unavailable, or null when it can run. Throws in CI. */
export function missing(binary: string, hint: string): string | null {
  if (existsSync(binary)) return null;
  const why = `${binary} not found (${hint}); run scripts/test-services.sh`;
  if (IN_CI) throw new Error(`CI=${process.env.CI} and ${why}`);
  console.warn(`\n*** SKIPPING: ${why} ***\n`);
  return why;
}

export const REDIS_SERVER = '/usr/bin/redis-server';
export const SYSTEM_PYTHON = '/usr/bin/python3';

/** A running redis-server. */
export interface RedisServer {
  port: number;
  url: (db?: number) => string;
  pid: number;
  stop(): Promise<void>;
}

async function waitForPort(port: number, child: ChildProcess, timeoutMs: number): Promise<void> {
  const { connect } = await import('node:net');
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`server exited with code ${child.exitCode} before listening on ${port}`);
    const ok = await new Promise<boolean>((resolve) => {
      const s = connect(port, '127.0.0.1');
      s.once('connect', () => (s.destroy(), resolve(true)));
      s.once('error', () => resolve(false));
    });
    if (ok) return;
    await new Promise((r) => setTimeout(r, 25));
  }
  throw new Error(`server did not listen on ${port} within ${timeoutMs} ms`);
}

/** Stop a child we started, by its PID: SIGTERM, then SIGKILL after a grace period. */
export async function stopChild(child: ChildProcess, graceMs = 3000): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null || child.pid === undefined) return;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  process.kill(child.pid, 'SIGTERM');
  const timer = setTimeout(() => {
    if (child.exitCode === null && child.pid !== undefined) process.kill(child.pid, 'SIGKILL');
  }, graceMs);
  await exited;
  clearTimeout(timer);
}

/** Persistence for `startRedis`. */
export interface RedisPersistence {
  /** Data directory, kept on stop so a restart on the same port finds the data. */
  dir: string;
  /** Write an append-only file (`--appendonly yes`). */
  aof: boolean;
}

/**
 * Start a redis-server on a free loopback port (or the given one, to restart).
 * Throw-away by default (no persistence, temporary dir removed on stop); with
 * `persistence`, in that dir and kept there, so a restart sees the same data.
 */
export async function startRedis(fixedPort?: number, extraArgs: string[] = [], persistence?: RedisPersistence): Promise<RedisServer> {
  const port = fixedPort ?? (await freePort());
  const dir = persistence?.dir ?? mkdtempSync(join(tmpdir(), 'celeriac-redis-'));
  const aof = persistence?.aof ? 'yes' : 'no';
  const child = spawn(REDIS_SERVER, ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', aof, '--dir', dir, ...extraArgs], {
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  await waitForPort(port, child, 10_000);
  return {
    port,
    pid: child.pid!,
    url: (db = 0) => `redis://127.0.0.1:${port}/${db}`,
    async stop() {
      await stopChild(child);
      if (!persistence) rmSync(dir, { recursive: true, force: true });
    },
  };
}
