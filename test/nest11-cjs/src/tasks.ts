import { currentTask, type TaskContext } from '@celeriac/core';
import { CeleriacModule, InjectTasks, Task, TASK_REF, TaskProducer, type CeleriacModuleOptions, type TaskHandles } from '@celeriac/nest';
import { Body, Controller, Get, Inject, Injectable, Module, Param, Post, Scope, type DynamicModule } from '@nestjs/common';

@Injectable()
export class Counter {
  calls = 0;
}

@Injectable()
export class MathService {
  constructor(private readonly counter: Counter) {}

  @Task({ name: 'cjs.math.mul' })
  mul(x: number, y: number) {
    this.counter.calls++;
    return { product: x * y, calls: this.counter.calls, requestId: currentTask()?.requestContext?.requestId ?? null };
  }
}

@Injectable({ scope: Scope.REQUEST })
export class ScopedService {
  constructor(@Inject(TASK_REF) private readonly task: TaskContext) {}

  @Task({ name: 'cjs.scoped.id' })
  whoRuns() {
    return this.task.id;
  }
}

export function Wrap(): MethodDecorator {
  return (_t, _k, descriptor) => {
    const original = descriptor.value as unknown as (...a: unknown[]) => unknown;
    descriptor.value = function (this: unknown, ...a: unknown[]) {
      return original.apply(this, a);
    } as never;
  };
}

@Injectable()
export class MisplacedService {
  @Wrap()
  @Task({ name: 'cjs.misplaced' })
  run() {
    return 1;
  }
}

@Controller()
export class MathController {
  constructor(
    @InjectTasks(MathService) private readonly math: TaskHandles<MathService>,
    @InjectTasks(ScopedService) private readonly scoped: TaskHandles<ScopedService>,
    private readonly producer: TaskProducer,
  ) {}

  @Post('mul')
  async mul(@Body() body: { x: number; y: number }) {
    return { id: (await this.math.mul.delay(body.x, body.y)).id };
  }

  @Post('scoped')
  async runScoped() {
    return { id: (await this.scoped.whoRuns.delay()).id };
  }

  @Get('results/:id')
  async result(@Param('id') id: string) {
    return { result: await this.producer.result(id).get({ timeout: 10_000 }) };
  }
}

@Module({})
export class AppModule {
  static register(options: CeleriacModuleOptions): DynamicModule {
    return { module: AppModule, imports: [CeleriacModule.forRoot(options)], controllers: [MathController], providers: [Counter, MathService, ScopedService] };
  }
}
