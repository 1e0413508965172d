import type { WireSignature } from '../protocol/message.js';
import type { ResultNode } from '../result.js';
import { Chord } from './chord.js';
import { Group } from './group.js';
import type { SendPlan } from './plan.js';
import { canvasKinds, Signature, type CanvasResult, type FreezeOptions, type SignatureSender } from './signature.js';
import type { WireOptions } from './wire-options.js';

/** The result type of the last signature of a list. */
export type LastResult<S extends readonly Signature[]> = S extends readonly [...Signature[], Signature<infer R>] ? R : unknown;

/**
 * Tasks run one after another, each receiving the previous result first unless
 * immutable (Celery's `chain`, or `a.pipe(b)` for `a | b`). Only the first task
 * is sent; the rest travel in its message's `embed.chain`, reversed, exactly as
 * protocol v2 carries them, so any Celery or Celeriac worker can run any step.
 * The result is the last step's, and `parent` walks back through every step.
 */
export class Chain<R = unknown> extends Signature<R> {
  /** The steps, in running order. */
  readonly tasks: Signature[];

  constructor(tasks: readonly (Signature | WireSignature)[], options: WireOptions = {}, sender?: SignatureSender, args: readonly unknown[] = [], immutable = false) {
    const sigs = tasks.map((t) => (t instanceof Signature ? t : Signature.fromWire(t, sender)));
    super('celery.chain', args, {}, options, immutable, 'chain', sender ?? sigs.find((t) => t.sender)?.sender);
    this.tasks = sigs;
  }

  override toJSON(): WireSignature {
    const base = super.toJSON();
    return { ...base, kwargs: { tasks: this.tasks.map((t) => t.toJSON()) } };
  }

  protected override rebuild(args: readonly unknown[], _kwargs: Record<string, unknown>, options: WireOptions, immutable: boolean): Signature<R> {
    return new Chain<R>(
      this.tasks.map((t) => t.clone()),
      options,
      this.sender,
      args,
      immutable,
    );
  }

  override clone(args: readonly unknown[] = [], kwargs: Record<string, unknown> = {}, options: WireOptions = {}): Chain<R> {
    const [a, , o] = this.merge(args, kwargs, options);
    return new Chain<R>(
      this.tasks.map((t) => t.clone()),
      JSON.parse(JSON.stringify(o)) as WireOptions,
      this.sender,
      a,
      this.immutable,
    );
  }

  /**
   * Celery's `unchain_tasks`: copies of the steps, each given the chain's own
   * `link_error`s, for splicing this chain into another (`a | b`, `replace`)
   * where the chain's options no longer exist.
   */
  unchainTasks(): Signature[] {
    const tasks = this.tasks.map((t) => t.clone());
    const errbacks = this.options.link_error;
    for (const eb of Array.isArray(errbacks) ? errbacks : errbacks ? [errbacks] : []) {
      for (const t of tasks) t.appendToListOption('link_error', eb as WireSignature);
    }
    return tasks;
  }

  // link / link_error stay in the chain's own options, as in Celery: sending puts `link` on the
  // last step and `link_error` on every step after freezing them (where Celery's wire has it).

  /** Celery's `chain.freeze`: every step gets its id, in place; the last step's result (with `parent`s). */
  override freeze(opts: FreezeOptions = {}): CanvasResult<R> {
    const [, results] = prepareSteps(this, [], {}, this.tasks, { ...opts, lastTaskId: opts.taskId, clone: false });
    return results[0] as CanvasResult<R>;
  }

  override plan(plan: SendPlan, args: readonly unknown[], kwargs: Record<string, unknown>, options: WireOptions): CanvasResult<R> {
    const opts: WireOptions = { ...this.options };
    for (const [k, v] of Object.entries(options)) if (v !== undefined && v !== null) opts[k] = v;
    const { task_id, group_id, chord, link, link_error, root_id, parent_id, group_index, ...rest } = opts;
    const partial = args.length && !this.immutable ? [...args, ...this.args] : [...this.args];
    const [tasks, results] = prepareSteps(this, partial, kwargs, this.tasks, {
      rootId: root_id as string | undefined,
      parentId: parent_id as string | undefined,
      linkError: link_error as unknown[] | undefined,
      lastTaskId: task_id as string | undefined,
      groupId: group_id as string | undefined,
      chord: chord as WireSignature | undefined,
      groupIndex: group_index as number | undefined,
      clone: true,
    });
    if (results.length === 0) throw new TypeError('Cannot send an empty chain.');
    if (link) for (const l of Array.isArray(link) ? link : [link]) tasks[0]!.appendToListOption('link', l as WireSignature);
    const first = tasks.pop()!;
    // Celery's _prepare_chain_from_options: a chain already given (this chain is a step of another) runs after ours.
    const chain = [...((rest.chain as WireSignature[] | undefined) ?? []), ...tasks.map((t) => t.toJSON())];
    const firstOptions: WireOptions = { ...rest, chain };
    if (parent_id) firstOptions.parent_id = parent_id;
    const sent = first.plan(plan, [], {}, firstOptions);
    return (tasks.length === 0 ? sent : results[0]) as CanvasResult<R>;
  }

