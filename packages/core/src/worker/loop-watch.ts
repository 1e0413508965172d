/**
 * Shared memory between the worker's event loop and its heartbeat thread, so the
 * thread can tell a live worker from a hung one (a task stuck in `while (true) {}`).
 *
 * The loop bumps a progress counter on a timer and records which messages it has
 * started (from the start of the task until its ack/reject has landed). The thread
 * declares the loop hung when the counter has not moved for `workerHangTimeout`;
 * it then gives back everything not started and settles the started ones by the
 * acks-late rules (see `consumer-heartbeats.ts`).
 *
 * Declaring a hang and starting a task exclude each other through one state word:
 * the loop starts a task only by moving LIVE → BUSY → LIVE, the thread declares
 * only by moving LIVE → HUNG. So a task is either recorded as started before the
 * thread looks, or never started by this worker.
 */

/** What the thread does with a started message when the loop hangs. */
export const LostAction = {
  /** Remove it from `unacked` (early ack, or acks late without reject-on-worker-lost). */
  Drop: 1,
  /** Put it back at the end of its queue (acks late + reject on worker lost). */
  Requeue: 2,
} as const;
export type LostAction = (typeof LostAction)[keyof typeof LostAction];

/**
 * The task a started message runs, for the FAILURE (WorkerLostError) the thread
 * stores when it settles a hang (null ids: none).
 */
export interface LostTask {
  id: string;
  groupId: string | null;
  parentId: string | null;
}

/** A started message, as the thread sees it. */
export interface StartedMessage {
  tag: string;
  action: LostAction;
  /** Store FAILURE for this task when the hang is settled (absent: the task stores no result). */
  task?: LostTask;
}

const TICK = 0;
const STATE = 1;
const HEADER_BYTES = 16;
/**
 * Slot: int32 action (0 = free), int32 byte lengths of the tag, task id, group id and
 * parent id (task id length 0: no task to store a result for), then those texts.
 */
const SLOT_BYTES = 256;
const SLOT_WORDS = 5;
const TEXT_BYTES = SLOT_BYTES - SLOT_WORDS * 4;

/** State word values. */
export const LoopState = {
  Live: 0,
  /** The loop is recording a start (the thread must not declare now). */
  Busy: 1,
  /** The thread declared a hang and is giving messages back. */
  Hung: 2,
  /** The thread has given everything back; the loop forfeits what it held, then goes Live. */
  Released: 3,
} as const;
export type LoopState = (typeof LoopState)[keyof typeof LoopState];

/** The memory itself: created by the loop, handed to each heartbeat thread. */
export interface LoopWatchMemory {
  buffer: SharedArrayBuffer;
  slots: number;
}

/** Create the shared memory for up to `slots` started messages (more go by message). */
export function createLoopWatchMemory(slots: number): LoopWatchMemory {
  return { buffer: new SharedArrayBuffer(HEADER_BYTES + slots * SLOT_BYTES), slots };
}

/** A started message whose tag did not fit a slot (or no slot was free). */
export interface OverflowStart {
  type: 'started';
  id: number;
  tag: string;
  action: LostAction;
  task?: LostTask;
}
/** That message has settled. */
export interface OverflowEnd {
  type: 'ended';
  id: number;
}

/** The event loop's side. */
export class LoopWatch {
  private readonly header: Int32Array;
  /** The whole buffer as int32 (slot words) and as bytes (tags). */
  private readonly words: Int32Array;
  private readonly bytes: Uint8Array;
  private readonly encoder = new TextEncoder();
  private readonly freeSlots: number[] = [];
  /** delivery → slot index (≥ 0) or overflow id (< 0). */
  private readonly held = new Map<object, number>();
  private nextOverflowId = 1;

  constructor(
    readonly memory: LoopWatchMemory,
    /** Sends overflow records to the current thread (dropped while none runs). */
    private readonly sendOverflow: (record: OverflowStart | OverflowEnd) => void,
  ) {
    this.header = new Int32Array(memory.buffer, 0, HEADER_BYTES / 4);
    this.words = new Int32Array(memory.buffer);
    this.bytes = new Uint8Array(memory.buffer);
    for (let i = memory.slots - 1; i >= 0; i--) this.freeSlots.push(i);
  }

  /** Prove progress (called from an event-loop timer). */
  tick(): void {
    Atomics.add(this.header, TICK, 1);
  }

  get state(): LoopState {
    return Atomics.load(this.header, STATE) as LoopState;
  }

  /**
   * Record that `key`'s message starts now. False when the thread has declared the
   * loop hung: the message was (or is being) given back, so it must not run here.
   */
  begin(key: object, tag: string, action: LostAction, task?: LostTask): boolean {
    if (Atomics.compareExchange(this.header, STATE, LoopState.Live, LoopState.Busy) !== LoopState.Live) return false;
    try {
      const slot = this.freeSlots.pop();
      if (slot !== undefined && this.writeSlot(slot, tag, task)) {
        Atomics.store(this.words, (HEADER_BYTES + slot * SLOT_BYTES) / 4, action);
        this.held.set(key, slot);
      } else {
        if (slot !== undefined) this.freeSlots.push(slot);
        const id = this.nextOverflowId++;
        this.sendOverflow(task ? { type: 'started', id, tag, action, task } : { type: 'started', id, tag, action });
        this.held.set(key, -id);
      }
      this.tick();
      return true;
    } finally {
      Atomics.store(this.header, STATE, LoopState.Live);
    }
  }

