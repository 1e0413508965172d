import type { WireSignature } from '../protocol/message.js';
import { Group } from './group.js';
import type { SendPlan } from './plan.js';
import { Signature, type CanvasResult, type SignatureSender } from './signature.js';
import type { WireOptions } from './wire-options.js';

/**
 * `task.map(items)`: one message to Celery's built-in `celery.map`, which calls
 * the task once per item inside one worker and returns the list (Celery's `xmap`).
 */
export function xmap<R>(task: Signature, it: readonly unknown[], sender?: SignatureSender): Signature<R[]> {
  return new Signature<R[]>('celery.map', [], { task: task.toJSON(), it: [...it] }, {}, true, null, sender ?? task.sender);
}

/** `task.starmap(argLists)`: one message to `celery.starmap`, each item spread as the arguments (Celery's `xstarmap`). */
export function xstarmap<R>(task: Signature, it: readonly (readonly unknown[])[], sender?: SignatureSender): Signature<R[]> {
  return new Signature<R[]>('celery.starmap', [], { task: task.toJSON(), it: it.map((x) => [...x]) }, {}, true, null, sender ?? task.sender);
}

/**
 * `task.chunks(argLists, n)`: the argument lists split into parts of `n`, each
 * part one `celery.starmap` message, sent as a group (what Celery 5.2 sends).
 * `get()` gives one list of results per part.
 */
export class Chunks<R = unknown> extends Signature<R[][]> {
  constructor(
    readonly taskSignature: Signature,
    readonly it: readonly (readonly unknown[])[],
    readonly n: number,
    options: WireOptions = {},
    sender?: SignatureSender,
  ) {
    if (!Number.isInteger(n) || n < 1) throw new RangeError(`chunks(): the chunk size must be a positive integer, got ${n}.`);
    super('celery.chunks', [], { task: taskSignature.toJSON(), it: it.map((x) => [...x]), n }, options, true, null, sender ?? taskSignature.sender);
  }

  /** The group of `celery.starmap` parts this sends. */
  group(): Group<R[]> {
    const parts: Signature<R[]>[] = [];
    for (let i = 0; i < this.it.length; i += this.n) parts.push(xstarmap<R>(this.taskSignature, this.it.slice(i, i + this.n), this.sender));
    return new Group<R[]>(parts, {}, this.sender);
  }

  override clone(): Chunks<R> {
    return new Chunks<R>(this.taskSignature, this.it, this.n, JSON.parse(JSON.stringify(this.options)) as WireOptions, this.sender);
  }

  override plan(plan: SendPlan, args: readonly unknown[], kwargs: Record<string, unknown>, options: WireOptions): CanvasResult<R[][]> {
    return this.group().plan(plan, args, kwargs, { ...this.options, ...options }) as CanvasResult<R[][]>;
  }

  /** Rebuild from Celery's `celery.chunks` kwargs. */
  static fromKwargs(kwargs: { task: WireSignature; it: unknown[][]; n: number }, sender?: SignatureSender): Chunks {
    return new Chunks(Signature.fromWire(kwargs.task, sender), kwargs.it, kwargs.n, {}, sender);
  }
}