  override toString(): string {
    return this.tasks.map(String).join(' | ');
  }
}

interface StepOptions {
  rootId?: string;
  parentId?: string;
  linkError?: unknown[];
  lastTaskId?: string;
  groupId?: string;
  chord?: Signature | WireSignature;
  groupIndex?: number | null;
  clone: boolean;
}

/**
 * Celery's `chain.prepare_steps`: walk the steps from the last, splice nested
 * chains, turn a group followed by a step into a chord, freeze every step (the
 * last one with the chain's id, group and chord), link each result to its parent.
 * Returns the steps and results in reverse running order (the message's `chain`).
 */
function prepareSteps(owner: Chain, args: readonly unknown[], kwargs: Record<string, unknown>, steps: readonly Signature[], o: StepOptions): [Signature[], ResultNode[]] {
  const queue = [...steps];
  const tasks: Signature[] = [];
  const results: ResultNode[] = [];
  let prevTask: Signature | null = null;
  let prevRes: ResultNode | null = null;
  let i = 0;
  while (queue.length) {
    let task: Signature = queue.pop()!;
    const isFirst = queue.length === 0;
    const isLast = i === 0;
    if (task instanceof Group && task.tasks.length === 1) task = task.tasks[0]!; // maybe_unroll_group
    if (o.clone) task = isFirst ? task.clone(args, kwargs) : task.clone();
    else if (isFirst && args.length) task = task.clone(args, kwargs);
    if (task instanceof Chain) {
      queue.push(...task.tasks);
      continue;
    }
    if (task instanceof Group && prevTask) {
      tasks.pop();
      results.pop();
      const bodyId = prevRes && !(prevRes instanceof Object && 'results' in prevRes) ? prevRes.id : undefined;
      task = new Chord(task, prevTask, { ...(bodyId ? { task_id: bodyId } : {}), ...(o.rootId ? { root_id: o.rootId } : {}) }, owner.sender);
    }
    const res = (
      isLast
        ? task.freeze({ taskId: o.lastTaskId, rootId: o.rootId, groupId: o.groupId, chord: o.chord, groupIndex: o.groupIndex })
        : task.freeze({ rootId: o.rootId })
    ) as ResultNode;
    i++;
    if (prevTask && prevRes && !prevRes.parent) prevRes.parent = res;
    for (const eb of o.linkError ?? []) task.appendToListOption('link_error', eb as WireSignature);
    tasks.push(task);
    results.push(res);
    prevTask = task;
    prevRes = res;
    if (task instanceof Chord) {
      let node: ResultNode = res;
      while (node.parent) node = node.parent;
      prevRes = node;
    }
  }
  // The caller keeps the frozen steps: freeze (clone false) must leave ids on the chain's own steps.
  if (!o.clone) owner.tasks.splice(0, owner.tasks.length, ...[...tasks].reverse());
  return [tasks, results];
}

/**
 * `chain(add.s(2, 2), add.s(4), add.s(8))`: each step gets the previous result
 * first. The result type is the last step's. Celery's `chain`.
 */
export function chain<S extends Signature[]>(...tasks: S | [S]): Chain<LastResult<S>> {
  const list = (tasks.length === 1 && Array.isArray(tasks[0]) ? tasks[0] : tasks) as Signature[];
  return new Chain<LastResult<S>>(list);
}

canvasKinds.fromWire.set('chain', (wire, sender) => {
  const kw = (wire.kwargs ?? {}) as { tasks?: unknown };
  const tasks = Array.isArray(kw.tasks) ? (kw.tasks as WireSignature[]) : [];
  return new Chain(tasks, structuredClone(wire.options ?? {}), sender, wire.args ?? [], wire.immutable === true);
});

/** Celery's `|` between any two signatures. */
canvasKinds.pipe = (left, right) => {
  if (left instanceof Chord && !(right instanceof Group) && !(right instanceof Chain)) {
    // chord | task: attach to the body
    const copy = left.clone();
    return new Chord(copy.header, copy.body.pipe(right), copy.options, copy.sender);
  }
  if (left instanceof Group) return new Chord(left, right, {}, left.sender ?? right.sender);
  if (left instanceof Chain) {
    const steps = left.unchainTasks();
    if (right instanceof Chain) return new Chain([...steps, ...right.unchainTasks()], {}, left.sender);
    if (!(right instanceof Group)) {
      const last = steps[steps.length - 1];
      if (last instanceof Group) {
        steps[steps.length - 1] = new Chord(last, right, {}, left.sender);
        return new Chain(steps, {}, left.sender);
      }
      if (last instanceof Chord) {
        steps[steps.length - 1] = new Chord(last.header, last.body.pipe(right), last.options, left.sender);
        return new Chain(steps, {}, left.sender);
      }
    }
    return new Chain([...steps, right], {}, left.sender);
  }
  if (right instanceof Chain) return new Chain([left, ...right.unchainTasks()], {}, left.sender ?? right.sender);
  return new Chain([left, right], {}, left.sender ?? right.sender);
};
