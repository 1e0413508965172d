import type { ApplyOptions, AsyncResult, Celeriac, Signature, Task } from '@celeriac/core';
import { taskMethodsOfClass } from './task.decorator.js';

/** A sender for one `@Task()` method, going through `TaskProducer` (so the request context travels). */
export interface TaskHandle<A extends unknown[], R> {
  /** The registered task name. */
  readonly taskName: string;
  /** Send with positional arguments. */
  delay(...args: A): Promise<AsyncResult<R>>;
  /** Send with arguments, keyword arguments and options (queue, countdown, headers...). */
  applyAsync(args?: A, kwargs?: Record<string, unknown>, options?: ApplyOptions): Promise<AsyncResult<R>>;
  /** A signature for canvas (`chord([math.mul.s(2, 2)], math.total.s())`); as a callback it receives the parent's result first. */
  s(...args: unknown[]): Signature<R>;
}

/**
 * Typed senders for the methods of a provider class, mirroring core's
 * `registerTasks`: `math.mul.delay(2, 3)` is `Promise<AsyncResult<number>>`.
 * Only `@Task()` methods exist at run time; using another method of the class
 * throws a clear error.
 */
export type TaskHandles<T> = {
  readonly [K in keyof T as T[K] extends (...args: never[]) => unknown ? K : never]: T[K] extends (...args: infer A) => infer R ? TaskHandle<A, Awaited<R>> : never;
};

/** What the handles need from `TaskProducer`. */
interface Sender {
  readonly app: Celeriac;
  applyAsync<A extends unknown[], R>(task: Task<A, R>, args?: A, kwargs?: Record<string, unknown>, options?: ApplyOptions): Promise<AsyncResult<Awaited<R>>>;
  send<R>(name: string, args?: readonly unknown[], kwargs?: Record<string, unknown>, options?: ApplyOptions): Promise<AsyncResult<R>>;
}

/** Build the handles of `providerClass` from its `@Task()` records. */
export function createTaskHandles<T extends object>(providerClass: Function, sender: Sender): TaskHandles<T> {
  const handles: Record<string, TaskHandle<unknown[], unknown>> = {};
  for (const { method, name } of taskMethodsOfClass(providerClass)) {
    // A registered task (this process discovered it) keeps its options (trailingKwargs, queue); else send by name.
    const applyAsync = (args: unknown[] = [], kwargs?: Record<string, unknown>, options?: ApplyOptions) =>
      sender.app.hasTask(name) ? sender.applyAsync(sender.app.getTask(name) as Task<unknown[], unknown>, args, kwargs, options) : sender.send(name, args, kwargs, options);
    handles[method] = { taskName: name, delay: (...args: unknown[]) => applyAsync(args), applyAsync, s: (...args: unknown[]) => sender.app.signature(name, args) };
  }
  return new Proxy(handles, {
    get(target, key) {
      if (typeof key === 'symbol' || key in target || typeof (providerClass.prototype as Record<string, unknown>)[key] !== 'function') return target[key as string];
      // A method of the class without @Task(): the type allows the call, so say why it fails.
      throw new TypeError(`${providerClass.name}.${key} is not a @Task() method, so it cannot be sent; mark it with @Task() (listed first among its decorators).`);
    },
  }) as unknown as TaskHandles<T>;
}
