/**
 * `this.replace(sig)` and `this.addToChord(sig)` inside a running task, as
 * Celery 5.2's `Task.replace` and `Task.add_to_chord` do them.
 */
import type { Celeriac } from '../app.js';
import { ConfigurationError, Ignore } from '../errors.js';
import type { Embed, WireSignature } from '../protocol/message.js';
import { Chain } from './chain.js';
import { Chord } from './chord.js';
import { Group } from './group.js';
import { Signature, type CanvasResult } from './signature.js';

/** The parts of the running request that replacing reads. */
export interface ReplaceableRequest {
  readonly id: string;
  readonly rootId: string;
  readonly groupId: string | null;
  readonly groupIndex: number | null;
  readonly embed: Embed;
  readonly replacedTaskNesting: number;
}

/** A ConfigurationError a Python caller reads as Celery's `celery.exceptions.ImproperlyConfigured`, as Task.replace raises. */
function improperlyConfigured(message: string): ConfigurationError {
  return Object.assign(new ConfigurationError(message), { excModule: 'celery.exceptions', excType: 'ImproperlyConfigured' });
}

/**
 * Send `sig` in place of the running task: it takes over the task's id, its
 * callbacks and errbacks, its group / chord membership and the rest of its chain;
 * then the run ends with `Ignore` (nothing is stored for it: the replacement
 * stores the result under the same id). A group becomes a chord whose body
 * (`celery.accumulate`) returns the group's list.
 */
export async function replaceTask(app: Celeriac, req: ReplaceableRequest, replacement: Signature): Promise<never> {
  if ('chord' in replacement.options) throw improperlyConfigured('A signature replacing a task must not be part of a chord');
  if (replacement instanceof Chain && replacement.tasks.length === 0) throw improperlyConfigured('Cannot replace with an empty chain');
  let sig: Signature = replacement.clone();
  if (sig instanceof Group) sig = new Chord(sig, app.signature('celery.accumulate', [], { index: 0 }), {}, app);
  for (const cb of req.embed.callbacks ?? []) sig.appendToListOption('link', cb);
  for (const eb of req.embed.errbacks ?? []) sig.appendToListOption('link_error', eb);
  // A chain's callbacks go down to its last step, so they still run at its end once the
  // rest of the replaced task's chain is appended below (Celery's Task.replace).
  if (sig instanceof Chain && sig.tasks.length && sig.options.link) {
    const links = sig.options.link;
    for (const cb of Array.isArray(links) ? links : [links]) sig.tasks[sig.tasks.length - 1]!.appendToListOption('link', cb as WireSignature);
  }
  sig.freeze({ taskId: req.id });
  Object.assign(sig.options, {
    chord: req.embed.chord ?? null,
    group_id: req.groupId,
    group_index: req.groupIndex,
    root_id: req.rootId,
    replaced_task_nesting: req.replacedTaskNesting + 1,
  });
  const rest = req.embed.chain ?? [];
  if (rest.length) {
    // Celery's `sig |= signature(t)` per remaining step: a chain is unchained (its
    // link_error copied to every step), so neither its callbacks nor errbacks are lost.
    const steps = sig instanceof Chain ? sig.unchainTasks() : [sig];
    sig = new Chain([...steps, ...[...rest].reverse().map((w: WireSignature) => Signature.fromWire(w, app))], {}, app);
  }
  await sig.delay();
  throw new Ignore('Replaced by new task');
}

/**
 * Add `sig` to the chord the running task belongs to (Celery's `add_to_chord`):
 * the chord then waits for it too, and its result is in the body's list. Sends
 * it unless `lazy` (then returns it, to be sent by the caller).
 */
export async function addToChord(app: Celeriac, req: ReplaceableRequest, sig: Signature, lazy = false): Promise<CanvasResult<unknown> | Signature> {
  if (!req.embed.chord || !req.groupId) throw new TypeError('Current task is not member of any chord');
  const added = sig.set({ group_id: req.groupId, group_index: req.groupIndex, chord: req.embed.chord, root_id: req.rootId });
  added.freeze();
  const backend = await app.getBackend();
  if (!backend.addToChord) throw new ConfigurationError(`The result backend ${backend.displayUrl} cannot add tasks to a running chord.`);
  await backend.addToChord(req.groupId);
  return lazy ? added : added.delay();
}
