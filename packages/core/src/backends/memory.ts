/**
 * Memory result backend — the embedded default next to the memory broker.
 * Documents live in this process; waiters are woken directly (no polling).
 */
import { TimeoutError } from '../errors.js';
import { READY_STATES } from '../states.js';
import { processWide } from '../process-state.js';
import type { ChordMember, ChordPart, ResultBackend, ResultDocument, ResultTuple, ResultWatch, WaitOptions } from './backend.js';

class MemoryStore {
  readonly docs = new Map<string, ResultDocument>();
  /** Chord counting: group id → size, added members, and outcomes by index. */
  readonly chords = new Map<string, { size: number | null; added: number; parts: { index: number; member: ChordMember }[] }>();
  readonly groups = new Map<string, ResultTuple>();
  readonly waiters = new Map<string, Set<(doc: ResultDocument) => void>>();
  /** `watch` listeners: every stored document, whatever its state. */
  readonly watchers = new Map<string, Set<(doc: ResultDocument) => void>>();
}
/** One store per URL per process, shared by every copy of the package (see process-state.ts). */
const stores = processWide('memory-backend-stores', () => new Map<string, MemoryStore>());

/** The in-process result backend. */
export class MemoryBackend implements ResultBackend {
  readonly displayUrl: string;
  private readonly store: MemoryStore;

  constructor(url = 'memory://') {
    this.displayUrl = url;
    let store = stores.get(url);
    if (!store) stores.set(url, (store = new MemoryStore()));
    this.store = store;
  }

  async storeResult(doc: ResultDocument): Promise<void> {
    const prev = this.store.docs.get(doc.task_id);
    if (prev?.status === 'SUCCESS') return;
    // Keep a structured copy so later mutation by the caller cannot leak in.
    const copy = structuredClone(doc);
    this.store.docs.set(doc.task_id, copy);
    for (const listener of this.store.watchers.get(doc.task_id) ?? []) listener(copy);
    if (READY_STATES.has(copy.status)) for (const wake of this.store.waiters.get(doc.task_id) ?? []) wake(copy);
  }

  async storeResults(docs: readonly ResultDocument[]): Promise<void> {
    for (const d of docs) await this.storeResult(d);
  }

  async getResult(taskId: string): Promise<ResultDocument | null> {
    return this.store.docs.get(taskId) ?? null;
  }

  waitForResult(taskId: string, { timeoutMs }: WaitOptions): Promise<ResultDocument> {
    const existing = this.store.docs.get(taskId);
    if (existing && READY_STATES.has(existing.status)) return Promise.resolve(existing);
    return new Promise((resolve, reject) => {
      let set = this.store.waiters.get(taskId);
      if (!set) this.store.waiters.set(taskId, (set = new Set()));
      const done = (doc: ResultDocument) => {
        clearTimeout(timer);
        set!.delete(done);
        if (set!.size === 0) this.store.waiters.delete(taskId);
        resolve(doc);
      };
      const timer =
        timeoutMs === undefined
          ? undefined
          : setTimeout(() => {
              set!.delete(done);
              reject(new TimeoutError(`Task ${taskId} did not finish within ${timeoutMs} ms (state still ${this.store.docs.get(taskId)?.status ?? 'PENDING'}).`));
            }, timeoutMs);
      set.add(done);
    });
  }

  async forget(taskId: string): Promise<void> {
    this.store.docs.delete(taskId);
  }

  /** Every document stored for `taskId` from now on, delivered synchronously. */
  watch(taskId: string, onDocument: (doc: ResultDocument) => void): ResultWatch {
    let set = this.store.watchers.get(taskId);
    if (!set) this.store.watchers.set(taskId, (set = new Set()));
    const listener = (doc: ResultDocument) => onDocument(doc);
    set.add(listener);
    return {
      ready: Promise.resolve(),
      close: () => {
        set!.delete(listener);
        if (set!.size === 0 && this.store.watchers.get(taskId) === set) this.store.watchers.delete(taskId);
      },
    };
  }

  private chord(groupId: string) {
    let c = this.store.chords.get(groupId);
    if (!c) this.store.chords.set(groupId, (c = { size: null, added: 0, parts: [] }));
    return c;
  }

  async setChordSize(groupId: string, size: number): Promise<void> {
    this.chord(groupId).size = size;
  }

  /** Counting as the Redis backend does; synchronous, so exactly one call completes a chord. */
  async onChordPartReturn(part: ChordPart): Promise<ChordMember[] | null> {
    const c = this.chord(part.groupId);
    c.parts.push({ index: part.groupIndex ?? Infinity, member: { taskId: part.taskId, state: part.state, result: structuredClone(part.result) } });
    if (c.size === null || c.parts.length !== c.size + c.added) return null;
    this.store.chords.delete(part.groupId);
    return c.parts.sort((a, b) => a.index - b.index).map((p) => p.member);
  }

  async addToChord(groupId: string): Promise<void> {
    this.chord(groupId).added++;
  }

  async saveGroup(groupId: string, tuple: ResultTuple): Promise<void> {
    this.store.groups.set(groupId, structuredClone(tuple));
  }

  async restoreGroup(groupId: string): Promise<ResultTuple | null> {
    return this.store.groups.get(groupId) ?? null;
  }

  async deleteGroup(groupId: string): Promise<void> {
    this.store.groups.delete(groupId);
  }

  async close(): Promise<void> {}
}
