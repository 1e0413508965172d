/**
 * Node processes the web-adapter tests start (an example server, a `celeriac
 * worker` run through the built bin): output captured, readiness awaited on a
 * line they print, stopped by PID (or by process group when detached).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { REPO_ROOT } from './python-celery.ts';
import { stopChild } from './services.ts';

/** The built `celeriac` launcher: it loads packages/core/dist, the copy the examples import. */
export const CELERIAC_BIN = join(REPO_ROOT, 'packages/core/bin/celeriac.js');

/** A process we started. */
export interface TrackedProcess {
  child: ChildProcess;
  output(): string;
  /** Resolve once the output matches `pattern`; reject when it exits first or after `timeoutMs`. */
  waitFor(pattern: RegExp, timeoutMs?: number): Promise<RegExpMatchArray>;
  /** SIGTERM (to the whole group when detached), SIGKILL after `graceMs`. */
  stop(graceMs?: number): Promise<void>;
}

/** Start `command args` from the repository root with `env` added. */
export function startProcess(command: string, args: string[], env: Record<string, string>, options: { detached?: boolean; cwd?: string } = {}): TrackedProcess {
  const child = spawn(command, args, { cwd: options.cwd ?? REPO_ROOT, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'], detached: options.detached ?? false });
  let out = '';
  child.stdout!.on('data', (d: Buffer) => (out += d.toString('utf8')));
  child.stderr!.on('data', (d: Buffer) => (out += d.toString('utf8')));
  const exited = () => child.exitCode !== null || child.signalCode !== null;
  return {
    child,
    output: () => out,
    async waitFor(pattern, timeoutMs = 30_000) {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const match = out.match(pattern);
        if (match) return match;
        if (exited()) throw new Error(`${command} ${args.join(' ')} exited (${child.exitCode ?? child.signalCode}) before printing ${pattern}:\n${out.slice(-4000)}`);
        if (Date.now() > deadline) throw new Error(`${command} ${args.join(' ')} did not print ${pattern} within ${timeoutMs} ms:\n${out.slice(-4000)}`);
        await new Promise((r) => setTimeout(r, 25));
      }
    },
    async stop(graceMs = 10_000) {
      if (exited() || child.pid === undefined) return;
      if (!options.detached) return stopChild(child, graceMs);
      const done = new Promise<void>((resolve) => child.once('exit', () => resolve()));
      process.kill(-child.pid, 'SIGTERM');
      const timer = setTimeout(() => {
        try {
          process.kill(-child.pid!, 'SIGKILL');
        } catch {
          // the group is gone already
        }
      }, graceMs);
      await done;
      clearTimeout(timer);
    },
  };
}

/** `celeriac worker -A <app>` through the built bin, resolved once it logged "ready.". */
export async function startBuiltWorker(app: string, urls: { broker: string; backend: string }, extraArgs: string[] = []): Promise<TrackedProcess> {
  const worker = startProcess(process.execPath, [CELERIAC_BIN, 'worker', '-A', app, '--broker', urls.broker, '--backend', urls.backend, '-l', 'info', ...extraArgs], {});
  try {
    await worker.waitFor(/ ready\./);
  } catch (err) {
    await worker.stop(2000);
    throw err;
  }
  return worker;
}
