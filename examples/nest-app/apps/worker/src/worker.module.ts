import { CeleriacModule } from '@celeriac/nest';
import { Module } from '@nestjs/common';
import { celeriac, celeriacConfig, TasksModule } from '@app/tasks';

// The same tasks module as the api; this process consumes.
@Module({
  imports: [CeleriacModule.forRoot({ app: celeriac, config: celeriacConfig(), worker: true, workerOptions: { logLevel: 'info' } }), TasksModule],
})
export class WorkerModule {}
