import { CeleriacModule } from '@celeriac/nest';
import { Module } from '@nestjs/common';
import { celeriac, celeriacConfig, TasksModule } from '@app/tasks';
import { TasksController } from './tasks.controller.js';

// On memory:// the api runs the tasks itself; on Redis it only sends (run `nest start worker`).
@Module({
  imports: [CeleriacModule.forRoot({ app: celeriac, config: celeriacConfig() }), TasksModule],
  controllers: [TasksController],
})
export class ApiModule {}
