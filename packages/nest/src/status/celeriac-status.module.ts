import { Module } from '@nestjs/common';
import { CeleriacStatusConfigurableModule } from './status.module-definition.js';
import { TaskStatusController } from './task-status.controller.js';

/**
 * Optional routes for clients following a task: `GET /tasks/:id` and the SSE
 * stream `GET /tasks/:id/events`. Import next to `CeleriacModule` (whose app it
 * uses); mount under a prefix with Nest's `RouterModule` or a global prefix.
 *
 * ```ts
 * imports: [CeleriacModule.forRoot({ config }), CeleriacStatusModule.forRoot({ authorize: (req, id) => ownsTask(req, id) })]
 * ```
 */
@Module({ controllers: [TaskStatusController] })
export class CeleriacStatusModule extends CeleriacStatusConfigurableModule {}
