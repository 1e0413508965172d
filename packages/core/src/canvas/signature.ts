import { randomUUID } from 'node:crypto';
import type { ApplyOptions } from '../apply-options.js';
import type { ResultBackend } from '../backends/backend.js';
import type { WireSignature } from '../protocol/message.js';
import { AsyncResult } from '../result.js';
import { dispatchPlan, newPlan, type SendPlan } from './plan.js';
import { optionsFromWire, wireFromOptions, type WireOptions } from './wire-options.js';

export { optionsFromWire } from './wire-options.js';

/** What a Signature needs from its app to be sent (the app implements it). */
export interface SignatureSender {
  sendTask<R>(name: string, args?: readonly unknown[], kwargs?: Record<string, unknown>, options?: ApplyOptions): Promise<AsyncResult<R>>;
  /** Publish many messages in one batch (one Redis MULTI). */
  sendMany?<R>(items: readonly { name: string; args?: readonly unknown[]; kwargs?: Record<string, unknown>; options?: ApplyOptions }[]): Promise<AsyncResult<R>[]>;
  /** The result backend (chord counting, saved group results). */
  getBackend?(): Promise<ResultBackend>;
  /** The process id used as `reply_to` (Celery's oid). */
  readonly oid?: string;
}

/**
 * The result of sending a canvas primitive whose value is `R`: an `AsyncResult<R>`,
 * which is a `GroupResult` (a subclass) for a group or a chain ending in one.
 * Either way `get()` resolves with `R`.
 */
export type CanvasResult<R> = AsyncResult<R>;

/** What a canvas subclass contributes (registered by chain.ts, group.ts, chord.ts so this file needs no import of them). */
interface CanvasKinds {
  fromWire: Map<string, (wire: WireSignature, sender?: SignatureSender) => Signature>;
  pipe?: (left: Signature, right: Signature) => Signature;
}

/** @internal Registry filled by the canvas modules (see `canvas/index.ts`). */
export const canvasKinds: CanvasKinds = { fromWire: new Map() };

/**
 * A task call packaged to be sent later or elsewhere: `add.s(16)` for a callback
 * that receives the parent's result first, `add.si(2, 2)` for one that does not.
 * On the wire it is Celery's signature dict. `R` is what the task returns.
 *
 * Chains, groups and chords are signatures too (see `chain()`, `group()`,
 * `chord()`): every primitive has `delay` / `applyAsync` / `pipe`.
 */
export class Signature<R = unknown> {
  /** `apply_async` options, snake_case as on the wire (`task_id`, `queue`, `link`...). */
  readonly options: WireOptions;

  constructor(
    readonly task: string,
    readonly args: readonly unknown[] = [],
    readonly kwargs: Record<string, unknown> = {},
    options: Record<string, unknown> = {},
    readonly immutable = false,
    readonly subtaskType: string | null = null,
    /** @internal The app that sends it (unset for a signature rebuilt without one). */
    readonly sender?: SignatureSender,
  ) {
    this.options = options;
  }

  /** The task id, once frozen (or set with `set({ task_id })`). */
  get id(): string | undefined {
    const id = this.options.task_id;
    return typeof id === 'string' ? id : undefined;
  }

  /** Celery's dict form, field order as Celery writes it. */
  toJSON(): WireSignature {
    return {
      task: this.task,
      args: [...this.args],
      kwargs: toWireValue(this.kwargs) as Record<string, unknown>,
      options: toWireValue(this.options) as Record<string, unknown>,
      subtask_type: this.subtaskType,
      immutable: this.immutable,
    };
  }

  /**
   * Rebuild from the wire form: a dict with `subtask_type` `chain`, `group` or
   * `chord` becomes that primitive, so a signature received from Python (as a
   * task argument or in a message) can be sent again with one call.
   */
  static fromWire(wire: WireSignature, sender?: SignatureSender): Signature {
    const kind = wire.subtask_type ? canvasKinds.fromWire.get(wire.subtask_type) : undefined;
    if (kind) return kind(wire, sender);
    return new Signature(wire.task, wire.args ?? [], wire.kwargs ?? {}, structuredClone(wire.options ?? {}), wire.immutable === true, wire.subtask_type ?? null, sender);
  }

