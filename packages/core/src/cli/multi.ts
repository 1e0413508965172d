/**
 * `celeriac multi`: start, stop and restart several named workers in the background,
 * as `celery multi` does.
 *
 * ```sh
 * celeriac multi start 3 -A ./dist/app.js -c 4 --pidfile=/var/run/celeriac/%n.pid --logfile=/var/log/celeriac/%n%I.log
 * celeriac multi start w1 w2 -A ./dist/app.js -c:1 8 -Q:w2 emails
 * celeriac multi stopwait 3 --pidfile=/var/run/celeriac/%n.pid
 * ```
 *
 * Nodes: a count `N` names them `celery1@<host>` … `celeryN@<host>` (Celery's range
 * prefix); names are used as given (`w1` → `w1@<host>`). Per-node options: `-c:1-2 8`,
 * `-Q:w2 emails`, `--loglevel:1,3=debug` (indexes from 1, ranges, lists, or names).
 * In option values `%n` is the node's short name, `%h` the node name, `%d` its host;
 * `%I` is empty (one process per node), `%i` is 0. Each node runs `celeriac worker`
 * with `-n <node> --pidfile <file>`, its output appended to its log file; the worker
 * refuses to start while a live process holds its pidfile.
 */
import { spawn } from 'node:child_process';
import { closeSync, mkdirSync, openSync, unlinkSync } from 'node:fs';
import { hostname as osHostname } from 'node:os';
import { dirname, resolve } from 'node:path';
import { UsageError } from './options.js';
import { isAlive, readPidfile } from './pidfile.js';
import { VERSION } from '../version.js';

/** One worker node of a `multi` command line. */
export interface MultiNode {
  /** `celery1@host`. */
  name: string;
  /** `celery1`. */
  shortName: string;
  pidfile: string;
  logfile: string;
  /** Arguments after `celeriac worker`. */
  argv: string[];
}

/** Parsed `multi <action> <nodes> [options]`. */
interface ParsedArgs {
  values: string[];
  options: Map<string, string | null>;
  namespaces: Map<string, Map<string, string | null>>;
}

/** Celery's NamespacedOptionParser: `-c 4`, `--opt=v`, `-c:1-2 8`, `--opt:w1=v`. */
function parseArgs(args: string[]): ParsedArgs {
  const out: ParsedArgs = { values: [], options: new Map(), namespaces: new Map() };
  const add = (raw: string, value: string | null, prefix: string) => {
    let name = raw;
    let dest = out.options;
    const colon = raw.indexOf(':');
    if (colon > 0) {
      name = raw.slice(0, colon);
      const ns = raw.slice(colon + 1);
      dest = out.namespaces.get(ns) ?? new Map();
      out.namespaces.set(ns, dest);
    }
    dest.set(prefix + name, value);
  };
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]!;
    if (arg.startsWith('--')) {
      const eq = arg.indexOf('=');
      if (eq > 0) add(arg.slice(2, eq), arg.slice(eq + 1), '--');
      else {
        const next = args[i + 1];
        const value = next !== undefined && !next.startsWith('-') ? next : null;
        if (value !== null) i++;
        add(arg.slice(2), value, '--');
      }
    } else if (arg.startsWith('-') && arg.length > 1) {
      const next = args[i + 1];
      const value = next !== undefined && !next.startsWith('-') ? next : null;
      if (value !== null) i++;
      add(arg.slice(1), value, '-');
    } else out.values.push(arg);
  }
  return out;
}

function expandRange(ns: string, ranges: boolean): string[] {
  return ns.split(',').flatMap((part) => {
    const m = ranges ? /^(\d+)-(\d+)$/.exec(part) : null;
    if (!m) return [part];
    const names: string[] = [];
    for (let n = Number(m[1]); n <= Number(m[2]); n++) names.push(String(n));
    return names;
  });
}

