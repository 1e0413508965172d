/**
 * One RabbitMQ node for a whole test run, one vhost per test file.
 *
 * Booting a node takes 7-60 s on a loaded machine, so scripts/run-tests.mjs starts
 * one (test/helpers/rabbitmq-holder.ts) and names a folder in
 * `CELERIAC_TEST_AMQP_SHARED`; the holder writes `node.json` there once the node
 * listens (or `error` if it could not start). `useRabbitMQ()` then gives the file a
 * fresh vhost on that node (guest has full rights on it) and deletes the vhost on
 * `stop()`, so files never see each other's queues. Vhosts are made through the
 * management HTTP API: a `rabbitmqctl` call boots an Erlang VM and took 25-50 s
 * each at load 20 (measured), longer than booting a node. Without the variable (a file
 * run alone with `node --test`) it starts a private node as before.
 *
 * Files that restart, kill or configure the broker (consumer_timeout, advanced
 * config) must keep calling `startRabbitMQ()`: the shared node's `kill`, `start`
 * and `restart` throw.
 */
import { execFile } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { randomUUID } from 'node:crypto';
import { RABBITMQCTL, startRabbitMQ, type RabbitCtlTarget, type RabbitServer } from './rabbitmq.ts';

/** Environment variable naming the folder where the run's shared node is described. */
export const SHARED_RABBIT_ENV = 'CELERIAC_TEST_AMQP_SHARED';
/** File (in that folder) holding the node's `RabbitCtlTarget` as JSON, written once it listens. */
export const SHARED_RABBIT_READY = 'node.json';
/** File (in that folder) holding why the node could not start. */
export const SHARED_RABBIT_ERROR = 'error';

/** rabbitmqctl commands that act on one vhost (they get `-p <vhost>`). */
const VHOST_SCOPED = new Set(['list_queues', 'list_exchanges', 'list_bindings', 'list_consumers', 'list_permissions', 'purge_queue', 'delete_queue']);

/** Wait (up to 180 s: the holder boots while other files already run) until the shared node is up. */
async function sharedTarget(dir: string): Promise<RabbitCtlTarget> {
  const deadline = Date.now() + 180_000;
  for (;;) {
    if (existsSync(join(dir, SHARED_RABBIT_ERROR))) throw new Error(`The run's shared RabbitMQ did not start: ${readFileSync(join(dir, SHARED_RABBIT_ERROR), 'utf8')}`);
    if (existsSync(join(dir, SHARED_RABBIT_READY))) return JSON.parse(readFileSync(join(dir, SHARED_RABBIT_READY), 'utf8')) as RabbitCtlTarget;
    if (Date.now() > deadline) throw new Error(`The run's shared RabbitMQ (${SHARED_RABBIT_ENV}=${dir}) was not up within 180 s; is scripts/run-tests.mjs still running?`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

/** One call to the node's management HTTP API as guest; throws with the status and body unless 2xx. */
async function api(target: RabbitCtlTarget, method: string, path: string, body?: object): Promise<void> {
  if (target.httpPort === undefined) throw new Error(`The shared RabbitMQ ${target.node} has no management API: start it with startRabbitMQ({ management: true }).`);
  const request = () =>
    fetch(`http://127.0.0.1:${target.httpPort}/api/${path}`, {
      method,
      headers: { authorization: `Basic ${Buffer.from('guest:guest').toString('base64')}`, 'content-type': 'application/json' },
      ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
      signal: AbortSignal.timeout(60_000),
    });
  // The HTTP listener may open a moment after the AMQP one: retry a refused connection for 60 s.
  const deadline = Date.now() + 60_000;
  let res: Response;
  for (;;) {
    try {
      res = await request();
      break;
    } catch (err) {
      if (Date.now() > deadline) throw new Error(`RabbitMQ management API ${method} /api/${path} unreachable on port ${target.httpPort}: ${String(err)}`);
      await new Promise((r) => setTimeout(r, 200));
    }
  }
  if (!res.ok) throw new Error(`RabbitMQ management API ${method} /api/${path} answered ${res.status}: ${await res.text()}`);
}

/** Run rabbitmqctl against a node started by another process. */
export function ctlAt(target: RabbitCtlTarget, args: string[]): Promise<string> {
  const env = { ...process.env, HOME: target.home, ERL_EPMD_PORT: String(target.epmdPort), ERL_EPMD_ADDRESS: '127.0.0.1' };
  return new Promise((resolve, reject) => {
    execFile(RABBITMQCTL, ['-n', target.node, ...args], { env, encoding: 'utf8', timeout: 60_000 }, (err, stdout, stderr) => {
      if (err) reject(new Error(`rabbitmqctl ${args.join(' ')} failed: ${stderr || stdout || err.message}`));
      else resolve(stdout);
    });
  });
}

/**
 * A RabbitMQ for a test file that never restarts or kills it and needs no special
 * broker config: a fresh vhost on the run's shared node, or a private node when
 * no shared one was started.
 */
export async function useRabbitMQ(): Promise<RabbitServer> {
  const dir = process.env[SHARED_RABBIT_ENV];
  if (!dir) return startRabbitMQ();
  const target = await sharedTarget(dir);
  const vhost = `t-${process.pid}-${randomUUID().slice(0, 8)}`;
  await api(target, 'PUT', `vhosts/${vhost}`, {});
  await api(target, 'PUT', `permissions/${vhost}/guest`, { configure: '.*', write: '.*', read: '.*' });
  const refuse = (what: string) => () =>
    Promise.reject(new Error(`Cannot ${what} the run's shared RabbitMQ: a test file that ${what}s the broker must start a private one with startRabbitMQ().`));
  return {
    port: target.port,
    url: `amqp://guest:guest@127.0.0.1:${target.port}/${vhost}`,
    pid: -1,
    ctlTarget: target,
    ctl: (args) => ctlAt(target, args.length > 0 && VHOST_SCOPED.has(args[0]!) ? [args[0]!, '-p', vhost, ...args.slice(1)] : args),
    restart: refuse('restart'),
    kill: refuse('kill'),
    start: refuse('start'),
    async stop() {
      await api(target, 'DELETE', `vhosts/${vhost}`);
    },
  };
}
