import type { TaskOptions } from '@celeriac/core';

/** Options of `@Task()`: the registered name plus any task option (queue, retries...). */
export interface NestTaskOptions extends TaskOptions<never[], unknown> {
  /**
   * The registered name, what every worker and language uses. Default
   * `<ClassName>.<method>`; give an explicit one for anything sent by name.
   */
  name?: string;
}

/** What `@Task()` recorded about one method. */
export interface TaskMethodRecord {
  /** The method's property name. */
  readonly method: string;
  /** The registered task name. */
  readonly name: string;
  readonly options: TaskOptions<never[], unknown>;
  /** The function `@Task()` saw: a decorator applied outside it that replaces the method leaves a different one on the prototype. */
  readonly seen: unknown;
  /** The prototype `@Task()` was applied to (the class declaring the method). */
  readonly owner: object;
}

/** Where the records live: on the class, under a process-wide symbol (one key for the ESM and CommonJS builds). */
const TASK_RECORDS = Symbol.for('celeriac.nest.taskMethods');

type Recorded = { [TASK_RECORDS]?: Map<string, TaskMethodRecord> };

/**
 * Mark a method of an `@Injectable()` provider as a task. The module discovers it
 * at start-up and registers it on the app; a worker calls the method on the
 * instance Nest built, with its injected dependencies.
 *
 * List `@Task()` first, above every other method decorator (it must be the
 * outermost): start-up fails, naming the class and method, when a decorator
 * applied outside it replaced the method.
 *
 * ```ts
 * @Injectable()
 * export class MathService {
 *   constructor(private readonly audit: AuditService) {}
 *   @Task({ name: 'math.mul' })
 *   mul(x: number, y: number) { this.audit.record('mul'); return x * y; }
 * }
 * ```
 */
export function Task(options: NestTaskOptions = {}): MethodDecorator {
  const { name, ...taskOptions } = options;
  return (target, key, descriptor) => {
    if (typeof key === 'object' || descriptor === undefined || typeof descriptor !== 'object') {
      throw new TypeError('@Task() from @celeriac/nest needs legacy decorators: set "experimentalDecorators": true and "emitDecoratorMetadata": true in tsconfig.json (as every NestJS app does).');
    }
    if (typeof key === 'symbol') throw new TypeError(`@Task() cannot mark the symbol-named method ${String(key)}: give the task method a string name.`);
    if (typeof descriptor.value !== 'function') throw new TypeError(`@Task() marks methods; ${nameOfTarget(target)}.${key} is not a method.`);
    const ctor = (target as { constructor: Recorded & { name: string } }).constructor;
    const own = Object.prototype.hasOwnProperty.call(ctor, TASK_RECORDS) ? ctor[TASK_RECORDS]! : new Map(ctor[TASK_RECORDS] ?? []);
    own.set(key, { method: key, name: name ?? `${ctor.name}.${key}`, options: taskOptions, seen: descriptor.value, owner: target });
    Object.defineProperty(ctor, TASK_RECORDS, { value: own, configurable: true });
  };
}

/** The `@Task()` methods of a class (its own and inherited ones). */
export function taskMethodsOfClass(ctor: Function): TaskMethodRecord[] {
  return [...((ctor as Recorded)[TASK_RECORDS]?.values() ?? [])];
}

function nameOfTarget(target: object): string {
  return (target as { constructor?: { name?: string } }).constructor?.name ?? 'the class';
}
