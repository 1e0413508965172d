import { Inject, type Provider } from '@nestjs/common';
import { createTaskHandles } from './task-handles.js';
import { TaskProducer } from './task-producer.js';

/** Token per provider class whose task handles someone injects. */
const tokens = new Map<Function, symbol>();

/** The injection token of `@InjectTasks(providerClass)` (for `overrideProvider` in tests). */
export function getTasksToken(providerClass: Function): symbol {
  let token = tokens.get(providerClass);
  if (!token) tokens.set(providerClass, (token = Symbol(`celeriac:tasks:${providerClass.name}`)));
  return token;
}

/**
 * Inject typed senders for the `@Task()` methods of a provider class; each send
 * goes through `TaskProducer`, so the current request's context travels with it.
 *
 * ```ts
 * constructor(@InjectTasks(MathService) private readonly math: TaskHandles<MathService>) {}
 * const result = await this.math.mul.delay(2, 3); // AsyncResult<number>
 * ```
 */
export function InjectTasks(providerClass: Function): PropertyDecorator & ParameterDecorator {
  return Inject(getTasksToken(providerClass));
}

/** Providers for every class named by `@InjectTasks()` so far (read when Nest scans the module). */
export function taskHandleProviders(): Provider[] {
  return [...tokens].map(([providerClass, token]) => ({
    provide: token,
    useFactory: (producer: TaskProducer) => createTaskHandles(providerClass, producer),
    inject: [TaskProducer],
  }));
}

/** The tokens `taskHandleProviders()` provides. */
export function taskHandleTokens(): symbol[] {
  return [...tokens.values()];
}
