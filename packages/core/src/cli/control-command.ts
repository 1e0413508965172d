/**
 * `celeriac inspect`, `celeriac control` and `celeriac status`: Celery's remote
 * control from the command line, answered by Python and Celeriac workers alike.
 * No reply within the timeout exits 69 (EX_UNAVAILABLE), as Celery does, so
 * `celeriac inspect ping -d worker@host` works as a liveness probe.
 */
import { appFor, type ConnectionFlags } from './load-app.js';
import { UsageError } from './options.js';
import type { ControlReplies } from '../control/control-client.js';

/** Flags of the three commands. */
export interface ControlFlags extends ConnectionFlags {
  timeout?: string;
  destination?: string;
  json?: boolean;
}

/** Exit status when no worker answered (BSD sysexits EX_UNAVAILABLE, Celery's). */
export const EX_UNAVAILABLE = 69;

/** Positional arguments of control commands, in Celery's order (`Panel.meta[...].args` / `variadic`). */
const CONTROL_ARGS: Record<string, { args?: [string, (v: string) => unknown][]; variadic?: string }> = {
  revoke: { variadic: 'task_id' },
  terminate: { args: [['signal', String]], variadic: 'task_id' },
  rate_limit: { args: [['task_name', String], ['rate_limit', String]] },
  time_limit: { args: [['task_name', String], ['soft', Number], ['hard', Number]] },
  shutdown: {},
  heartbeat: {},
  enable_events: {},
  disable_events: {},
  pool_grow: { args: [['n', Number]] },
  pool_shrink: { args: [['n', Number]] },
  autoscale: { args: [['max', Number], ['min', Number]] },
  query_task: { variadic: 'ids' },
  registered: { variadic: 'taskinfoitems' },
};

function compileArguments(method: string, rest: string[]): Record<string, unknown> {
  const meta = CONTROL_ARGS[method];
  const out: Record<string, unknown> = {};
  if (!meta) return out;
  const args = [...rest];
  for (const [name, type] of meta.args ?? []) {
    const value = args.shift();
    if (value === undefined) break;
    out[name] = type(value);
  }
  if (meta.variadic) out[meta.variadic] = args;
  else if (args.length) throw new UsageError(`Command ${method} takes no more arguments than ${(meta.args ?? []).map(([n]) => n).join(', ') || 'none'}.`);
  return out;
}

function print(replies: ControlReplies, json: boolean, showBody: boolean): void {
  if (json) {
    process.stdout.write(JSON.stringify(Object.assign({}, ...replies)) + '\n');
    return;
  }
  for (const reply of replies) {
    for (const [node, body] of Object.entries(reply)) {
      const isOk = typeof body === 'object' && body !== null && 'ok' in body;
      const isError = typeof body === 'object' && body !== null && 'error' in body;
      process.stdout.write(`->  ${node}: ${isError ? 'ERROR' : 'OK'}\n`);
      if (showBody) {
        const text = isOk ? String((body as { ok: unknown }).ok) : isError ? String((body as { error: unknown }).error) : JSON.stringify(body, null, 2);
        process.stdout.write(text.split('\n').map((l) => `        ${l}`).join('\n') + '\n');
      }
    }
  }
}

async function run(kind: 'inspect' | 'control' | 'status', method: string, rest: string[], flags: ControlFlags): Promise<void> {
  const app = await appFor(flags);
  if (!app.settings.brokerUrl || app.settings.brokerUrl.startsWith('memory://')) {
    throw new UsageError(`celeriac ${kind} has no broker (memory:// lives inside one process): pass -b redis://127.0.0.1:6379/0 or set CELERIAC_BROKER_URL.`);
  }
  const timeoutSeconds = flags.timeout === undefined ? 1 : Number(flags.timeout);
  if (!Number.isFinite(timeoutSeconds) || timeoutSeconds <= 0) throw new UsageError(`--timeout must be a positive number of seconds, got ${flags.timeout}.`);
  const destination = flags.destination?.split(',').map((d) => d.trim()).filter(Boolean);
  try {
    const replies = await app.control.broadcast(method, {
      arguments: kind === 'control' ? compileArguments(method, rest) : method === 'query_task' ? { ids: rest } : {},
      destination,
      timeout: timeoutSeconds * 1000,
      reply: true,
    });
    if (replies.length === 0) {
      process.stderr.write('Error: No nodes replied within time constraint\n');
      process.exitCode = EX_UNAVAILABLE;
      return;
    }
    print(replies, flags.json === true, kind !== 'status');
    if (kind === 'status' && !flags.json) process.stdout.write(`\n${replies.length} ${replies.length === 1 ? 'node' : 'nodes'} online.\n`);
  } finally {
    await app.close();
  }
}

/** `celeriac inspect <method> [args...]`. */
export function inspectCommand(method: string, rest: string[], flags: ControlFlags): Promise<void> {
  return run('inspect', method, rest, flags);
}

/** `celeriac control <method> [args...]`. */
export function controlCommand(method: string, rest: string[], flags: ControlFlags): Promise<void> {
  return run('control', method, rest, flags);
}

/** `celeriac status`: the workers that answer a ping. */
export function statusCommand(flags: ControlFlags): Promise<void> {
  return run('status', 'ping', [], flags);
}
