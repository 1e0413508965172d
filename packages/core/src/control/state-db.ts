/**
 * The worker's persistent state file (`--statedb`, Celery's `worker_state_db`):
 * the revoked task ids (with when each was revoked) and the logical clock, kept
 * across restarts without any broker storage, so a task revoked before a restart
 * is still discarded after it.
 *
 * Celery keeps this in a Python `shelve`; Celeriac writes its own JSON document
 * (`{"format": "celeriac-statedb/1", "clock": n, "revoked": [[id, unixSeconds], ...]}`),
 * so point Python and Celeriac workers at different files. It is written whenever
 * the revoked set changes (at most once per `flushMs`) and at shutdown, to a
 * temporary file renamed over the old one, so a crash never leaves half a file.
 */
import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { ConfigurationError } from '../errors.js';
import type { RevokedSet } from './revoked-set.js';

const FORMAT = 'celeriac-statedb/1';

/** What a state file holds. */
export interface StoredState {
  clock: number;
  /** `[task id, unix seconds revoked]`, oldest first. */
  revoked: [string, number][];
}

/**
 * Expand `%p` (node name), `%n` (its name part), `%h` (its host), `%d` (the
 * host's domain), `%i` (0) and `%I` (empty) in a `--statedb` path, as Celery's
 * `node_format` does: `--statedb=/var/run/celeriac/%n.state`.
 */
export function nodeFormat(path: string, node: string): string {
  const at = node.indexOf('@');
  const name = at === -1 ? 'celeriac' : node.slice(0, at);
  const host = at === -1 ? node : node.slice(at + 1);
  const dot = host.indexOf('.');
  const keys: Record<string, string> = { p: node, n: name, h: host, d: dot === -1 ? '' : host.slice(dot + 1), i: '0', I: '', '%': '%' };
  return path.replace(/%(.)/g, (whole, key: string) => keys[key] ?? whole);
}

/** Read a state file; an absent file is an empty state, a broken one a clear error. */
export function loadState(path: string): StoredState {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return { clock: 0, revoked: [] };
    throw new ConfigurationError(`Cannot read the worker state file ${path} (--statedb): ${(err as Error).message}`);
  }
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch {
    doc = undefined;
  }
  const d = doc as { format?: unknown; clock?: unknown; revoked?: unknown } | undefined;
  if (!d || d.format !== FORMAT || !Array.isArray(d.revoked)) {
    throw new ConfigurationError(
      `The worker state file ${path} (--statedb) is not a Celeriac state file (${FORMAT}); ` +
        'a Python Celery worker\'s shelve file cannot be shared: give this worker its own file, or remove the old one.',
    );
  }
  const revoked = d.revoked.filter((e): e is [string, number] => Array.isArray(e) && typeof e[0] === 'string' && typeof e[1] === 'number');
  return { clock: typeof d.clock === 'number' ? d.clock : 0, revoked };
}

/** Write `state` atomically (temporary file, then rename). */
export function saveState(path: string, state: StoredState): void {
  mkdirSync(dirname(path), { recursive: true });
  const tmp = `${path}.${process.pid}.tmp`;
  writeFileSync(tmp, JSON.stringify({ format: FORMAT, clock: state.clock, revoked: state.revoked }));
  renameSync(tmp, path);
}

/** Keeps one worker's state file in step with its revoked set. */
export class StateDb {
  private timer: NodeJS.Timeout | undefined;

  constructor(
    readonly path: string,
    private readonly revoked: RevokedSet,
    private readonly clock: () => number,
    private readonly onError: (err: Error) => void,
    private readonly flushMs = 200,
  ) {}

  /** Load the file into the revoked set and follow its changes from now on; returns the stored clock. */
  load(): number {
    const state = loadState(this.path);
    for (const [id, at] of state.revoked) this.revoked.add(id, at);
    this.revoked.onChange = () => this.changed();
    return state.clock;
  }

  /** The revoked set changed: write it soon. */
  changed(): void {
    this.timer ??= setTimeout(() => {
      this.timer = undefined;
      this.save();
    }, this.flushMs);
    this.timer.unref();
  }

  /** Write now (shutdown). */
  save(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    try {
      saveState(this.path, { clock: this.clock(), revoked: this.revoked.entries() });
    } catch (err) {
      this.onError(err as Error);
    }
  }

  /** Write the final state and stop the timer (shutdown). */
  close(): void {
    this.revoked.onChange = undefined;
    this.save();
  }
}
