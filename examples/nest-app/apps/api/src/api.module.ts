import { CeleriacModule, CeleriacStatusModule } from '@celeriac/nest';
import { Module } from '@nestjs/common';
import { celeriac, celeriacConfig, TasksModule } from '@app/tasks';
import { TasksController } from './tasks.controller.js';

// On memory:// the api runs the tasks itself; on Redis it only sends (run `nest start worker`).
// CeleriacStatusModule: GET /tasks/:id (poll) and GET /tasks/:id/events (Server-Sent Events).
@Module({
  imports: [CeleriacModule.forRoot({ app: celeriac, config: celeriacConfig() }), CeleriacStatusModule.forRoot({}), TasksModule],
  controllers: [TasksController],
})
export class ApiModule {}
