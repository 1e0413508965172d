import type { Task, TaskOptions } from './task.js';

/** Options of the `@Task()` decorator: a task name plus any task option. */
export interface TaskDecoratorOptions extends TaskOptions<never[], unknown> {
  /** Registered name; default `<ClassName>.<method>`. Give an explicit one for cross-language use. */
  name?: string;
}

/** What `@Task()` records on a class. */
export interface TaskMethodMetadata {
  method: string;
  name: string;
  options: TaskOptions<never[], unknown>;
}

const TASK_METHODS = Symbol.for('celeriac.taskMethods');

/**
 * Mark a method as a task. Register the instance with `app.registerTasks(obj)`,
 * which returns typed handles: `tasks.mul.delay(2, 3)`.
 *
 * ```ts
 * class MathTasks {
 *   @Task('tasks.mul') mul(x: number, y: number) { return x * y; }
 * }
 * const tasks = celeriac.registerTasks(new MathTasks());
 * ```
 */
export function Task(nameOrOptions?: string | TaskDecoratorOptions): MethodDecorator {
  const { name, ...options } = typeof nameOrOptions === 'string' ? { name: nameOrOptions } : (nameOrOptions ?? {});
  const record = (ctor: TaskClass, method: string) => {
    const own = Object.prototype.hasOwnProperty.call(ctor, TASK_METHODS) ? ctor[TASK_METHODS]! : [...(ctor[TASK_METHODS] ?? [])];
    if (!own.some((m) => m.method === method)) own.push({ method, name: name ?? `${ctor.name}.${method}`, options });
    Object.defineProperty(ctor, TASK_METHODS, { value: own, configurable: true });
  };
  return ((target: object, keyOrContext: string | symbol | { kind: string; name: string | symbol; addInitializer(fn: () => void): void }) => {
    if (typeof keyOrContext === 'object') {
      // TC39 decorators (TypeScript without experimentalDecorators): record on first construction.
      keyOrContext.addInitializer(function (this: unknown) {
        record((this as object).constructor as TaskClass, String(keyOrContext.name));
      });
      return;
    }
    // Legacy decorators (experimentalDecorators, as NestJS uses).
    record((target as { constructor: TaskClass }).constructor, String(keyOrContext));
  }) as MethodDecorator;
}

type TaskClass = { [TASK_METHODS]?: TaskMethodMetadata[]; name: string };

/** The `@Task()` methods declared on an instance's class (and its parents). */
export function taskMethodsOf(instance: object): TaskMethodMetadata[] {
  const ctor = instance.constructor as { [TASK_METHODS]?: TaskMethodMetadata[] };
  return ctor[TASK_METHODS] ?? [];
}

/** Typed handles for every method of `T` (only decorated ones are registered). */
export type TaskMethods<T> = {
  [K in keyof T as T[K] extends (...args: never[]) => unknown ? K : never]: T[K] extends (...args: infer A) => infer R ? Task<A, R> : never;
};
