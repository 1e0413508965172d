import { bindApp, createApp, type Celeriac } from '@celeriac/core';
import { Module, type DynamicModule, type Provider } from '@nestjs/common';
import { APP_FILTER, APP_INTERCEPTOR, DiscoveryModule } from '@nestjs/core';
import { BrokerUnavailableFilter } from './broker-unavailable.filter.js';
import { CeleriacWorker } from './celeriac-worker.js';
import { CELERIAC_ASYNC_OPTIONS_TYPE, CELERIAC_MODULE_OPTIONS, CELERIAC_OPTIONS_TYPE, CeleriacConfigurableModule } from './celeriac.module-definition.js';
import type { CeleriacModuleOptions } from './celeriac.options.js';
import { taskHandleProviders, taskHandleTokens } from './inject-tasks.js';
import { RequestContextInterceptor } from './request-context.interceptor.js';
import { TaskExplorer } from './task-explorer.js';
import { TaskProducer } from './task-producer.js';
import { CELERIAC_APP } from './tokens.js';

const appProvider: Provider = {
  provide: CELERIAC_APP,
  useFactory: (options: CeleriacModuleOptions): Celeriac => bindApp(options.app ?? createApp(options.name ?? 'celeriac'), options.config, '@celeriac/nest'),
  inject: [CELERIAC_MODULE_OPTIONS],
};

/**
 * Celeriac for NestJS: binds the app to your config, registers every `@Task()`
 * method of your providers, gives you `TaskProducer` and `@InjectTasks()`, answers
 * 503 when the broker is down, and runs the worker side where asked.
 *
 * ```ts
 * @Module({ imports: [CeleriacModule.forRoot({ config: { brokerUrl: process.env.CELERY_BROKER_URL } })], providers: [MathService] })
 * export class AppModule {}
 * ```
 */
@Module({
  imports: [DiscoveryModule],
  providers: [
    appProvider,
    TaskProducer,
    TaskExplorer,
    CeleriacWorker,
    { provide: APP_INTERCEPTOR, useClass: RequestContextInterceptor },
    { provide: APP_FILTER, useClass: BrokerUnavailableFilter },
  ],
  exports: [CELERIAC_APP, TaskProducer, CeleriacWorker, TaskExplorer],
})
export class CeleriacModule extends CeleriacConfigurableModule {
  /** Configure with options known up front. */
  static override forRoot(options: typeof CELERIAC_OPTIONS_TYPE): DynamicModule {
    return withTaskHandles(super.forRoot(options));
  }

  /** Configure from other providers: `forRootAsync({ imports: [ConfigModule], inject: [ConfigService], useFactory: (c) => ({ config: c.get('celeriac') }) })`. */
  static override forRootAsync(options: typeof CELERIAC_ASYNC_OPTIONS_TYPE): DynamicModule {
    return withTaskHandles(super.forRootAsync(options));
  }
}

/**
 * Add the providers of `@InjectTasks(Class)`. They are read when Nest scans the
 * module (after every class, and so every `@InjectTasks()`, was declared), not
 * when `forRoot()` runs, which may be before the classes that use them are loaded.
 */
function withTaskHandles(module: DynamicModule): DynamicModule {
  const providers = module.providers ?? [];
  const exports = module.exports ?? [];
  return Object.defineProperties(module, {
    providers: { get: () => [...providers, ...taskHandleProviders()], enumerable: true, configurable: true },
    exports: { get: () => [...exports, ...taskHandleTokens()], enumerable: true, configurable: true },
  });
}
