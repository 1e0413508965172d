import { randomUUID } from 'node:crypto';
import type { ApplyOptions } from '../apply-options.js';
import type { WireSignature } from '../protocol/message.js';
import type { AsyncResult } from '../result.js';
import { GroupResult } from './group-result.js';
import type { SendPlan } from './plan.js';
import { canvasKinds, resultSource, Signature, type FreezeOptions, type SignatureSender } from './signature.js';
import type { WireOptions } from './wire-options.js';

/** The element type of a group of signatures. */
export type ResultOf<S> = S extends Signature<infer R> ? R : unknown;

/**
 * Tasks run in parallel (Celery's `group`): `group([add.s(2, 2), add.s(4, 4)])`.
 * Sending it gives a `GroupResult` whose `get()` lists the values in call order.
 * Arguments given when sending are prepended to every (mutable) member:
 * `group(add.s(1), add.s(2)).delay(10)` → [11, 12].
 */
export class Group<T = unknown> extends Signature<T[]> {
  /** The members, in call order. */
  readonly tasks: Signature[];

  constructor(tasks: readonly (Signature | WireSignature)[], options: WireOptions = {}, sender?: SignatureSender) {
    const sigs = tasks.map((t) => (t instanceof Signature ? t : Signature.fromWire(t, sender)));
    super('celery.group', [], {}, options, false, 'group', sender ?? sigs.find((t) => t.sender)?.sender);
    this.tasks = sigs;
  }

  override toJSON(): WireSignature {
    const base = super.toJSON();
    return { ...base, kwargs: { tasks: this.tasks.map((t) => t.toJSON()) } };
  }

  protected override rebuild(_args: readonly unknown[], _kwargs: Record<string, unknown>, options: WireOptions): Signature<T[]> {
    return new Group<T>(
      this.tasks.map((t) => t.clone()),
      options,
      this.sender,
    );
  }

  /** A copy (members cloned). */
  override clone(args: readonly unknown[] = [], kwargs: Record<string, unknown> = {}, options: WireOptions = {}): Group<T> {
    const copy = new Group<T>(
      this.tasks.map((t) => t.clone()),
      { ...structuredClone(plainOptions(this.options)), ...options },
      this.sender,
    );
    // Celery's group.clone merges partial args into the signature's own args, which a group ignores.
    void args;
    void kwargs;
    return copy;
  }

  /** Celery's `group.link`: linked (immutably) to the first member only. */
  override link(callback: Signature): Group<T> {
    const copy = this.clone();
    if (copy.tasks[0]) copy.tasks[0] = copy.tasks[0].link(callback.setImmutable(true));
    return copy;
  }

  /** Celery's `group.link_error`: every member gets the errback. */
  override linkError(errback: Signature): Group<T> {
    const copy = this.clone();
    for (let i = 0; i < copy.tasks.length; i++) copy.tasks[i] = copy.tasks[i]!.linkError(errback);
    return copy;
  }

  /** @internal In place, on every member. */
  override appendToListOption(key: 'link' | 'link_error', sig: Signature | WireSignature): void {
    if (key === 'link') this.tasks[0]?.appendToListOption(key, sig);
    else for (const t of this.tasks) t.appendToListOption(key, sig);
  }

  /** Members with nested groups unrolled, cloned and frozen (Celery's `_freeze_group_tasks`), in place. */
  freezeMembers(opts: { groupId?: string; chord?: Signature | WireSignature; rootId?: string; parentId?: string }): (AsyncResult | GroupResult)[] {
    const unrolled: Signature[] = [];
    const stack = [...this.tasks];
    while (stack.length) {
      const t = stack.shift()!.clone();
      if (t instanceof Group) stack.unshift(...t.tasks);
      else unrolled.push(t);
    }
    this.tasks.splice(0, this.tasks.length, ...unrolled);
    return unrolled.map((t, i) => t.freeze({ groupId: opts.groupId, chord: opts.chord, rootId: opts.rootId, parentId: opts.parentId, groupIndex: i }) as AsyncResult | GroupResult);
  }

  override freeze(opts: FreezeOptions = {}): GroupResult<T> {
    const o = this.options;
    if (typeof o.task_id !== 'string') o.task_id = opts.groupId ?? randomUUID();
    if (opts.groupId) o.group_id = opts.groupId;
    if (opts.chord) o.chord = opts.chord instanceof Signature ? opts.chord.toJSON() : opts.chord;
    if (opts.groupIndex !== undefined && opts.groupIndex !== null) o.group_index = opts.groupIndex;
    if (!('root_id' in o)) o.root_id = opts.rootId ?? null;
    if (!('parent_id' in o)) o.parent_id = opts.parentId ?? null;
    const results = this.freezeMembers({ groupId: opts.groupId, chord: opts.chord, rootId: (o.root_id as string | null) ?? undefined, parentId: (o.parent_id as string | null) ?? undefined });
    return new GroupResult<T>(o.task_id as string, results as AsyncResult<T>[], resultSource(this.sender));
  }

