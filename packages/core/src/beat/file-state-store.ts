/**
 * Last runs in a JSON file (Celery keeps a shelve file, `celerybeat-schedule`; a
 * different name and format here, so the two never clobber each other). Written
 * after every run through a temporary file and a rename, so a crash leaves the old
 * file or the new one, never half of one. One beat per file: there is no lock.
 * If the app's time zone changed since the file was written, the records are
 * dropped and every entry starts afresh (Celery's rule).
 */
import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import type { BeatStateStore, ClaimOutcome, LastRun } from './state-store.js';

interface FileContents {
  version: 1;
  zone: string;
  entries: Record<string, LastRun>;
}

/** File-backed `BeatStateStore`. */
export class FileStateStore implements BeatStateStore {
  readonly description: string;
  private readonly path: string;
  private readonly records = new Map<string, LastRun>();
  /** Set when the file was written for another zone (for the start-up log). */
  readonly zoneChangedFrom: string | null = null;

  constructor(path: string, private readonly zone: string) {
    this.path = resolve(path);
    this.description = `file ${this.path}`;
    let text: string | null = null;
    try {
      text = readFileSync(this.path, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw new Error(`Cannot read the beat schedule file ${this.path}: ${(err as Error).message}. Fix its permissions or pass another --schedule file.`);
    }
    if (text === null) return;
    let contents: FileContents;
    try {
      contents = JSON.parse(text) as FileContents;
    } catch {
      throw new Error(`The beat schedule file ${this.path} is not valid JSON (not written by Celeriac?): delete it to start afresh, or pass another --schedule file.`);
    }
    if (contents.zone !== zone) {
      this.zoneChangedFrom = contents.zone ?? null;
      return;
    }
    for (const [name, record] of Object.entries(contents.entries ?? {})) {
      if (typeof record?.lastRunAt === 'number') this.records.set(name, { lastRunAt: record.lastRunAt, totalRunCount: record.totalRunCount ?? 0 });
    }
  }

  async load(): Promise<Map<string, LastRun>> {
    return new Map(this.records);
  }

  async init(name: string, record: LastRun): Promise<LastRun> {
    const existing = this.records.get(name);
    if (existing) return existing;
    this.records.set(name, record);
    this.write();
    return record;
  }

  async claim(name: string, previous: LastRun, next: LastRun): Promise<ClaimOutcome> {
    const current = this.records.get(name);
    if (current && (current.lastRunAt !== previous.lastRunAt || current.totalRunCount !== previous.totalRunCount)) return 'taken';
    this.records.set(name, next);
    this.write();
    return 'claimed';
  }

  async unclaim(name: string, claimed: LastRun, previous: LastRun): Promise<void> {
    const current = this.records.get(name);
    if (current && current.lastRunAt === claimed.lastRunAt) {
      this.records.set(name, previous);
      this.write();
    }
  }

  async close(): Promise<void> {}

  private write(): void {
    const contents: FileContents = { version: 1, zone: this.zone, entries: Object.fromEntries(this.records) };
    mkdirSync(dirname(this.path), { recursive: true });
    const tmp = `${this.path}.${process.pid}.tmp`;
    writeFileSync(tmp, JSON.stringify(contents, null, 1) + '\n');
    renameSync(tmp, this.path);
  }
}
