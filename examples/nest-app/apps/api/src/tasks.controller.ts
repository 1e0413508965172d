import { chord } from '@celeriac/core';
import { InjectTasks, TaskProducer, type TaskHandles } from '@celeriac/nest';
import { Body, Controller, Post } from '@nestjs/common';
import { MathService } from '@app/tasks';

@Controller()
export class TasksController {
  constructor(
    @InjectTasks(MathService) private readonly math: TaskHandles<MathService>,
    private readonly tasks: TaskProducer,
  ) {}

  /** Send a task; answer at once with its id. */
  @Post('mul')
  async mul(@Body() body: { x: number; y: number }): Promise<{ id: string }> {
    return { id: (await this.math.mul.delay(body.x, body.y)).id };
  }

  /** A long task with progress. */
  @Post('count')
  async count(@Body() body: { to: number }): Promise<{ id: string }> {
    return { id: (await this.math.count.delay(body.to)).id };
  }

  /** A chord: every square in parallel, then their sum (each message carries this request's id). */
  @Post('sum-of-squares')
  async sumOfSquares(@Body() body: { numbers: number[] }): Promise<{ id: string }> {
    const header = body.numbers.map((n) => this.math.mul.s(n, n));
    return { id: (await this.tasks.applySignature(chord(header, this.math.total.s()))).id };
  }

  /** A task only a Python worker defines (python/nest_tasks.py), sent by name to the queue it consumes. */
  @Post('resize')
  async resize(@Body() body: { image: string }): Promise<{ id: string }> {
    return { id: (await this.tasks.send('py.tasks.resize', [body.image], {}, { queue: 'python' })).id };
  }
}
