/**
 * @celeriac/nest — Celeriac for NestJS.
 *
 * ```ts
 * @Injectable()
 * export class MathService {
 *   @Task({ name: 'math.mul' }) mul(x: number, y: number) { return x * y; }
 * }
 * @Module({ imports: [CeleriacModule.forRoot({ config: { brokerUrl: 'redis://localhost:6379/0' } })], providers: [MathService] })
 * export class AppModule {}
 * // in a controller: constructor(@InjectTasks(MathService) private readonly math: TaskHandles<MathService>) {}
 * //                  await this.math.mul.delay(2, 3);
 * ```
 */
export { CeleriacModule } from './celeriac.module.js';
export { CELERIAC_MODULE_OPTIONS } from './celeriac.module-definition.js';
export type { CeleriacModuleExtras } from './celeriac.module-definition.js';
export type { CeleriacModuleOptions } from './celeriac.options.js';
export { Task } from './task.decorator.js';
export type { NestTaskOptions } from './task.decorator.js';
export { TaskProducer } from './task-producer.js';
export { InjectTasks, getTasksToken } from './inject-tasks.js';
export type { TaskHandle, TaskHandles } from './task-handles.js';
export { TaskExplorer, MisplacedTaskDecoratorError } from './task-explorer.js';
export { CeleriacWorker } from './celeriac-worker.js';
export { RequestContextInterceptor } from './request-context.interceptor.js';
export { BrokerUnavailableFilter } from './broker-unavailable.filter.js';
export { CELERIAC_APP, TASK_REF } from './tokens.js';
export { CeleriacStatusModule } from './status/celeriac-status.module.js';
export { TaskStatusController } from './status/task-status.controller.js';
export type { CeleriacStatusOptions } from './status/status.options.js';
export { CeleriacDashboardModule, CELERIAC_DASHBOARD, CELERIAC_DASHBOARD_OPTIONS } from './dashboard/celeriac-dashboard.module.js';
export type { CeleriacDashboardOptions } from './dashboard/celeriac-dashboard.module.js';
