import { setTimeout as sleep } from 'node:timers/promises';
import { currentTask } from '@celeriac/core';
import { Task } from '@celeriac/nest';
import { Injectable, Logger } from '@nestjs/common';

/** Tasks are methods of ordinary providers; the worker calls them on the instance Nest built. */
@Injectable()
export class MathService {
  private readonly log = new Logger(MathService.name);

  @Task({ name: 'example.math.mul' })
  mul(x: number, y: number): { product: number; requestId: string | null; pid: number } {
    const requestId = currentTask()?.requestContext?.requestId ?? null;
    this.log.log(`mul(${x}, ${y}) for request ${requestId}`);
    return { product: x * y, requestId, pid: process.pid };
  }

  /** A long task reporting progress (poll GET /tasks/:id). */
  @Task({ name: 'example.math.count' })
  async count(to: number): Promise<number> {
    for (let i = 1; i <= to; i++) {
      await sleep(100);
      await currentTask()?.updateState('PROGRESS', { current: i, total: to });
    }
    return to;
  }

  /** A chord's body: the sum of the header's products, and the request that sent the chord. */
  @Task({ name: 'example.math.total' })
  total(products: { product: number }[]): { total: number; requestId: string | null } {
    return { total: products.reduce((sum, p) => sum + p.product, 0), requestId: currentTask()?.requestContext?.requestId ?? null };
  }
}
