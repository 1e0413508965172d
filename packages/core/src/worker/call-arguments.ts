/**
 * How a message's `[args, kwargs]` become the arguments of a task function.
 * JavaScript has no keyword arguments, so a task declares what it does with them;
 * kwargs nobody declared fail the task with a `TypeError`, as calling a Python
 * function with an unexpected keyword argument does (and Celery stores that as
 * FAILURE), instead of being dropped silently.
 */
import type { TaskOptions } from '../task.js';

/** The task options that decide where kwargs go. */
export type KwargsOptions = Pick<TaskOptions, 'argNames' | 'trailingKwargs' | 'acceptKwargs'>;

const quoted = (keys: readonly string[]) => keys.map((k) => `'${k}'`).join(', ');

/**
 * Positional args, then kwargs named by `argNames` in their positions (when not
 * already given positionally), then — with `trailingKwargs` — the remaining kwargs
 * as one last object. Remaining kwargs are an error unless `trailingKwargs` or
 * `acceptKwargs` is set. Throws `TypeError` naming the task, the keys and the fix.
 */
export function callArguments(taskName: string, options: KwargsOptions, args: readonly unknown[], kwargs: Readonly<Record<string, unknown>>): unknown[] {
  // No kwargs (the usual message): nothing to place, nothing unexpected.
  if (isEmpty(kwargs)) return options.trailingKwargs ? [...args, {}] : [...args];
  const out = [...args];
  const rest: Record<string, unknown> = { ...kwargs };
  const duplicates: string[] = [];
  options.argNames?.forEach((name, i) => {
    if (!Object.prototype.hasOwnProperty.call(rest, name)) return;
    if (i < args.length) {
      duplicates.push(name);
      return;
    }
    out[i] = rest[name];
    delete rest[name];
  });
  for (let i = args.length; i < out.length; i++) if (!(i in out)) out[i] = undefined; // no holes
  if (options.trailingKwargs) {
    out.push(rest);
    return out;
  }
  if (options.acceptKwargs) return out;
  if (duplicates.length > 0) {
    throw new TypeError(
      `${taskName}() got multiple values for argument '${duplicates[0]}': it was given both positionally and as a keyword. ` +
        'Pass it one way only.',
    );
  }
  const unexpected = Object.keys(rest);
  if (unexpected.length > 0) {
    const what = unexpected.length === 1 ? `an unexpected keyword argument ${quoted(unexpected)}` : `unexpected keyword arguments ${quoted(unexpected)}`;
    const names = [...(options.argNames ?? []), ...unexpected.filter((k) => !options.argNames?.includes(k))];
    throw new TypeError(
      `${taskName}() got ${what}. A Celeriac task receives keyword arguments only when it declares them: ` +
        `argNames: [${quoted(names)}] (keywords fill those positional parameters), trailingKwargs: true ` +
        '(a last parameter receives the kwargs object), or acceptKwargs: true (the task reads this.kwargs).',
    );
  }
  return out;
}

function isEmpty(record: Readonly<Record<string, unknown>>): boolean {
  for (const key in record) if (Object.prototype.hasOwnProperty.call(record, key)) return false;
  return true;
}
