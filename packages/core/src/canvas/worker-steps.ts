/**
 * What a worker does with a finished task's canvas, as Celery 5.2's tracer and
 * Redis backend do it: callbacks (`link`), the next chain step (expanding a
 * group or chord step itself, as a Python worker does), chord counting and the
 * chord body, failure propagation down the chain, and errbacks (new-style ones
 * called inline with `(request, exc, traceback)`, old-style ones sent with the
 * failed task's id).
 */
import type { Celeriac } from '../app.js';
import type { ChordMember, ResultBackend, ResultTuple } from '../backends/backend.js';
import { ChordError } from '../errors.js';
import type { Logger } from '../logger.js';
import type { Embed, WireSignature } from '../protocol/message.js';
import { fromExceptionDocument, toExceptionDocument, tracebackOf } from '../protocol/exceptions.js';
import { pyRepr } from '../protocol/python-repr.js';
import { AsyncResult } from '../result.js';
import { PROPAGATE_STATES, States, type TaskState } from '../states.js';
import { resultDocument } from '../worker/result-document.js';
import { Group } from './group.js';
import { GroupResult, resultFromTuple } from './group-result.js';
import { Signature, type CanvasResult } from './signature.js';

/** The parts of a running task's request the canvas steps read. */
export interface CanvasRequest {
  readonly id: string;
  readonly name: string;
  readonly rootId: string;
  readonly groupId: string | null;
  readonly groupIndex: number | null;
  readonly embed: Embed;
}

/**
 * What a task's return value becomes (Celery's backend `prepare_value`): a result
 * handle (`AsyncResult`, `GroupResult`, e.g. of a canvas the task sent) is
 * returned as its `as_tuple()` form, `[[id, parent], children]`; anything else as is.
 */
export function returnedValue(retval: unknown): unknown {
  return retval instanceof AsyncResult ? retval.asTuple() : retval;
}

/** How a sent canvas appears in the parent's `children`. */
function trail(result: CanvasResult<unknown>): ResultTuple {
  return result instanceof GroupResult ? [[result.id, null], result.results.map((r) => [[r.id, null], r instanceof GroupResult ? r.asTuple()[1] : null])] : [[result.id, null], null];
}

/** Send the `link` callbacks with `retval` first; more than one go out as a group (Celery's tracer). */
export async function sendCallbacks(app: Celeriac, req: CanvasRequest, retval: unknown): Promise<ResultTuple[]> {
  const callbacks = req.embed.callbacks ?? [];
  if (callbacks.length === 0) return [];
  const options = { parentId: req.id, rootId: req.rootId };
  const sigs = callbacks.map((w) => Signature.fromWire(w, app));
  if (sigs.length === 1) return [trail(await sigs[0]!.applyAsync([retval], {}, options))];
  const children: ResultTuple[] = [];
  for (const g of sigs.filter((s) => s instanceof Group)) children.push(trail(await g.applyAsync([retval], {}, options)));
  const plain = sigs.filter((s) => !(s instanceof Group));
  if (plain.length) children.push(trail(await new Group(plain, {}, app).applyAsync([retval], {}, options)));
  return children;
}

/**
 * Send the next chain step with `retval` first and the rest of the chain. A step
 * that is a group or a chord is expanded here (its members sent), as a Python
 * worker does — never sent as a `celery.group` / `celery.chord` message.
 */
export async function sendNextStep(app: Celeriac, req: CanvasRequest, retval: unknown): Promise<ResultTuple[]> {
  const chain = req.embed.chain;
  if (!chain || chain.length === 0) return [];
  const next = Signature.fromWire(chain[chain.length - 1]!, app);
  const result = await next.applyAsync([retval], {}, { chain: chain.slice(0, -1), parentId: req.id, rootId: req.rootId });
  return [trail(result)];
}

/** Python's `repr()` of a stored exception: `ZeroDivisionError('division by zero')`. */
function exceptionRepr(result: unknown): string {
  const doc = (result ?? {}) as { exc_type?: unknown; exc_message?: unknown };
  if (typeof doc.exc_type !== 'string') return pyRepr(result);
  const args = Array.isArray(doc.exc_message) ? doc.exc_message : doc.exc_message === undefined ? [] : [doc.exc_message];
  return `${doc.exc_type}(${args.map((a) => pyRepr(a)).join(', ')})`;
}

/**
 * Count this header member (Celery's `on_chord_part_return`); the one call that
 * completes the chord sends the body with the results in header order, or fails
 * it with `ChordError` when a member failed.
 */
export async function chordPartReturn(
  app: Celeriac,
  log: Logger,
  part: { id: string; rootId: string; groupId: string | null; groupIndex: number | null; chord: WireSignature | null | undefined },
  state: TaskState,
  result: unknown,
): Promise<void> {
  if (!part.chord || !part.groupId) return;
  let backend: ResultBackend;
  try {
    backend = await app.getBackend();
  } catch (err) {
    log.error({ err, id: part.id }, `Chord member ${part.id} finished but there is no result backend to count it: the chord body will not run`);
    return;
  }
  if (!backend.onChordPartReturn) {
    log.error({ id: part.id }, `Chord member ${part.id}: the result backend ${backend.displayUrl} cannot count chords; the body will not run`);
    return;
  }
  const members = await backend.onChordPartReturn({ taskId: part.id, groupId: part.groupId, groupIndex: part.groupIndex, state, result });
  if (!members) return;
  await fireChord(app, log, backend, part, members);
}

