import { randomUUID } from 'node:crypto';
import type { WireSignature } from '../protocol/message.js';
import type { AsyncResult, ResultNode } from '../result.js';
import { Group } from './group.js';
import { GroupResult } from './group-result.js';
import type { SendPlan } from './plan.js';
import { canvasKinds, resultSource, Signature, type CanvasResult, type FreezeOptions, type SignatureSender } from './signature.js';
import type { WireOptions } from './wire-options.js';

/**
 * A group whose results go, as one list in header order, to a body once every
 * member finished (Celery's `chord`): `chord([add.s(1, 1), add.s(2, 2)], xsum.s())`.
 * Counting uses the result backend (Redis: Celery 5.2's `.j`/`.t`/`.s` keys, one
 * atomic script per member; memory:// in-process); a backend that cannot count
 * refuses the chord when it is sent. A failing member fails the body with
 * `ChordError` and runs the body's errbacks.
 */
export class Chord<R = unknown> extends Signature<R> {
  readonly header: Group;
  readonly body: Signature<R>;

  constructor(header: Group | readonly (Signature | WireSignature)[], body: Signature<R> | WireSignature, options: WireOptions = {}, sender?: SignatureSender, args: readonly unknown[] = []) {
    const h = header instanceof Group ? header : new Group(header, {}, sender);
    const b = (body instanceof Signature ? body : Signature.fromWire(body, sender)) as Signature<R>;
    super('celery.chord', args, {}, options, false, 'chord', sender ?? h.sender ?? b.sender);
    this.header = h;
    this.body = b;
  }

  override toJSON(): WireSignature {
    const base = super.toJSON();
    return { ...base, kwargs: { kwargs: {}, header: this.header.toJSON(), body: this.body.toJSON() } };
  }

  protected override rebuild(args: readonly unknown[], _kwargs: Record<string, unknown>, options: WireOptions): Signature<R> {
    return new Chord<R>(this.header.clone(), this.body.clone(), options, this.sender, args);
  }

  override clone(args: readonly unknown[] = [], kwargs: Record<string, unknown> = {}, options: WireOptions = {}): Chord<R> {
    const [a, , o] = this.merge(args, kwargs, options);
    return new Chord<R>(this.header.clone(), this.body.clone(), JSON.parse(JSON.stringify(o)) as WireOptions, this.sender, a);
  }

  /** @internal Callbacks and errbacks of a chord belong to its body (Celery). */
  override appendToListOption(key: 'link' | 'link_error', sig: Signature | WireSignature): void {
    this.body.appendToListOption(key, sig);
  }

  override link(callback: Signature): Chord<R> {
    const copy = this.clone();
    copy.body.appendToListOption('link', callback);
    return copy;
  }

  override linkError(errback: Signature): Chord<R> {
    const copy = this.clone();
    copy.body.appendToListOption('link_error', errback);
    return copy;
  }

  /** Celery's `chord.freeze`: ids for the body and every header member, in place; the body's result. */
  override freeze(opts: FreezeOptions = {}): CanvasResult<R> {
    const bodyResult = this.body.freeze({ taskId: opts.taskId, rootId: opts.rootId, chord: opts.chord, groupId: opts.groupId, groupIndex: opts.groupIndex }) as ResultNode;
    const headerResult = this.header.freeze({ parentId: opts.parentId, rootId: opts.rootId, chord: this.body });
    attachToFirst(bodyResult, headerResult);
    this.options.task_id = this.header.options.task_id;
    return bodyResult as CanvasResult<R>;
  }

  override plan(plan: SendPlan, args: readonly unknown[], kwargs: Record<string, unknown>, options: WireOptions): CanvasResult<R> {
    const partial = args.length ? [...args, ...this.args] : [...this.args];
    const merged: WireOptions = { ...this.options };
    for (const [k, v] of Object.entries(options)) if (v !== undefined && v !== null) merged[k] = v;
    const taskId = (options.task_id ?? merged.task_id) as string | undefined;
    delete merged.task_id;
    // Celery's chord.run.
    const header = this.header.clone();
    const body = this.body.clone();
    const groupId = typeof header.options.task_id === 'string' ? header.options.task_id : randomUUID();
    const rootId = typeof body.options.root_id === 'string' ? body.options.root_id : undefined;
    Object.assign(body.options, merged);
    const bodyResult = body.freeze({ taskId, rootId }) as ResultNode;
    // Chains and chords are not passed to the header tasks (Celery #3771).
    delete merged.chain;
    delete merged.chord;
    // Celery's _freeze_group_tasks also sets the header's own chord option (a frozen step may hold an older body).
    header.options.chord = body.toJSON();
    const memberResults = header.freezeMembers({ groupId, chord: body, rootId });
    let headerResult: GroupResult;
    if (header.tasks.length > 0) {
      headerResult = header.plan(plan, partial, kwargs, { ...merged, task_id: groupId });
      // Celery's Redis apply_chord: a header holding groups is saved so the body gets the nested structure.
      if (memberResults.some((r) => r instanceof GroupResult)) plan.groupsToSave.push(headerResult);
    } else {
      body.plan(plan, [[]], {}, {});
      headerResult = new GroupResult(groupId, memberResults as AsyncResult[], resultSource(plan.sender));
    }
    attachToFirst(bodyResult, headerResult);
    return bodyResult as CanvasResult<R>;
  }

  override toString(): string {
    return `chord(${this.header}, ${this.body})`;
  }
}

/** The first result without a parent (the body may be a chain) gets the header as parent. */
function attachToFirst(bodyResult: ResultNode, headerResult: ResultNode): void {
  const seen = new Set<string>();
  let node: ResultNode | null = bodyResult;
  while (node) {
    if (seen.has(node.id)) throw new Error('Recursive result parents');
    seen.add(node.id);
    if (!node.parent) {
      node.parent = headerResult;
      return;
    }
    node = node.parent;
  }
}

/**
 * `chord(header, body)`: run the header in parallel, then the body with the list
 * of their results. Celery's `chord`.
 */
export function chord<R>(header: Group | readonly Signature[], body: Signature<R>): Chord<R> {
  return new Chord<R>(header instanceof Group ? header : [...header], body);
}

canvasKinds.fromWire.set('chord', (wire, sender) => {
  const kw = (wire.kwargs ?? {}) as { header?: unknown; body?: WireSignature };
  const header = Array.isArray(kw.header)
    ? new Group(kw.header as WireSignature[], {}, sender)
    : kw.header && typeof kw.header === 'object'
      ? (Signature.fromWire(kw.header as WireSignature, sender) as Group)
      : new Group([], {}, sender);
  if (!kw.body) throw new TypeError('A chord signature needs kwargs.body.');
  return new Chord(header instanceof Group ? header : new Group([header], {}, sender), kw.body, structuredClone(wire.options ?? {}), sender, wire.args ?? []);
});
