/**
 * Run the `celeriac` command line in a child process (from source, through tsx),
 * for the CLI and log-format tests.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { stopChild } from './services.ts';

export const CLI_ARGS = ['--import', 'tsx', 'packages/core/src/cli/main.ts'];

/** The environment for a CLI child: this process's, minus any broker/backend URLs, plus `extra`. */
export function cliEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env = { ...process.env };
  for (const key of ['CELERIAC_BROKER_URL', 'CELERY_BROKER_URL', 'CELERIAC_RESULT_BACKEND', 'CELERY_RESULT_BACKEND']) delete env[key];
  return { ...env, ...extra };
}

/** What a finished CLI run printed. */
export interface CliRun {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Run `celeriac <args>` to completion (killed by PID after `timeoutMs`). */
export async function runCli(args: string[], extraEnv: Record<string, string> = {}, timeoutMs = 30_000): Promise<CliRun> {
  const child = spawn(process.execPath, [...CLI_ARGS, ...args], { env: cliEnv(extraEnv), stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString('utf8')));
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString('utf8')));
  const timer = setTimeout(() => child.pid !== undefined && child.exitCode === null && process.kill(child.pid, 'SIGKILL'), timeoutMs);
  const code = await new Promise<number | null>((resolve) => child.once('exit', resolve));
  clearTimeout(timer);
  return { code, stdout, stderr };
}

/** A long-running CLI process (a worker) whose output is collected as it comes. */
export interface CliProcess {
  child: ChildProcess;
  stdout: () => string;
  stderr: () => string;
  /** Resolves once stdout+stderr match `pattern`; rejects on exit or after `timeoutMs`. */
  waitFor(pattern: RegExp, timeoutMs?: number): Promise<void>;
  /** SIGTERM (then SIGKILL after a grace period) and wait for the exit. */
  stop(): Promise<void>;
}

/** Start `command args...` (default: node + the CLI) and collect its output. */
export function startCli(args: string[], extraEnv: Record<string, string> = {}, command: string[] = [process.execPath, ...CLI_ARGS]): CliProcess {
  const child = spawn(command[0]!, [...command.slice(1), ...args], { env: cliEnv(extraEnv), stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  const listeners = new Set<() => void>();
  child.stdout!.on('data', (d: Buffer) => ((out += d.toString('utf8')), listeners.forEach((l) => l())));
  child.stderr!.on('data', (d: Buffer) => ((err += d.toString('utf8')), listeners.forEach((l) => l())));
  return {
    child,
    stdout: () => out,
    stderr: () => err,
    waitFor(pattern, timeoutMs = 30_000) {
      return new Promise((resolve, reject) => {
        const done = (error?: Error) => {
          listeners.delete(check);
          clearTimeout(timer);
          child.off('exit', onExit);
          if (error) reject(error);
          else resolve();
        };
        const check = () => pattern.test(out + err) && done();
        const onExit = () => done(new Error(`exited (${child.exitCode ?? child.signalCode}) before printing ${pattern}:\n${out}\n${err}`));
        const timer = setTimeout(() => done(new Error(`no ${pattern} within ${timeoutMs} ms:\n${out}\n${err}`)), timeoutMs);
        listeners.add(check);
        child.once('exit', onExit);
        check();
        if (listeners.has(check) && (child.exitCode !== null || child.signalCode !== null)) onExit();
      });
    },
    stop: () => stopChild(child, 5000),
  };
}
