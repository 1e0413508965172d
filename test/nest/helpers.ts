/**
 * Helpers of the NestJS tests: compile the fixtures with tsc (decorator metadata)
 * for the processes a test spawns, and start/stop those processes by PID.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const REPO = fileURLToPath(new URL('../..', import.meta.url));
export const FIXTURES_BUILD = join(REPO, 'test/nest/.build');

let compiled = false;

/** `tsc -p test/nest/fixtures` once per test process; returns the output folder. */
export function compileFixtures(): string {
  if (!compiled) {
    execFileSync(process.execPath, [join(REPO, 'node_modules/typescript/bin/tsc'), '-p', join(REPO, 'test/nest/fixtures/tsconfig.json')], { cwd: REPO, stdio: 'inherit' });
    compiled = true;
  }
  if (!existsSync(join(FIXTURES_BUILD, 'worker-main.js'))) throw new Error(`tsc did not write ${FIXTURES_BUILD}/worker-main.js`);
  return FIXTURES_BUILD;
}

/** How a child ended: its exit code, or the signal that ended it (Nest re-raises SIGTERM after its shutdown hooks). */
export interface Exit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

/** A child process with its output collected. */
export interface Child {
  child: ChildProcess;
  output(): string;
  /** Resolve once the output matches `pattern` (rejects when the process exits first or after `timeoutMs`). */
  waitFor(pattern: RegExp, timeoutMs?: number): Promise<void>;
  /** SIGTERM (the process group when started detached), then SIGKILL after `graceMs`; resolves with how it ended. */
  stop(graceMs?: number): Promise<Exit>;
}

/** Spawn `command` (detached: its own process group, so `stop` reaches npx's children too). */
export function startChild(command: string, args: string[], options: { cwd?: string; env?: Record<string, string | undefined>; detached?: boolean } = {}): Child {
  const child = spawn(command, args, { cwd: options.cwd ?? REPO, env: { ...process.env, ...options.env }, stdio: ['ignore', 'pipe', 'pipe'], detached: options.detached ?? false });
  let out = '';
  child.stdout!.on('data', (d) => (out += d));
  child.stderr!.on('data', (d) => (out += d));
  // 'close', not 'exit': the output pipes close once every process holding them ended (npx, the
  // Nest CLI and the app it spawned), so the output is complete and the group is gone.
  const exited = new Promise<Exit>((resolve) => child.once('close', (code, signal) => resolve({ code, signal })));
  const target = () => (options.detached ? -child.pid! : child.pid!);
  return {
    child,
    output: () => out,
    waitFor(pattern, timeoutMs = 60_000) {
      return new Promise((resolve, reject) => {
        const check = () => {
          if (pattern.test(out)) {
            clearTimeout(timer);
            child.stdout!.off('data', check);
            child.stderr!.off('data', check);
            resolve();
          }
        };
        const timer = setTimeout(() => reject(new Error(`no ${pattern} within ${timeoutMs} ms; output:\n${out}`)), timeoutMs);
        child.stdout!.on('data', check);
        child.stderr!.on('data', check);
        void exited.then((exit) => {
          clearTimeout(timer);
          if (!pattern.test(out)) reject(new Error(`exited (${exit.code ?? exit.signal}) before ${pattern}; output:\n${out}`));
        });
        check();
      });
    },
    async stop(graceMs = 10_000) {
      if (child.exitCode !== null || child.signalCode !== null) return { code: child.exitCode, signal: child.signalCode };
      try {
        process.kill(target(), 'SIGTERM');
      } catch {
        return exited;
      }
      const timer = setTimeout(() => {
        try {
          process.kill(target(), 'SIGKILL');
        } catch {
          /* already gone */
        }
      }, graceMs);
      const exit = await exited;
      clearTimeout(timer);
      return exit;
    },
  };
}
