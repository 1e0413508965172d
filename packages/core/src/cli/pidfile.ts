/**
 * `--pidfile` for `celeriac worker` (what `celeriac multi` gives each node): the
 * file holds the worker's pid while it runs and is removed when it exits; a second
 * worker with the same pidfile refuses to start while the first one lives (a stale
 * file, whose process is gone, is replaced), as Celery's `--pidfile` does.
 */
import { mkdirSync, readFileSync, unlinkSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { UsageError } from './options.js';

/** The pid a pidfile holds, or null when it is missing or unreadable. */
export function readPidfile(path: string): number | null {
  try {
    const pid = Number.parseInt(readFileSync(path, 'utf8').trim(), 10);
    return Number.isInteger(pid) && pid > 0 ? pid : null;
  } catch {
    return null;
  }
}

/** True when a process with this pid exists (signal 0). */
export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Write this process's pid to `path` (refusing when a live process holds it); removed at exit. */
export function claimPidfile(path: string): void {
  const holder = readPidfile(path);
  if (holder !== null && holder !== process.pid && isAlive(holder)) {
    throw new UsageError(`Pidfile (${path}) already exists. Seems we're already running? (pid: ${holder}). Stop that worker first, or use another --pidfile.`);
  }
  mkdirSync(dirname(path), { recursive: true });
  writeFileSync(path, `${process.pid}\n`);
  process.once('exit', () => {
    if (readPidfile(path) === process.pid) {
      try {
        unlinkSync(path);
      } catch {
        // already gone
      }
    }
  });
}
