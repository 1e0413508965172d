/**
 * A private RabbitMQ cluster for one test file: N rabbitmq-server nodes on
 * loopback, each with its own node name (`celeriac-c<pid>-<i>@localhost`), AMQP
 * and distribution ports, data and log folders, sharing one private epmd port and
 * one Erlang cookie (written to each node's HOME), joined with `rabbitmqctl
 * join_cluster` to the first node. Kept apart from test/helpers/rabbitmq.ts (the
 * shared single node): nothing here touches it. Nodes are killed and stopped by
 * the PID of the process group we started; the shared epmd last with `epmd -kill`.
 */
import { execFile, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { RABBITMQ_SERVER } from './rabbitmq.ts';
import { freePort } from './services.ts';

const RABBITMQCTL = '/usr/lib/rabbitmq/bin/rabbitmqctl';
const EPMD = '/usr/bin/epmd';

/** One node of the cluster. */
export interface ClusterNode {
  /** Erlang node name, e.g. `celeriac-c123-1@localhost`. */
  name: string;
  port: number;
  /** `amqp://guest:guest@127.0.0.1:<port>//`. */
  url: string;
  /** PID of the process group (the server script we started), -1 while down. */
  readonly pid: number;
  /** SIGKILL the node's process group (a crash; its data stays). */
  crash(): Promise<void>;
  /** Start it again after `crash` (it rejoins the cluster from its data). */
  start(): Promise<void>;
  /** rabbitmqctl against this node; resolves with stdout. */
  ctl(args: string[]): Promise<string>;
}

/** A running private cluster. */
export interface RabbitCluster {
  nodes: ClusterNode[];
  /** Celery's failover form: every node's URL joined by `;`. */
  failoverUrl: string;
  /** Milliseconds from the first spawn until every node had joined. */
  bootMs: number;
  /** Stop every node and the shared epmd, remove the data. */
  stop(): Promise<void>;
}

async function portOpen(port: number): Promise<boolean> {
  return new Promise<boolean>((resolve) => {
    const s = connect(port, '127.0.0.1');
    s.once('connect', () => (s.destroy(), resolve(true)));
    s.once('error', () => resolve(false));
  });
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Options of `startRabbitCluster`. */
export interface RabbitClusterOptions {
  /** AMQP ports of the nodes, in order (default: free ports), e.g. a port a worker is already trying. */
  ports?: number[];
}

/** Start `size` nodes and join them into one cluster (`size` 1: one private node, no joining). */
export async function startRabbitCluster(size = 3, options: RabbitClusterOptions = {}): Promise<RabbitCluster> {
  const started = Date.now();
  const root = mkdtempSync(join(tmpdir(), 'celeriac-rabbit-cluster-'));
  const epmdPort = await freePort();
  const cookie = randomBytes(16).toString('hex').toUpperCase();
  const children: (ChildProcess | undefined)[] = [];
  const baseEnv = { ...process.env, ERL_EPMD_PORT: String(epmdPort), ERL_EPMD_ADDRESS: '127.0.0.1' };
  const killEpmd = async () => {
    for (let i = 0; i < 10; i++) {
      const r = spawnSync(EPMD, ['-port', String(epmdPort), '-kill'], { env: baseEnv, timeout: 5000, encoding: 'utf8' });
      if (!/not allowed/.test(`${r.stdout}${r.stderr}`)) return;
      await sleep(300);
    }
  };
  const onExit = () => {
    for (const c of children) {
      if (c?.pid !== undefined) {
        try {
          process.kill(-c.pid, 'SIGKILL');
        } catch {
          /* gone */
        }
      }
    }
    spawnSync(EPMD, ['-port', String(epmdPort), '-kill'], { env: baseEnv, timeout: 2000 });
  };
  process.once('exit', onExit);

  const nodes: ClusterNode[] = [];
  const envs: NodeJS.ProcessEnv[] = [];
  for (let i = 0; i < size; i++) {
    const dir = join(root, `n${i + 1}`);
    mkdirSync(dir);
    const [port, distPort] = [options.ports?.[i] ?? (await freePort()), await freePort()];
    const name = `celeriac-c${process.pid}-${i + 1}@localhost`;
    writeFileSync(join(dir, '.erlang.cookie'), cookie);
    chmodSync(join(dir, '.erlang.cookie'), 0o400);
    writeFileSync(
      join(dir, 'rabbitmq.conf'),
      [`listeners.tcp.1 = 127.0.0.1:${port}`, 'loopback_users = none', 'log.console = false', 'log.file.level = warning'].join('\n') + '\n',
    );
    writeFileSync(join(dir, 'enabled_plugins'), '[].\n');
    const env: NodeJS.ProcessEnv = {
      ...baseEnv,
      HOME: dir,
      RABBITMQ_NODENAME: name,
      RABBITMQ_NODE_IP_ADDRESS: '127.0.0.1',
      RABBITMQ_NODE_PORT: String(port),
      RABBITMQ_DIST_PORT: String(distPort),
      RABBITMQ_MNESIA_BASE: join(dir, 'mnesia'),
      RABBITMQ_LOG_BASE: join(dir, 'log'),
      RABBITMQ_CONFIG_FILE: join(dir, 'rabbitmq.conf'),
      RABBITMQ_ENABLED_PLUGINS_FILE: join(dir, 'enabled_plugins'),
      RABBITMQ_PID_FILE: join(dir, 'rabbit.pid'),
    };
    envs.push(env);
    let output = '';
    const launch = async (): Promise<void> => {
      output = '';
      const c = spawn(RABBITMQ_SERVER, [], { env, cwd: dir, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
      c.stdout!.on('data', (b: Buffer) => (output = (output + b.toString()).slice(-8000)));
      c.stderr!.on('data', (b: Buffer) => (output = (output + b.toString()).slice(-8000)));
      children[i] = c;
      const deadline = Date.now() + 180_000;
      while (Date.now() < deadline) {
        if (c.exitCode !== null || c.signalCode !== null) throw new Error(`rabbitmq-server ${name} exited (${c.exitCode ?? c.signalCode}) before listening:\n${output}`);
        if (await portOpen(port)) return;
        await sleep(100);
      }
      throw new Error(`rabbitmq-server ${name} did not listen on ${port} within 180 s:\n${output}`);
    };
    const kill = async (signal: NodeJS.Signals): Promise<void> => {
      const c = children[i];
      children[i] = undefined;
      if (!c || c.pid === undefined || c.exitCode !== null || c.signalCode !== null) return;
      const exited = new Promise<void>((resolve) => c.once('exit', () => resolve()));
      try {
        process.kill(-c.pid, signal);
      } catch {
        /* gone */
      }
      const timer = setTimeout(() => {
        try {
          process.kill(-c.pid!, 'SIGKILL');
        } catch {
          /* gone */
        }
      }, 15_000);
      await exited;
      const deadline = Date.now() + 15_000;
      while ((await portOpen(port)) && Date.now() < deadline) await sleep(50);
      clearTimeout(timer);
      try {
        process.kill(-c.pid, 'SIGKILL');
      } catch {
        /* none left */
      }
    };
    const ctl = (args: string[]): Promise<string> =>
      new Promise((resolve, reject) => {
        execFile(RABBITMQCTL, ['-n', name, ...args], { env, encoding: 'utf8', timeout: 120_000 }, (err, stdout, stderr) => {
          if (err) reject(new Error(`rabbitmqctl -n ${name} ${args.join(' ')} failed: ${stderr || stdout || err.message}`));
          else resolve(stdout);
        });
      });
    nodes.push({
      name,
      port,
      url: `amqp://guest:guest@127.0.0.1:${port}//`,
      get pid() {
        return children[i]?.pid ?? -1;
      },
      crash: () => kill('SIGKILL'),
      start: launch,
      ctl,
      // kept for stop()
      ...{ stopGracefully: () => kill('SIGTERM') },
    } as ClusterNode & { stopGracefully(): Promise<void> });
  }

  const stop = async () => {
    await Promise.all(nodes.map((n) => (n as ClusterNode & { stopGracefully(): Promise<void> }).stopGracefully()));
    await killEpmd();
    process.off('exit', onExit);
    rmSync(root, { recursive: true, force: true });
  };
  try {
    // The first node starts the shared epmd; the others find it running.
    await nodes[0]!.start();
    await Promise.all(nodes.slice(1).map((n) => n.start()));
    for (const n of nodes.slice(1)) {
      await n.ctl(['stop_app']);
      await n.ctl(['join_cluster', nodes[0]!.name]);
      await n.ctl(['start_app']);
    }
    const status = await nodes[0]!.ctl(['cluster_status', '--formatter', 'json']);
    const running = (JSON.parse(status) as { running_nodes?: string[] }).running_nodes ?? [];
    if (running.length !== size) throw new Error(`cluster formed with ${running.length} running nodes, expected ${size}: ${status}`);
  } catch (err) {
    await stop();
    throw err;
  }
  return { nodes, failoverUrl: nodes.map((n) => n.url).join(';'), bootMs: Date.now() - started, stop };
}
