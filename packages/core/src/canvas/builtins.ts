/**
 * Celery's built-in tasks, registered on every Celeriac worker so Python callers
 * (and Celeriac's own `map` / `starmap` / `chunks`) find them: `celery.map`,
 * `celery.starmap`, `celery.chunks`, `celery.chord_unlock`, `celery.group`,
 * `celery.chain`, `celery.chord`, `celery.accumulate`, `celery.backend_cleanup`.
 */
import type { Celeriac } from '../app.js';
import { ChordError } from '../errors.js';
import type { WireSignature } from '../protocol/message.js';
import { pyRepr } from '../protocol/python-repr.js';
import type { TaskContext } from '../task-context.js';
import { Chord } from './chord.js';
import { Group } from './group.js';
import { GroupResult, resultFromTuple } from './group-result.js';
import { Chunks } from './map.js';
import { Signature } from './signature.js';
import { chordErrorFromStack } from './worker-steps.js';

type Kwargs = Record<string, unknown>;

/** The registered task a `celery.map` / `celery.starmap` signature names, called in this process. */
function localTask(app: Celeriac, task: WireSignature): (...args: unknown[]) => unknown {
  const name = (task as { task?: unknown }).task;
  if (typeof name !== 'string') throw new TypeError(`celery.map/starmap: "task" must be a signature dict, got ${pyRepr(task)}.`);
  return app.getTask(name) as unknown as (...args: unknown[]) => unknown;
}

function list(value: unknown, what: string): unknown[] {
  if (!Array.isArray(value)) throw new TypeError(`${what} must be a list, got ${pyRepr(value)}.`);
  return value;
}

/**
 * The built-ins that send messages or read results (`celery.chunks`,
 * `celery.group`, `celery.chord`, `celery.chord_unlock`). The thread and process
 * pools run these in the worker itself, which holds the broker and backend
 * connections; the others (`celery.map`, `celery.accumulate`, ...) compute, and run
 * in a pool member like any task.
 */
export const CANVAS_BUILTINS_THAT_SEND: ReadonlySet<string> = new Set(['celery.chunks', 'celery.group', 'celery.chord', 'celery.chord_unlock']);

/** Register the built-ins on `app` (skipping any the app already has). */
export function registerCanvasBuiltins(app: Celeriac): void {
  const add = (name: string, fn: (this: TaskContext, ...args: never[]) => unknown, options: Parameters<Celeriac['task']>[2] = {}) => {
    if (!app.hasTask(name)) app.task(name, fn as (this: TaskContext, ...args: unknown[]) => unknown, options);
  };

  add(
    'celery.map',
    async (task: WireSignature, it: unknown[]) => {
      const fn = localTask(app, task);
      const out: unknown[] = [];
      for (const item of list(it, 'celery.map: "it"')) out.push(await fn(item));
      return out;
    },
    { argNames: ['task', 'it'] },
  );

  add(
    'celery.starmap',
    async (task: WireSignature, it: unknown[]) => {
      const fn = localTask(app, task);
      const out: unknown[] = [];
      for (const item of list(it, 'celery.starmap: "it"')) out.push(await fn(...list(item, 'celery.starmap: each item')));
      return out;
    },
    { argNames: ['task', 'it'] },
  );

  add(
    'celery.chunks',
    async (task: WireSignature, it: unknown[][], n: number) => {
      const result = await Chunks.fromKwargs({ task, it, n }, app).applyAsync();
      return result.asTuple();
    },
    { argNames: ['task', 'it', 'n'] },
  );

  add(
    'celery.group',
    async (tasks: WireSignature[], result: unknown, groupId: string, partialArgs: unknown[] = []) => {
      const sigs = list(tasks, 'celery.group: "tasks"').map((t) => Signature.fromWire(t as WireSignature, app).clone(partialArgs));
      for (const sig of sigs) await sig.applyAsync([], {}, { groupId });
      return result;
    },
    { argNames: ['tasks', 'result', 'group_id', 'partial_args', 'add_to_parent'], acceptKwargs: true },
  );

  add(
    'celery.chain',
    () => {
      throw new Error('chain is not a real task');
    },
    { acceptKwargs: true },
  );

  add(
    'celery.chord',
    async (header: unknown, body: WireSignature, partialArgs: unknown[] = []) => {
      const tasks = Array.isArray(header) ? (header as WireSignature[]) : ((header as WireSignature)?.kwargs?.tasks as WireSignature[]) ?? [];
      const result = await new Chord(new Group(tasks, {}, app), Signature.fromWire(body, app), {}, app).applyAsync(partialArgs);
      return result.id;
    },
    { argNames: ['header', 'body', 'partial_args'], acceptKwargs: true },
  );

  add(
    'celery.accumulate',
    function (this: TaskContext, ...args: unknown[]) {
      const index = this.kwargs.index;
      return typeof index === 'number' ? args[index] : args;
    },
    { acceptKwargs: true },
  );

  add('celery.backend_cleanup', () => null);

  add(
    'celery.chord_unlock',
    async function (this: TaskContext, groupId: string, callback: WireSignature, ...rest: unknown[]) {
      const kw = this.kwargs as Kwargs;
      const interval = (kw.interval as number | null | undefined) ?? (rest[0] as number | undefined) ?? 1;
      const maxRetries = (kw.max_retries as number | null | undefined) ?? null;
      const tuples = (kw.result as unknown[] | undefined) ?? (rest[2] as unknown[] | undefined) ?? [];
      const deps = new GroupResult(groupId, tuples.map((t) => resultFromTuple(t, app)), app);
      if (!(await deps.ready())) return this.retry({ countdown: interval, maxRetries });
      const backend = await app.getBackend();
      let values: unknown[];
      try {
        values = await deps.get();
      } catch (err) {
        const culprit = (err as { taskId?: string }).taskId;
        const reason = culprit ? `Dependency ${culprit} raised ${(err as Error).name}(${pyRepr((err as Error).message)})` : String(err);
        await chordErrorFromStack(app, app.logger, backend, callback, new ChordError(reason));
        return null;
      }
      try {
        await Signature.fromWire(callback, app).applyAsync([values]);
      } catch (err) {
        await chordErrorFromStack(app, app.logger, backend, callback, new ChordError(`Callback error: ${String(err)}`));
      }
      return null;
    },
    { acceptKwargs: true, maxRetries: null, ignoreResult: true },
  );
}
