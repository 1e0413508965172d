/**
 * A Redis Sentinel topology for tests, on free 127.0.0.1 ports: one master, two
 * replicas and three sentinels (quorum 2), every process started here and stopped
 * by PID. The master and replica require a password (`MASTER_PASSWORD`), the
 * sentinels another (`SENTINEL_PASSWORD`), so the tests cover the URL's password
 * (the master's) and `sentinel_kwargs` (the sentinels') separately.
 *
 * Why this size: a failover needs a replica to promote, and a majority of
 * sentinels to agree the master is down and to elect a leader; with 3 sentinels
 * and quorum 2 any one sentinel may be wrong or gone. Two replicas: when the
 * master is killed one is promoted and the other is still there, so writes that
 * wait for one replica (`waitForReplicas: 1`, the Sentinel default) go on at
 * once; with a single replica they would be refused until the dead node is back.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { connect } from 'node:net';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { freePort, IN_CI, REDIS_SERVER, stopChild } from './services.ts';

export const REDIS_SENTINEL = '/usr/bin/redis-sentinel';
export const MASTER_NAME = 'celeriacmaster';
export const MASTER_PASSWORD = 'master-secret';
export const SENTINEL_PASSWORD = 'sentinel-secret';

/** Why the topology cannot run (missing binaries), or null. Throws in CI. */
export function sentinelMissing(): string | null {
  for (const binary of [REDIS_SERVER, REDIS_SENTINEL]) {
    if (existsSync(binary)) continue;
    const why = `${binary} not found (Debian redis-server and redis-sentinel); run scripts/test-services.sh`;
    if (IN_CI) throw new Error(`CI=${process.env.CI} and ${why}`);
    console.warn(`\n*** SKIPPING: ${why} ***\n`);
    return why;
  }
  return null;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Poll `check` until it returns a value (not undefined), or throw `what` after `timeoutMs`. */
export async function until<T>(what: string, check: () => Promise<T | undefined>, timeoutMs = 30_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  while (Date.now() < deadline) {
    try {
      const value = await check();
      if (value !== undefined) return value;
    } catch (err) {
      last = err;
    }
    await sleep(50);
  }
  throw new Error(`Timed out after ${timeoutMs} ms waiting for ${what}${last ? ` (last error: ${(last as Error).message})` : ''}`);
}

/** Resolves once something accepts TCP connections on the port. */
async function waitForPort(port: number, child: ChildProcess): Promise<void> {
  await until(`port ${port}`, async () => {
    if (child.exitCode !== null) throw new Error(`process exited with code ${child.exitCode} before listening on ${port}`);
    return new Promise<true | undefined>((resolve) => {
      const s = connect(port, '127.0.0.1');
      s.once('connect', () => (s.destroy(), resolve(true)));
      s.once('error', () => resolve(undefined));
    });
  }, 15_000);
}

/** One redis-server of the topology. */
export interface RedisNode {
  port: number;
  pid(): number | undefined;
  /** Running now. */
  alive(): boolean;
  /** A client (password set) on this node, db 0. Closed by `stop`. */
  client(): Redis;
  /** SIGKILL (a crash), waiting for the exit. */
  kill(): Promise<void>;
  /** Start again on the same port (empty: no persistence), as a plain master: the sentinels make it a replica. */
  restart(): Promise<void>;
}

/** The running topology. */
export interface SentinelTopology {
  nodes: RedisNode[];
  sentinelPorts: number[];
  /** `sentinel://:<master password>@127.0.0.1:<p1>/<db>;sentinel://...` (every sentinel; password and db on each). */
  url(db?: number): string;
  /** kombu/Celery transport options: `master_name` and `sentinel_kwargs` with the sentinels' password. */
  transportOptions(): { master_name: string; sentinel_kwargs: { password: string } };
  /** The master's port as the sentinels report it (the first answering sentinel). */
  masterPort(): Promise<number>;
  /** The node that is master now. */
  master(): Promise<RedisNode>;
  /**
   * Wait until every sentinel names the same master, that node says it is master,
   * and it has `replicas` (default: every other live node) connected replicas in
   * sync that the sentinels know. Resolves with its port.
   */
  settled(replicas?: number): Promise<number>;
  /** `SENTINEL FAILOVER` (retried until a sentinel accepts it); resolves once settled on a new master. */
  failover(): Promise<{ from: number; to: number }>;
  /** SIGKILL the master; resolves once the sentinels promoted a replica (the killed node stays down: `restart` it). */
  killMaster(): Promise<{ from: number; to: number }>;
  stop(): Promise<void>;
}

/** Start master, replica and three sentinels (quorum 2, master down after 1 s). */
export async function startSentinelTopology(): Promise<SentinelTopology> {
  const dir = mkdtempSync(join(tmpdir(), 'celeriac-sentinel-'));
  const children = new Set<ChildProcess>();
  try {
    return await startIn(dir, children);
  } catch (err) {
    await Promise.all([...children].map((c) => stopChild(c)));
    rmSync(dir, { recursive: true, force: true });
    throw err;
  }
}

async function startIn(dir: string, children: Set<ChildProcess>): Promise<SentinelTopology> {
  const clients = new Set<Redis>();
  const track = (c: Redis) => (clients.add(c), c.on('error', () => undefined), c);
  const startNode = async (port: number, replicaOf?: number): Promise<ChildProcess> => {
    const args = ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir, '--dbfilename', `dump-${port}.rdb`];
    args.push('--requirepass', MASTER_PASSWORD, '--masterauth', MASTER_PASSWORD, '--repl-diskless-sync', 'yes', '--repl-diskless-sync-delay', '0');
    if (replicaOf) args.push('--replicaof', '127.0.0.1', String(replicaOf));
    const child = spawn(REDIS_SERVER, args, { stdio: ['ignore', 'ignore', 'inherit'] });
    children.add(child);
    child.once('exit', () => children.delete(child));
    await waitForPort(port, child);
    return child;
  };
  const makeNode = async (replicaOf?: number): Promise<RedisNode> => {
    const port = await freePort();
    let child = await startNode(port, replicaOf);
    return {
      port,
      pid: () => child.pid,
      alive: () => child.exitCode === null && child.signalCode === null,
      client: () => track(new Redis({ port, host: '127.0.0.1', password: MASTER_PASSWORD, maxRetriesPerRequest: 1 })),
      async kill() {
        const exited = new Promise((r) => child.once('exit', r));
        process.kill(child.pid!, 'SIGKILL');
        await exited;
      },
      async restart() {
        child = await startNode(port);
      },
    };
  };
  const master = await makeNode();
  const nodes = [master, await makeNode(master.port), await makeNode(master.port)];
  const sentinelPorts: number[] = [];
  for (let i = 0; i < 3; i++) {
    const port = await freePort();
    const conf = join(dir, `sentinel-${port}.conf`);
    writeFileSync(
      conf,
      [
        `port ${port}`,
        'bind 127.0.0.1',
        `dir ${dir}`,
        `requirepass ${SENTINEL_PASSWORD}`,
        `sentinel sentinel-pass ${SENTINEL_PASSWORD}`,
        `sentinel monitor ${MASTER_NAME} 127.0.0.1 ${master.port} 2`,
        `sentinel auth-pass ${MASTER_NAME} ${MASTER_PASSWORD}`,
        `sentinel down-after-milliseconds ${MASTER_NAME} 1000`,
        `sentinel failover-timeout ${MASTER_NAME} 4000`,
        `sentinel parallel-syncs ${MASTER_NAME} 1`,
        '',
      ].join('\n'),
    );
    const child = spawn(REDIS_SENTINEL, [conf], { stdio: ['ignore', 'ignore', 'inherit'] });
    children.add(child);
    child.once('exit', () => children.delete(child));
    await waitForPort(port, child);
    sentinelPorts.push(port);
  }
  const sentinels = sentinelPorts.map((port) => track(new Redis({ port, host: '127.0.0.1', password: SENTINEL_PASSWORD, maxRetriesPerRequest: 1 })));
  const nodeClients = new Map<number, Redis>();
  const nodeClient = (node: RedisNode) => {
    let c = nodeClients.get(node.port);
    if (!c) nodeClients.set(node.port, (c = node.client()));
    return c;
  };
  const reported = async (s: Redis) => Number(((await s.call('SENTINEL', 'get-master-addr-by-name', MASTER_NAME)) as string[])[1]);
  const topology: SentinelTopology = {
    nodes,
    sentinelPorts,
    url: (db = 0) => sentinelPorts.map((p) => `sentinel://:${MASTER_PASSWORD}@127.0.0.1:${p}/${db}`).join(';'),
    transportOptions: () => ({ master_name: MASTER_NAME, sentinel_kwargs: { password: SENTINEL_PASSWORD } }),
    async masterPort() {
      for (const s of sentinels) {
        try {
          return await reported(s);
        } catch {
          // next sentinel
        }
      }
      throw new Error('no sentinel answered');
    },
    async master() {
      const port = await topology.masterPort();
      return nodes.find((n) => n.port === port)!;
    },
    settled: (replicas = nodes.filter((n) => n.alive()).length - 1) =>
      until(`the topology to settle with ${replicas} replica(s)`, async () => {
        const ports = await Promise.all(sentinels.map(reported));
        if (!ports.every((p) => p === ports[0])) return undefined;
        const node = nodes.find((n) => n.port === ports[0]);
        if (!node?.alive()) return undefined;
        const info = await nodeClient(node).info('replication');
        if (!/^role:master/m.test(info)) return undefined;
        const online = [...info.matchAll(/^slave\d+:.*state=online/gm)].length;
        if (online < replicas) return undefined;
        // Each sentinel must also know the replica (it must have one to promote in the next failover).
        const known = await Promise.all(sentinels.map((s) => s.call('SENTINEL', 'replicas', MASTER_NAME) as Promise<string[][]>));
        const usable = known.every((list) => list.filter((r) => !/s_down|o_down|disconnected/.test(String(r[r.indexOf('flags') + 1]))).length >= replicas);
        return usable ? node.port : undefined;
      }, 60_000),
    async failover() {
      const from = await topology.settled();
      await until('a sentinel to accept SENTINEL FAILOVER', async () => {
        await sentinels[0]!.call('SENTINEL', 'FAILOVER', MASTER_NAME);
        return true;
      });
      const to = await until('the new master', async () => {
        const port = await topology.masterPort();
        return port !== from ? port : undefined;
      });
      await topology.settled();
      return { from, to };
    },
    async killMaster() {
      const from = await topology.settled();
      await nodes.find((n) => n.port === from)!.kill();
      const to = await until('the sentinels to promote a replica', async () => {
        const ports = await Promise.all(sentinels.map(reported));
        return ports.every((p) => p !== from && p === ports[0]) ? ports[0] : undefined;
      }, 60_000);
      return { from, to: to! };
    },
    async stop() {
      for (const c of clients) c.disconnect();
      await Promise.all([...children].map((c) => stopChild(c)));
      rmSync(dir, { recursive: true, force: true });
    },
  };
  await topology.settled();
  return topology;
}
