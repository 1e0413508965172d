import { createTaskProducer, type ApplyOptions, type AsyncResult, type Celeriac, type Signature, type Task, type TaskProducer as CoreTaskProducer } from '@celeriac/core';
import { Inject, Injectable } from '@nestjs/common';
import { CELERIAC_MODULE_OPTIONS } from './celeriac.module-definition.js';
import type { CeleriacModuleOptions } from './celeriac.options.js';
import { createTaskHandles, type TaskHandles } from './task-handles.js';
import { CELERIAC_APP } from './tokens.js';

/**
 * Sends tasks from anywhere in the application. A singleton (injecting it never
 * makes a class request-scoped): each call reads the current HTTP request's id and
 * trace context from AsyncLocalStorage, which the module's interceptor fills, and
 * puts them in the task's headers (`currentTask().requestContext` in the worker).
 *
 * ```ts
 * constructor(private readonly tasks: TaskProducer) {}
 * const result = await this.tasks.send('py.tasks.resize', [imageId]);
 * ```
 */
@Injectable()
export class TaskProducer {
  private readonly producer: CoreTaskProducer;

  constructor(
    /** The app the module binds. */
    @Inject(CELERIAC_APP) readonly app: Celeriac,
    @Inject(CELERIAC_MODULE_OPTIONS) options: CeleriacModuleOptions,
  ) {
    this.producer = createTaskProducer(app, { headers: options.headers });
  }

  /** `task.delay(...args)` with the request context in the headers. */
  delay<A extends unknown[], R>(task: Task<A, R>, ...args: A): Promise<AsyncResult<Awaited<R>>> {
    return this.producer.delay(task, ...args);
  }

  /** `task.applyAsync(args, kwargs, options)` with the request context in the headers. */
  applyAsync<A extends unknown[], R>(task: Task<A, R>, args?: A, kwargs?: Record<string, unknown>, options?: ApplyOptions): Promise<AsyncResult<Awaited<R>>> {
    return this.producer.applyAsync(task, args, kwargs, options);
  }

  /** Send a task by name (e.g. one only a Python worker defines) with the request context in the headers. */
  send<R = unknown>(name: string, args?: readonly unknown[], kwargs?: Record<string, unknown>, options?: ApplyOptions): Promise<AsyncResult<R>> {
    return this.producer.send<R>(name, args, kwargs, options);
  }

  /** Send a signature, chain, group or chord (`chord([...], xsum.s())`) with the request context in every message. */
  applySignature<R>(signature: Signature<R>, options?: ApplyOptions): Promise<AsyncResult<R>> {
    return this.producer.applySignature(signature, options);
  }

  /** The headers a send made now would add (request id, trace context, hook headers). */
  contextHeaders(): Promise<Record<string, string>> {
    return this.producer.contextHeaders();
  }

  /** Typed senders for the `@Task()` methods of a provider class: `producer.tasksOf(MathService).mul.delay(2, 3)`. */
  tasksOf<T extends object>(providerClass: abstract new (...args: never[]) => T): TaskHandles<T> {
    return createTaskHandles(providerClass, this);
  }

  /** A handle on a task id (state, result). */
  result<R = unknown>(taskId: string): AsyncResult<R> {
    return this.app.AsyncResult<R>(taskId);
  }
}
