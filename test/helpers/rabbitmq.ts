/**
 * A private rabbitmq-server for one test file: its own node name, AMQP and
 * distribution ports, its own epmd (started by the server itself on a free
 * `ERL_EPMD_PORT`), mnesia, log and config files in a temporary folder, no
 * plugins. Stopped by PID: the whole process group we started, then our private
 * epmd with `epmd -port <ours> -kill`. Start-up takes a few seconds, so start ONE
 * per test file.
 */
import { execFile, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort, missing } from './services.ts';

/** Debian's server script (run directly: /usr/sbin/rabbitmq-server switches to the rabbitmq user). */
export const RABBITMQ_SERVER = '/usr/lib/rabbitmq/bin/rabbitmq-server';
export const RABBITMQCTL = '/usr/lib/rabbitmq/bin/rabbitmqctl';
const EPMD = '/usr/bin/epmd';

/** Why RabbitMQ cannot be used here (null when it can). Throws in CI. */
export function rabbitmqMissing(): string | null {
  return missing(RABBITMQ_SERVER, 'apt-get install rabbitmq-server');
}

/** Options of `startRabbitMQ`. */
export interface RabbitOptions {
  /** RabbitMQ's `consumer_timeout` in ms (a channel holding a delivery longer is closed). */
  consumerTimeoutMs?: number;
  /** Extra `rabbitmq.conf` lines. */
  extraConfig?: string[];
  /** `rabbit` application settings for advanced.config (Erlang terms), e.g. `{channel_tick_interval, 500}`. */
  advancedRabbit?: string[];
  /** Enable the management plugin's HTTP API on a free 127.0.0.1 port (`ctlTarget.httpPort`). */
  management?: boolean;
}

/** Node name, cookie folder and epmd port of a running node: enough for `rabbitmqctl -n` from any process. */
export interface RabbitCtlTarget {
  /** AMQP port on 127.0.0.1. */
  port: number;
  node: string;
  /** The folder holding `.erlang.cookie` (the server's HOME). */
  home: string;
  epmdPort: number;
  /** The management HTTP API's port (guest/guest), when started with `management: true`. */
  httpPort?: number;
}

/** A running private RabbitMQ. */
export interface RabbitServer {
  port: number;
  /** `amqp://guest:guest@127.0.0.1:<port>//` (vhost `/`). */
  url: string;
  /** The process group id (= the pid of the server script we started). */
  pid: number;
  /** What a `rabbitmqctl` in another process needs to reach this node (see rabbitmq-shared.ts). */
  ctlTarget: RabbitCtlTarget;
  /** Run rabbitmqctl against this node (asynchronously: an in-process worker keeps running); resolves with stdout. */
  ctl(args: string[]): Promise<string>;
  /** Stop gracefully and start again on the same ports and data (durable queues survive). */
  restart(): Promise<void>;
  /**
   * Stop the server without removing its data: SIGTERM to its group (SIGKILL after
   * a grace period), or with `hard` SIGKILL at once (a crash: only what RabbitMQ
   * fsynced — every confirmed persistent message — survives).
   */
  kill(options?: { hard?: boolean }): Promise<void>;
  /** Start again after `kill`. */
  start(): Promise<void>;
  /** Stop and remove the data. */
  stop(): Promise<void>;
}

async function portOpen(port: number): Promise<boolean> {
  return new Promise<boolean>((resolve) => {
    const s = connect(port, '127.0.0.1');
    s.once('connect', () => (s.destroy(), resolve(true)));
    s.once('error', () => resolve(false));
  });
}