async function fireChord(
  app: Celeriac,
  log: Logger,
  backend: ResultBackend,
  part: { id: string; rootId: string; groupId: string | null; chord: WireSignature | null | undefined },
  members: ChordMember[],
): Promise<void> {
  const callback = part.chord!;
  let values: unknown[];
  try {
    const saved = backend.restoreGroup ? await backend.restoreGroup(part.groupId!) : null;
    if (saved) {
      // A header holding groups was saved (Celery's apply_chord): join it for the nested structure.
      values = await (resultFromTuple(saved, app) as GroupResult).get();
    } else {
      values = members.map((m) => {
        if (PROPAGATE_STATES.has(m.state)) throw new ChordError(`Dependency ${m.taskId} raised ${exceptionRepr(m.result)}`);
        return m.result;
      });
    }
  } catch (err) {
    const error = err instanceof ChordError ? err : new ChordError(`Dependency raised ${err instanceof Error ? `${err.name}(${pyRepr(err.message)})` : pyRepr(err)}`);
    log.error({ group: part.groupId, err: error }, `Chord ${pyRepr(part.groupId)} raised: ${error.name}(${pyRepr(error.message)})`);
    await chordErrorFromStack(app, log, backend, callback, error);
    return;
  }
  try {
    await Signature.fromWire(callback, app).applyAsync([values], {}, { parentId: part.id, rootId: part.rootId });
  } catch (err) {
    log.error({ group: part.groupId, err }, `Chord callback for ${pyRepr(part.groupId)} raised: ${String(err)}`);
    await chordErrorFromStack(app, log, backend, callback, new ChordError(`Callback error: ${err instanceof Error ? `${err.name}(${pyRepr(err.message)})` : pyRepr(err)}`));
  }
}

/** Celery's `chord_error_from_stack`: run the body's errbacks, then store the body as FAILURE with `error`. */
export async function chordErrorFromStack(app: Celeriac, log: Logger, backend: ResultBackend, callback: WireSignature, error: Error): Promise<void> {
  const options = callback.options ?? {};
  const bodyId = typeof options.task_id === 'string' ? options.task_id : null;
  const errbacks = Array.isArray(options.link_error) ? (options.link_error as WireSignature[]) : options.link_error ? [options.link_error as WireSignature] : [];
  const fakeRequest: CanvasRequest & Record<string, unknown> = {
    id: bodyId ?? '',
    name: callback.task,
    rootId: (options.root_id as string | undefined) ?? bodyId ?? '',
    groupId: null,
    groupIndex: null,
    args: callback.args,
    kwargs: callback.kwargs,
    embed: { callbacks: null, errbacks, chain: null, chord: null },
  };
  // The errbacks sent are the failed body's children (Celery stores the running task's
  // children with it), so a caller can walk result.children to the errback's result.
  const children = await callErrbacks(app, log, fakeRequest, error, null);
  if (bodyId) await backend.storeResult(resultDocument({ id: bodyId, groupId: null, parentId: null }, States.FAILURE, toExceptionDocument(error), tracebackOf(error), children));
}

/**
 * Celery's `_call_task_errbacks`: an errback registered here whose function takes
 * more than one parameter is called inline with `(request, exc, traceback)`; the
 * others are sent together as a group with the failed task's id.
 */
export async function callErrbacks(app: Celeriac, log: Logger, req: CanvasRequest, error: unknown, traceback: string | null): Promise<ResultTuple[]> {
  const errbacks = req.embed.errbacks ?? [];
  if (errbacks.length === 0) return [];
  const oldStyle: Signature[] = [];
  for (const wire of errbacks) {
    const sig = Signature.fromWire(wire, app);
    const task = !sig.subtaskType && app.hasTask(sig.task) ? app.getTask(sig.task) : null;
    if (task && task.fn.length > 1) {
      try {
        await (task as unknown as (...a: unknown[]) => unknown)(req, error, traceback, ...sig.args);
      } catch (err) {
        log.error({ err, id: req.id }, `Errback ${sig.task} raised for task ${req.name}[${req.id}]`);
      }
    } else oldStyle.push(sig);
  }
  if (oldStyle.length === 0) return [];
  const result = await new Group(oldStyle, {}, app).applyAsync([req.id], {}, { parentId: req.id, rootId: req.rootId || req.id });
  return [trail(result)];
}

/**
 * Celery's `mark_as_failure` for a chain: every later step with an id is stored
 * as FAILURE with the same error (so waiting on the chain's result does not
 * hang), and a step that is a chord member is counted for its chord.
 */
export async function failRestOfChain(app: Celeriac, log: Logger, req: CanvasRequest, error: unknown, traceback: string | null, store: boolean): Promise<void> {
  const chain = req.embed.chain ?? [];
  if (chain.length === 0) return;
  const backend = await app.getBackend().catch(() => null);
  if (!backend) return;
  const exc = toExceptionDocument(error);
  for (const step of chain) {
    const o = step.options ?? {};
    const id = typeof o.task_id === 'string' ? o.task_id : null;
    const groupId = typeof o.group_id === 'string' ? o.group_id : null;
    if (store && id) await backend.storeResult(resultDocument({ id, groupId, parentId: (o.parent_id as string | undefined) ?? null }, States.FAILURE, exc, traceback));
    if (id && o.chord) {
      await chordPartReturn(app, log, { id, rootId: req.rootId, groupId, groupIndex: typeof o.group_index === 'number' ? o.group_index : null, chord: o.chord as WireSignature }, States.FAILURE, exc);
    }
  }
}

/** Turn a stored error document back into an Error (for errbacks of steps failed on another worker). */
export function errorFromDocument(doc: unknown, taskId: string): Error {
  return fromExceptionDocument(doc, null, taskId);
}