/** `%n` short name, `%h` node name, `%d` host; `%I` empty and `%i` 0 (one process per node). */
function expand(value: string, node: { name: string; shortName: string; host: string }): string {
  return value.replace(/%([nhdiI%])/g, (_, k: string) =>
    k === 'n' ? node.shortName : k === 'h' ? node.name : k === 'd' ? node.host : k === 'i' ? '0' : k === 'I' ? '' : '%',
  );
}

const PIDFILE_KEYS = ['--pidfile', '-p'];
const LOGFILE_KEYS = ['--logfile', '-f'];
/** `multi`'s own options, not passed to the workers. */
const OWN_KEYS = new Set([...PIDFILE_KEYS, ...LOGFILE_KEYS, '--hostname', '-n', '--prefix', '--suffix', '--range-prefix']);

/** The nodes a `multi` command line describes (everything after the action). */
export function parseNodes(args: string[], host = osHostname()): MultiNode[] {
  const p = parseArgs(args);
  if (p.values.length === 0) throw new UsageError('celeriac multi needs a node count or names, e.g. `celeriac multi start 3 -A ./app.js`.');
  const ranges = p.values.length === 1 && /^\d+$/.test(p.values[0]!);
  const nodeHost = p.options.get('--hostname') ?? p.options.get('-n') ?? host;
  const rangePrefix = p.options.get('--range-prefix') ?? 'celery';
  const names = ranges ? Array.from({ length: Number(p.values[0]) }, (_, i) => String(i + 1)) : p.values;
  // Numeric namespaces are indexes into the names; lists and ranges fan out.
  const namespaces = new Map<string, Map<string, string | null>>();
  for (const [ns, opts] of p.namespaces) {
    for (const key of ns.includes(',') || (ranges && ns.includes('-')) ? expandRange(ns, ranges) : [ns]) {
      let target = key;
      if (/^\d+$/.test(key) && !ranges) {
        const index = Number(key) - 1;
        if (index < 0 || index >= names.length) throw new UsageError(`No node at index ${key} (indexes start at 1; there are ${names.length} nodes).`);
        target = names[index]!;
      }
      const merged = namespaces.get(target) ?? new Map();
      for (const [k, v] of opts) merged.set(k, v);
      namespaces.set(target, merged);
    }
  }
  return names.map((raw) => {
    const shortName = raw.includes('@') ? raw.slice(0, raw.indexOf('@')) : `${ranges ? rangePrefix : ''}${raw}`;
    const nodeHostPart = raw.includes('@') ? raw.slice(raw.indexOf('@') + 1) : nodeHost;
    const name = `${shortName}@${nodeHostPart}`;
    const opts = new Map(p.options);
    for (const [k, v] of namespaces.get(raw) ?? namespaces.get(name) ?? []) opts.set(k, v);
    const ctx = { name, shortName, host: nodeHostPart };
    const pick = (keys: string[], fallback: string) => resolve(expand(keys.map((k) => opts.get(k)).find((v) => v) ?? fallback, ctx));
    const argv: string[] = [];
    for (const [k, v] of opts) {
      if (OWN_KEYS.has(k)) continue;
      argv.push(k);
      if (v !== null) argv.push(expand(v, ctx));
    }
    return { name, shortName, pidfile: pick(PIDFILE_KEYS, '%n.pid'), logfile: pick(LOGFILE_KEYS, '%n%I.log'), argv };
  });
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const say = (line: string) => process.stdout.write(line + '\n');

/** The `celeriac worker` command line of a node (this same CLI, with the same Node.js flags). */
function workerCommandLine(node: MultiNode): string[] {
  return [process.execPath, ...process.execArgv, process.argv[1]!, 'worker', ...node.argv, '-n', node.name, '--pidfile', node.pidfile];
}

async function startNode(node: MultiNode): Promise<boolean> {
  const running = readPidfile(node.pidfile);
  if (running !== null && isAlive(running)) {
    say(`> ${node.name}: already running (pid ${running}, ${node.pidfile}); not started`);
    return false;
  }
  mkdirSync(dirname(node.logfile), { recursive: true });
  const log = openSync(node.logfile, 'a');
  const [cmd, ...args] = workerCommandLine(node);
  const child = spawn(cmd!, args, { detached: true, stdio: ['ignore', log, log] });
  closeSync(log);
  let exited: number | null = null;
  child.on('exit', (code) => (exited = code ?? 1));
  child.unref();
  const deadline = Date.now() + 30_000;
  while (Date.now() < deadline) {
    if (exited !== null) {
      say(`> ${node.name}: FAILED (exit code ${exited}; see ${node.logfile})`);
      return false;
    }
    if (readPidfile(node.pidfile) === child.pid) {
      say(`> ${node.name}: OK (pid ${child.pid})`);
      return true;
    }
    await sleep(50);
  }
  say(`> ${node.name}: no pidfile after 30 s (see ${node.logfile})`);
  return false;
}

function signalNode(node: MultiNode, signal: NodeJS.Signals): number | null {
  const pid = readPidfile(node.pidfile);
  if (pid === null || !isAlive(pid)) {
    say(`> ${node.name}: DOWN`);
    if (pid !== null) removeFile(node.pidfile);
    return null;
  }
  process.kill(pid, signal);
  say(`> Sending ${signal.replace(/^SIG/, '')} to ${node.name} -> ${pid}`);
  return pid;
}

function removeFile(path: string): void {
  try {
    unlinkSync(path);
  } catch {
    // gone already
  }
}

async function waitGone(nodes: { node: MultiNode; pid: number }[], timeoutMs: number): Promise<boolean> {
  if (nodes.length === 0) return true;
  say(`> Waiting for ${nodes.length} ${nodes.length === 1 ? 'node' : 'nodes'} -> ${nodes.map((n) => n.pid).join(', ')}....`);
  const deadline = Date.now() + timeoutMs;
  let left = nodes;
  while (left.length > 0 && Date.now() < deadline) {
    await sleep(100);
    left = left.filter(({ node, pid }) => {
      if (isAlive(pid)) return true;
      say(`> ${node.name}: OK`);
      return false;
    });
  }
  return left.length === 0;
}

/** Run `celeriac multi <action> ...` (raw arguments after `multi`); resolves with the exit status. */
export async function multiCommand(argv: string[]): Promise<number> {
  const [action, ...rest] = argv;
  const actions = ['start', 'stop', 'stopwait', 'restart', 'kill', 'show', 'names'];
  if (!action || !actions.includes(action)) {
    throw new UsageError(`celeriac multi <${actions.join('|')}> <N | names...> [worker options]; got ${JSON.stringify(action ?? '')}.`);
  }
  const nodes = parseNodes(rest);
  switch (action) {
    case 'names':
      for (const n of nodes) say(n.name);
      return 0;
    case 'show':
      for (const n of nodes) say(workerCommandLine(n).join(' ') + ` >> ${n.logfile}`);
      return 0;
    case 'start': {
      say(`celeriac multi v${VERSION}`);
      say(`> Starting nodes...`);
      const started = await Promise.all(nodes.map(startNode));
      return started.every(Boolean) ? 0 : 1;
    }
    case 'stop':
      for (const n of nodes) signalNode(n, 'SIGTERM');
      return 0;
    case 'kill':
      for (const n of nodes) {
        if (signalNode(n, 'SIGKILL') !== null) removeFile(n.pidfile);
      }
      return 0;
    case 'stopwait':
    case 'restart': {
      const pending = nodes.flatMap((node) => {
        const pid = signalNode(node, 'SIGTERM');
        return pid === null ? [] : [{ node, pid }];
      });
      if (!(await waitGone(pending, 120_000))) {
        say('> Some nodes did not stop within 120 s.');
        return 1;
      }
      if (action === 'stopwait') return 0;
      const started = await Promise.all(nodes.map(startNode));
      return started.every(Boolean) ? 0 : 1;
    }
  }
  return 2;
}
