import { ConfigurationError, type Celeriac, type TaskContext } from '@celeriac/core';
import { Inject, Injectable, Logger, type OnApplicationShutdown, type OnModuleInit } from '@nestjs/common';
import { ContextIdFactory, DiscoveryService, MetadataScanner, ModuleRef } from '@nestjs/core';
import { taskMethodsOfClass, type TaskMethodRecord } from './task.decorator.js';
import { CELERIAC_APP } from './tokens.js';

type ProviderWrapper = ReturnType<DiscoveryService['getProviders']>[number];
type Invoke = (ctx: TaskContext, args: unknown[]) => unknown;

/** Per app: task name → what runs it now. Nest re-binds names when the app is bootstrapped again (tests). */
const invokers = new WeakMap<Celeriac, Map<string, Invoke>>();

/** Thrown at start-up when a decorator listed above `@Task()` replaced the method. */
export class MisplacedTaskDecoratorError extends ConfigurationError {
  override name = 'MisplacedTaskDecoratorError';
}

/**
 * Finds the `@Task()` methods of every provider (DiscoveryService + MetadataScanner)
 * and registers them on the app. Static providers run on the instance Nest built;
 * request-scoped and durable ones are resolved per task run, with the task's
 * context registered as the request (`TASK_REF`).
 */
@Injectable()
export class TaskExplorer implements OnModuleInit, OnApplicationShutdown {
  private readonly log = new Logger('Celeriac');
  /** Task name → `Class.method`, for the tasks this module registered. */
  private readonly bound = new Map<string, string>();
  private readonly mine = new Map<string, Invoke>();

  constructor(
    private readonly discovery: DiscoveryService,
    private readonly scanner: MetadataScanner,
    private readonly moduleRef: ModuleRef,
    @Inject(CELERIAC_APP) private readonly app: Celeriac,
  ) {}

  onModuleInit(): void {
    this.registerAll();
  }

  /** The task names this module registered, with the `Class.method` behind each. */
  get tasks(): ReadonlyMap<string, string> {
    return this.bound;
  }

  /** Discover and register every `@Task()` method. Idempotent. */
  registerAll(): void {
    const seenClasses = new Set<Function>();
    for (const wrapper of this.discovery.getProviders()) {
      const instance = wrapper.instance as object | null | undefined;
      if (!instance || typeof instance !== 'object' || wrapper.isAlias) continue;
      const ctor = instance.constructor;
      if (typeof ctor !== 'function' || seenClasses.has(ctor)) continue;
      const records = taskMethodsOfClass(ctor);
      if (records.length === 0) continue;
      seenClasses.add(ctor);
      const methods = new Set(this.scanner.getAllMethodNames(Object.getPrototypeOf(instance) as object));
      for (const record of records) {
        checkOutermost(ctor, record);
        if (!methods.has(record.method)) continue;
        this.register(record, ctor, wrapper, instance);
      }
    }
  }

  private register(record: TaskMethodRecord, ctor: Function, wrapper: ProviderWrapper, instance: object): void {
    const where = `${ctor.name}.${record.method}`;
    const already = this.bound.get(record.name);
    if (already === where) return;
    if (already) throw new ConfigurationError(`Task ${JSON.stringify(record.name)} is declared twice, by ${already} and ${where}: give one of them another name in @Task({ name }).`);
    const invoke = wrapper.isDependencyTreeStatic() ? staticInvoker(instance, record.method) : this.perRunInvoker(wrapper, record.method);
    let table = invokers.get(this.app);
    if (!table) invokers.set(this.app, (table = new Map()));
    const app = this.app;
    if (!this.app.hasTask(record.name)) {
      const name = record.name;
      this.app.task(
        name,
        function (this: TaskContext, ...args: unknown[]) {
          const run = invokers.get(app)?.get(name);
          if (!run) throw new ConfigurationError(`Task ${JSON.stringify(name)} is not bound to a NestJS provider (its application was closed).`);
          return run(this, args);
        },
        record.options,
      );
    } else if (!table.has(record.name)) {
      throw new ConfigurationError(`Task ${JSON.stringify(record.name)} (${where}) is already registered on app "${this.app.name}" outside NestJS: rename one of them.`);
    }
    table.set(record.name, invoke);
    this.mine.set(record.name, invoke);
    this.bound.set(record.name, where);
    this.log.debug(`Registered task ${record.name} → ${where}${wrapper.isDependencyTreeStatic() ? '' : ' (resolved per run)'}`);
  }

  /** Resolve the provider for each run in its own context id, with the task context as the request. */
  private perRunInvoker(wrapper: ProviderWrapper, method: string): Invoke {
    return async (ctx, args) => {
      const contextId = ContextIdFactory.getByRequest(ctx);
      this.moduleRef.registerRequestByContextId(ctx, contextId);
      const resolved = (await this.moduleRef.resolve(wrapper.token, contextId, { strict: false })) as Record<string, (...a: unknown[]) => unknown>;
      return resolved[method]!(...args);
    };
  }

  onApplicationShutdown(): void {
    const table = invokers.get(this.app);
    for (const [name, invoke] of this.mine) if (table?.get(name) === invoke) table.delete(name);
    this.mine.clear();
  }
}

function staticInvoker(instance: object, method: string): Invoke {
  const target = instance as Record<string, (...a: unknown[]) => unknown>;
  return (_ctx, args) => target[method]!(...args);
}

/** `@Task()` must be the outermost method decorator: the prototype must still hold the function it saw. */
function checkOutermost(ctor: Function, record: TaskMethodRecord): void {
  const current = Object.getOwnPropertyDescriptor(record.owner, record.method)?.value;
  if (current === record.seen) return;
  const cls = (record.owner as { constructor?: { name?: string } }).constructor?.name ?? ctor.name;
  throw new MisplacedTaskDecoratorError(
    `@Task() on ${cls}.${record.method} is not the outermost decorator: a decorator listed above it replaced the method, ` +
      `so the task would run the wrong function. Move @Task() to the top of ${cls}.${record.method}'s decorator list (listed first, above every other method decorator).`,
  );
}