  /** Write the tag and task ids into `slot` (not its action word); false when they do not fit. */
  private writeSlot(slot: number, tag: string, task: LostTask | undefined): boolean {
    const word = (HEADER_BYTES + slot * SLOT_BYTES) / 4;
    const end = HEADER_BYTES + (slot + 1) * SLOT_BYTES;
    let at = HEADER_BYTES + slot * SLOT_BYTES + SLOT_WORDS * 4;
    const texts = [tag, task?.id ?? '', task?.groupId ?? '', task?.parentId ?? ''];
    for (let i = 0; i < texts.length; i++) {
      const length = this.writeText(at, end, texts[i]!);
      if (length < 0) return false;
      this.words[word + 1 + i] = length;
      at += length;
    }
    return true;
  }

  /** Write `text` as UTF-8 at byte `at` (before `end`); its byte length, or -1 when it does not fit. */
  private writeText(at: number, end: number, text: string): number {
    if (text.length > end - at) return -1;
    // Tags and task ids are ASCII in practice (uuids): copy them without an encoder call.
    for (let i = 0; i < text.length; i++) {
      const code = text.charCodeAt(i);
      if (code > 0x7f) {
        const { read, written } = this.encoder.encodeInto(text, this.bytes.subarray(at, end));
        return read === text.length ? written : -1;
      }
      this.bytes[at + i] = code;
    }
    return text.length;
  }

  /** `key`'s message settled (its ack/reject landed or failed): forget it. */
  end(key: object): void {
    const ref = this.held.get(key);
    if (ref === undefined) return;
    this.held.delete(key);
    if (ref < 0) return this.sendOverflow({ type: 'ended', id: -ref });
    Atomics.store(this.words, (HEADER_BYTES + ref * SLOT_BYTES) / 4, 0);
    this.freeSlots.push(ref);
  }

  /** After a released hang: forget every started message and go live again. */
  reset(): void {
    for (const key of [...this.held.keys()]) this.end(key);
    // Progress first: a thread that sees Live must not see the stall that caused the hang.
    this.tick();
    Atomics.store(this.header, STATE, LoopState.Live);
  }
}

/** The heartbeat thread's side. */
export class LoopWatcher {
  private readonly header: Int32Array;
  private readonly bytes: Uint8Array;
  private readonly decoder = new TextDecoder();
  private readonly overflow = new Map<number, StartedMessage>();
  private lastTick: number;
  private lastProgressAt: number;

  constructor(
    private readonly memory: LoopWatchMemory,
    private readonly now: () => number,
  ) {
    this.header = new Int32Array(memory.buffer, 0, HEADER_BYTES / 4);
    this.bytes = new Uint8Array(memory.buffer);
    this.lastTick = Atomics.load(this.header, TICK);
    this.lastProgressAt = now();
  }

  /** Apply an overflow record sent by the loop. */
  note(record: OverflowStart | OverflowEnd): void {
    if (record.type === 'started') this.overflow.set(record.id, record.task ? { tag: record.tag, action: record.action, task: record.task } : { tag: record.tag, action: record.action });
    else this.overflow.delete(record.id);
  }

  /** Milliseconds since the loop last made progress. */
  stalledMs(): number {
    const tick = Atomics.load(this.header, TICK);
    if (tick !== this.lastTick) {
      this.lastTick = tick;
      this.lastProgressAt = this.now();
    }
    return this.now() - this.lastProgressAt;
  }

  get state(): LoopState {
    return Atomics.load(this.header, STATE) as LoopState;
  }

  /**
   * Declare the loop hung. Returns the started messages (call `drain` first so
   * overflow records are applied), or null when the loop is recording a start.
   */
  declareHung(): StartedMessage[] | null {
    if (Atomics.compareExchange(this.header, STATE, LoopState.Live, LoopState.Hung) !== LoopState.Live) return null;
    return this.started();
  }

  /** The started messages (stable while the state is Hung: the loop cannot start any). */
  started(): StartedMessage[] {
    const out: StartedMessage[] = [];
    for (let slot = 0; slot < this.memory.slots; slot++) {
      const base = HEADER_BYTES + slot * SLOT_BYTES;
      const words = new Int32Array(this.memory.buffer, base, SLOT_WORDS);
      const action = Atomics.load(words, 0);
      if (action === 0) continue;
      const texts: string[] = [];
      let at = base + SLOT_WORDS * 4;
      for (let i = 1; i < SLOT_WORDS; i++) {
        texts.push(this.decoder.decode(this.bytes.subarray(at, at + words[i]!)));
        at += words[i]!;
      }
      const [tag, id, groupId, parentId] = texts as [string, string, string, string];
      const started: StartedMessage = { tag, action: action as LostAction };
      if (id) started.task = { id, groupId: groupId || null, parentId: parentId || null };
      out.push(started);
    }
    out.push(...this.overflow.values());
    return out;
  }

  /** Everything is given back: let the loop forfeit what it held. */
  markReleased(): void {
    Atomics.store(this.header, STATE, LoopState.Released);
  }
}