  /** `fromWire` for something that may already be a Signature (cloned then). */
  static from(value: Signature | WireSignature, sender?: SignatureSender): Signature {
    return value instanceof Signature ? value.clone() : Signature.fromWire(value, sender);
  }

  /** @internal A copy of this kind with other fields (subclasses override). */
  protected rebuild(args: readonly unknown[], kwargs: Record<string, unknown>, options: WireOptions, immutable: boolean): Signature<R> {
    return new Signature<R>(this.task, args, kwargs, options, immutable, this.subtaskType, this.sender);
  }

  /**
   * A copy with partial arguments: `args` prepended to the stored ones (unless
   * immutable), `kwargs` and `options` (wire names) merged in. Celery's `clone`.
   */
  clone(args: readonly unknown[] = [], kwargs: Record<string, unknown> = {}, options: Record<string, unknown> = {}): Signature<R> {
    const [a, k, o] = this.merge(args, kwargs, options);
    return this.rebuild(a, structuredCloneSafe(k), structuredCloneSafe(o), this.immutable);
  }

  /**
   * A copy with options merged in, wire names (`set({ queue: 'lopri' })`;
   * `countdown`, `priority`, `task_id`...). Celery's `set` changes the signature
   * in place; this returns the changed copy.
   */
  set(options: Record<string, unknown>): Signature<R> {
    return this.rebuild(this.args, this.kwargs, { ...structuredCloneSafe(this.options), ...options }, this.immutable);
  }

  /** A copy that does (true) or does not (false) receive the parent's result. */
  setImmutable(immutable: boolean): Signature<R> {
    return this.rebuild(this.args, this.kwargs, structuredCloneSafe(this.options), immutable);
  }

  /** A copy with `callback` added to the tasks sent with this one's result after success (Celery's `link`). */
  link(callback: Signature): Signature<R> {
    return this.withListOption('link', callback);
  }

  /** A copy with `errback` added to the tasks called when this one fails (Celery's `link_error` / `on_error`). */
  linkError(errback: Signature): Signature<R> {
    return this.withListOption('link_error', errback);
  }

  /** Alias of `linkError` (Celery's `on_error`, which returns the signature it was called on). */
  onError(errback: Signature): Signature<R> {
    return this.linkError(errback);
  }

  /** @internal Append to a list option (`link`, `link_error`) in place. */
  appendToListOption(key: 'link' | 'link_error', sig: Signature | WireSignature): void {
    const current = this.options[key];
    const list = Array.isArray(current) ? current : current ? [current] : [];
    const wire = sig instanceof Signature ? sig.toJSON() : sig;
    if (!list.some((x) => JSON.stringify(x) === JSON.stringify(wire))) list.push(wire);
    this.options[key] = list;
  }

  private withListOption(key: 'link' | 'link_error', sig: Signature): Signature<R> {
    const copy = this.clone();
    copy.appendToListOption(key, sig);
    return copy;
  }

  /**
   * Fix the task id (and Celery's freeze options) in place and return the result
   * handle it will have. Sending it later uses that id. Celery's `freeze`.
   */
  freeze(opts: FreezeOptions = {}): CanvasResult<R> {
    const o = this.options;
    if (typeof o.task_id !== 'string') o.task_id = opts.taskId ?? randomUUID();
    if (opts.rootId) o.root_id = opts.rootId;
    if (opts.parentId) o.parent_id = opts.parentId;
    if (!('reply_to' in o) && this.sender?.oid) o.reply_to = this.sender.oid;
    if (opts.groupId && !('group_id' in o)) o.group_id = opts.groupId;
    if (opts.chord) o.chord = opts.chord instanceof Signature ? opts.chord.toJSON() : opts.chord;
    if (opts.groupIndex !== undefined && opts.groupIndex !== null) o.group_index = opts.groupIndex;
    return this.resultFor(o.task_id as string) as CanvasResult<R>;
  }

  /** @internal */
  protected resultFor(id: string): AsyncResult<R> {
    return new AsyncResult<R>(id, resultSource(this.sender));
  }

