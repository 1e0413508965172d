import { REQUEST } from '@nestjs/core';

/** Injection token of the `Celeriac` app the module binds (`@Inject(CELERIAC_APP) app: Celeriac`). */
export const CELERIAC_APP = Symbol.for('celeriac.nest.app');

/**
 * Injection token of the running task's context in request-scoped and durable
 * providers resolved for a task run: `@Inject(TASK_REF) task: TaskContext`.
 * It is Nest's `REQUEST` token, as `@nestjs/bullmq`'s `JOB_REF` is: inside an
 * HTTP request the same providers receive the request instead.
 */
export const TASK_REF = REQUEST;
