export { celeriac, celeriacConfig } from './celeriac.js';
export { MathService } from './math.service.js';
export { TasksModule } from './tasks.module.js';