/** Start a private broker. */
export async function startRabbitMQ(options: RabbitOptions = {}): Promise<RabbitServer> {
  const dir = mkdtempSync(join(tmpdir(), 'celeriac-rabbit-'));
  const [port, distPort, epmdPort] = [await freePort(), await freePort(), await freePort()];
  const httpPort = options.management ? await freePort() : undefined;
  const node = `celeriac-${process.pid}-${port}@localhost`;
  const conf = [
    `listeners.tcp.1 = 127.0.0.1:${port}`,
    'loopback_users = none',
    'log.console = false',
    'log.file.level = warning',
    ...(options.consumerTimeoutMs !== undefined ? [`consumer_timeout = ${options.consumerTimeoutMs}`] : []),
    ...(httpPort !== undefined ? ['management.tcp.ip = 127.0.0.1', `management.tcp.port = ${httpPort}`] : []),
    ...(options.extraConfig ?? []),
  ];
  writeFileSync(join(dir, 'rabbitmq.conf'), conf.join('\n') + '\n');
  const advanced = options.advancedRabbit?.length ? `[{rabbit, [${options.advancedRabbit.join(', ')}]}].\n` : '[].\n';
  writeFileSync(join(dir, 'advanced.config'), advanced);
  writeFileSync(join(dir, 'enabled_plugins'), httpPort !== undefined ? '[rabbitmq_management].\n' : '[].\n');
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    HOME: dir, // the Erlang cookie
    RABBITMQ_NODENAME: node,
    RABBITMQ_NODE_IP_ADDRESS: '127.0.0.1',
    RABBITMQ_NODE_PORT: String(port),
    RABBITMQ_DIST_PORT: String(distPort),
    ERL_EPMD_PORT: String(epmdPort),
    ERL_EPMD_ADDRESS: '127.0.0.1',
    RABBITMQ_MNESIA_BASE: join(dir, 'mnesia'),
    RABBITMQ_LOG_BASE: join(dir, 'log'),
    RABBITMQ_CONFIG_FILE: join(dir, 'rabbitmq.conf'),
    RABBITMQ_ADVANCED_CONFIG_FILE: join(dir, 'advanced.config'),
    RABBITMQ_ENABLED_PLUGINS_FILE: join(dir, 'enabled_plugins'),
    RABBITMQ_PID_FILE: join(dir, 'rabbit.pid'),
  };
  let child: ChildProcess | undefined;
  let output = '';
  // Our private epmd refuses `-kill` while our node is still registered: retry briefly.
  const killEpmd = async () => {
    for (let i = 0; i < 10; i++) {
      const r = spawnSync(EPMD, ['-port', String(epmdPort), '-kill'], { env, timeout: 5000, encoding: 'utf8' });
      if (!/not allowed/.test(`${r.stdout}${r.stderr}`)) return;
      await new Promise((res) => setTimeout(res, 300));
    }
  };
  // If the test process ends without stop() (a crash, a closed pipe), take our server down with it.
  const onExit = () => {
    if (child?.pid !== undefined) {
      try {
        process.kill(-child.pid, 'SIGKILL');
      } catch {
        /* gone */
      }
    }
    spawnSync(EPMD, ['-port', String(epmdPort), '-kill'], { env, timeout: 2000 });
  };
  process.once('exit', onExit);

  const launch = async (): Promise<void> => {
    output = '';
    const c = spawn(RABBITMQ_SERVER, [], { env, cwd: dir, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
    c.stdout!.on('data', (b: Buffer) => (output = (output + b.toString()).slice(-8000)));
    c.stderr!.on('data', (b: Buffer) => (output = (output + b.toString()).slice(-8000)));
    child = c;
    const deadline = Date.now() + 120_000;
    while (Date.now() < deadline) {
      if (c.exitCode !== null || c.signalCode !== null) throw new Error(`rabbitmq-server exited (${c.exitCode ?? c.signalCode}) before listening:\n${output}`);
      // The AMQP listener opens last in the boot sequence: once it accepts, the broker is up.
      if (await portOpen(port)) return;
      await new Promise((r) => setTimeout(r, 100));
    }
    await kill();
    await killEpmd();
    throw new Error(`rabbitmq-server did not listen on ${port} within 120 s:\n${output}`);
  };

  const kill = async (graceMs = 15_000, signal: NodeJS.Signals = 'SIGTERM'): Promise<void> => {
    const c = child;
    child = undefined;
    if (!c || c.pid === undefined || c.exitCode !== null || c.signalCode !== null) return;
    const exited = new Promise<void>((resolve) => c.once('exit', () => resolve()));
    const group = -c.pid;
    try {
      process.kill(group, signal);
    } catch {
      /* already gone */
    }
    const timer = setTimeout(() => {
      try {
        process.kill(group, 'SIGKILL');
      } catch {
        /* gone */
      }
    }, graceMs);
    await exited;
    // The Erlang VM may outlive the script for a moment: wait until its port is closed.
    const deadline = Date.now() + graceMs;
    while ((await portOpen(port)) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    clearTimeout(timer);
    try {
      process.kill(group, 'SIGKILL'); // anything left in our group
    } catch {
      /* none */
    }
  };

  try {
    await launch();
  } catch (err) {
    await kill();
    await killEpmd();
    process.off('exit', onExit);
    rmSync(dir, { recursive: true, force: true });
    throw err;
  }
  return {
    port,
    url: `amqp://guest:guest@127.0.0.1:${port}//`,
    get pid() {
      return child?.pid ?? -1;
    },
    ctlTarget: { port, node, home: dir, epmdPort, ...(httpPort !== undefined ? { httpPort } : {}) },
    ctl(args: string[]): Promise<string> {
      return new Promise((resolve, reject) => {
        execFile(RABBITMQCTL, ['-n', node, ...args], { env, encoding: 'utf8', timeout: 30_000 }, (err, stdout, stderr) => {
          if (err) reject(new Error(`rabbitmqctl ${args.join(' ')} failed: ${stderr || stdout || err.message}`));
          else resolve(stdout);
        });
      });
    },
    async restart() {
      await kill();
      await launch();
    },
    kill: (options) => kill(15_000, options?.hard ? 'SIGKILL' : 'SIGTERM'),
    start: () => launch(),
    async stop() {
      await kill();
      // The server started its own epmd (daemonised, outside our group) on our private port.
      await killEpmd();
      process.off('exit', onExit);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