  /** Send every member in one batch, `args` prepended to each (mutable) member; resolves with the group's result. */
  override applyAsync(args: readonly unknown[] = [], kwargs: Record<string, unknown> = {}, options: ApplyOptions = {}): Promise<GroupResult<T>> {
    return super.applyAsync(args, kwargs, options) as Promise<GroupResult<T>>;
  }

  /** `group(add.s(1), add.s(2)).delay(10)`: partial arguments for every member. */
  override delay(...args: unknown[]): Promise<GroupResult<T>> {
    return this.applyAsync(args);
  }

  /** @internal Plan every member (one batch); the group's result. */
  override plan(plan: SendPlan, args: readonly unknown[], kwargs: Record<string, unknown>, options: WireOptions): GroupResult<T> {
    if (options.link !== undefined) throw new TypeError('Cannot add link to group: use a chord (group(...).pipe(callback)).');
    if (options.link_error !== undefined) throw new TypeError('Cannot add link_error to group: do that on individual tasks.');
    const opts: WireOptions = { ...this.options };
    for (const [k, v] of Object.entries(options)) if (v !== undefined && v !== null) opts[k] = v;
    const groupId = typeof opts.task_id === 'string' ? opts.task_id : randomUUID();
    delete opts.task_id;
    opts.group_id = groupId;
    const rootId = typeof opts.root_id === 'string' ? opts.root_id : undefined;
    const chord = opts.chord as WireSignature | undefined;
    delete opts.chord;
    // Celery's _prepared: clone, unroll nested groups, freeze with the group id.
    const members: Signature[] = [];
    const stack = [...this.tasks];
    while (stack.length) {
      const t = stack.shift()!.clone();
      if (t instanceof Group) stack.unshift(...t.tasks);
      else members.push(t);
    }
    const results: (AsyncResult | GroupResult)[] = [];
    let chordSize = 0;
    members.forEach((sig, i) => {
      const res = sig.freeze({ groupId, rootId }) as AsyncResult | GroupResult;
      const chordObj = chord ?? (sig.options.chord as WireSignature | undefined);
      chordSize += chordSizeOf(sig);
      if (chordObj && i === members.length - 1) plan.chordSizes.push({ groupId, size: chordSize });
      sig.plan(plan, args, kwargs, { ...opts, ...(chordObj ? { chord: chordObj } : {}) });
      results.push(res);
    });
    return new GroupResult<T>(groupId, results as AsyncResult<T>[], resultSource(plan.sender));
  }

  override toString(): string {
    return `group([${this.tasks.map(String).join(', ')}])`;
  }
}

/** Celery's `chord._descend`: how many completions a header member contributes. */
export function chordSizeOf(sig: Signature): number {
  const kind = sig as Signature & { tasks?: Signature[]; body?: Signature };
  if (sig.subtaskType === 'group') return (kind.tasks ?? []).reduce((n, t) => n + chordSizeOf(t), 0);
  if (sig.subtaskType === 'chain') {
    for (const t of [...(kind.tasks ?? [])].reverse()) {
      const n = chordSizeOf(t);
      if (n > 0) return n;
    }
    return 0;
  }
  if (sig.subtaskType === 'chord') return kind.body ? chordSizeOf(kind.body) : 0;
  return 1;
}

function plainOptions(o: WireOptions): WireOptions {
  return JSON.parse(JSON.stringify(o)) as WireOptions;
}

/**
 * `group(add.s(2, 2), add.s(4, 4))` or `group([...])`: tasks run in parallel.
 * Celery's `group`.
 */
export function group<S extends Signature[]>(...tasks: S | [S]): Group<ResultOf<S[number]>> {
  const list = (tasks.length === 1 && Array.isArray(tasks[0]) ? tasks[0] : tasks) as Signature[];
  return new Group<ResultOf<S[number]>>(list);
}

canvasKinds.fromWire.set('group', (wire, sender) => {
  const kw = (wire.kwargs ?? {}) as { tasks?: unknown };
  const tasks = Array.isArray(kw.tasks) ? (kw.tasks as WireSignature[]) : [];
  return new Group(tasks, structuredClone(wire.options ?? {}), sender);
});