  /**
   * Chain this with `next`: `add.s(4, 4).pipe(mul.s(8))` (Celery's `|`). A group
   * followed by a task becomes a chord.
   */
  pipe<U>(next: Signature<U>): Signature<U> {
    if (!canvasKinds.pipe) throw new Error('canvas modules not loaded: import from @celeriac/core');
    return canvasKinds.pipe(this, next) as Signature<U>;
  }

  /**
   * Send it. `args` are prepended to the stored ones (unless immutable), `kwargs`
   * merged, `options` (camelCase, as `task.applyAsync` takes them) over the stored ones.
   */
  async applyAsync(args: readonly unknown[] = [], kwargs: Record<string, unknown> = {}, options: ApplyOptions = {}): Promise<CanvasResult<R>> {
    const sender = requireSender(this);
    const plan = newPlan(sender);
    const result = this.plan(plan, args, kwargs, wireFromOptions(options));
    await dispatchPlan(plan);
    return result;
  }

  /** `sig.delay(...args)`: `applyAsync(args)`. */
  delay(...args: unknown[]): Promise<CanvasResult<R>> {
    return this.applyAsync(args);
  }

  /**
   * @internal Add this signature's messages to `plan` and return its result
   * handle (subclasses override). Merges like Celery's `_merge`: a `group_id`
   * already on the signature is kept.
   */
  plan(plan: SendPlan, args: readonly unknown[], kwargs: Record<string, unknown>, options: WireOptions): CanvasResult<R> {
    const [a, k, o] = this.merge(args, kwargs, options);
    const id = typeof o.task_id === 'string' ? o.task_id : randomUUID();
    plan.items.push({ name: this.task, args: a, kwargs: k, options: { ...optionsFromWire(o), taskId: id } });
    return new AsyncResult<R>(id, resultSource(plan.sender)) as CanvasResult<R>;
  }

  /** @internal Celery's `_merge`: partial args first unless immutable; `group_id` is not overridden. */
  merge(args: readonly unknown[], kwargs: Record<string, unknown>, options: WireOptions): [unknown[], Record<string, unknown>, WireOptions] {
    const o: WireOptions = { ...this.options };
    for (const [key, value] of Object.entries(options)) {
      if (value === undefined || value === null) continue;
      if (key === 'group_id' && 'group_id' in this.options) continue;
      o[key] = value;
    }
    if (this.immutable) return [[...this.args], { ...this.kwargs }, o];
    return [[...args, ...this.args], { ...this.kwargs, ...kwargs }, o];
  }

  toString(): string {
    return `${this.task}(${this.args.map((a) => JSON.stringify(a)).join(', ')})`;
  }
}

/** Options of `Signature.freeze`. */
export interface FreezeOptions {
  taskId?: string;
  groupId?: string;
  groupIndex?: number | null;
  rootId?: string;
  parentId?: string;
  /** The chord body this signature is a header member of. */
  chord?: Signature | WireSignature;
}

/** @internal */
export function requireSender(sig: Signature): SignatureSender {
  if (!sig.sender) throw new Error(`Signature ${sig.task} is not bound to an app: create it with task.s(...) or app.signature(...), or pass the app to Signature.fromWire.`);
  return sig.sender;
}

/** @internal Where results of signatures sent by `sender` are read. */
export function resultSource(sender: SignatureSender | undefined): { getBackend(): Promise<ResultBackend> } {
  // The app itself when it has a backend (results then also reach its `control`, for revoke).
  if (sender?.getBackend) return sender as { getBackend(): Promise<ResultBackend> };
  return {
    getBackend: () => {
      if (!sender?.getBackend) return Promise.reject(new Error('This signature is not bound to an app with a result backend.'));
      return sender.getBackend();
    },
  };
}

/** JSON form of option values: nested signatures become dicts. */
function toWireValue(value: unknown): unknown {
  if (value instanceof Signature) return value.toJSON();
  if (Array.isArray(value)) return value.map(toWireValue);
  if (value && typeof value === 'object' && !(value instanceof Date)) {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) out[k] = toWireValue(v);
    return out;
  }
  return value;
}

/** Deep copy of plain data; signatures inside are turned into their dicts first. */
export function structuredCloneSafe<T>(value: T): T {
  return structuredClone(toWireValue(value)) as T;
}
