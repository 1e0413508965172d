import { getTaskStatus, isTaskId, READY_STATES, watchTaskStatus, type Celeriac, type TaskStatus } from '@celeriac/core';
import { Controller, ForbiddenException, Get, Inject, NotFoundException, Param, Req, Sse, type MessageEvent } from '@nestjs/common';
import { Observable } from 'rxjs';
import { CELERIAC_APP } from '../tokens.js';
import { CELERIAC_STATUS_OPTIONS } from './status.module-definition.js';
import type { CeleriacStatusOptions } from './status.options.js';

const DEFAULT_HEARTBEAT_MS = 15_000;

/**
 * `GET /tasks/:id` (state, result, progress) and `GET /tasks/:id/events`
 * (Server-Sent Events of each state change, pushed by the result backend's
 * pub/sub, no polling; the stream ends after a final state with an `end` event).
 */
@Controller('tasks')
export class TaskStatusController {
  constructor(
    @Inject(CELERIAC_APP) private readonly app: Celeriac,
    @Inject(CELERIAC_STATUS_OPTIONS) private readonly options: CeleriacStatusOptions,
  ) {}

  @Get(':id')
  async status(@Param('id') id: string, @Req() request: unknown): Promise<TaskStatus> {
    await this.check(request, id);
    return getTaskStatus(this.app, id, { tracebacks: this.options.tracebacks });
  }

  @Sse(':id/events')
  async events(@Param('id') id: string, @Req() request: unknown): Promise<Observable<MessageEvent>> {
    await this.check(request, id);
    const { tracebacks, heartbeatMs = DEFAULT_HEARTBEAT_MS } = this.options;
    return new Observable<MessageEvent>((subscriber) => {
      const abort = new AbortController();
      const heartbeat = setInterval(() => subscriber.next({ type: 'ping', data: '' }), heartbeatMs);
      void (async () => {
        let n = 0;
        let last: TaskStatus | undefined;
        for await (const status of watchTaskStatus(this.app, id, { tracebacks, signal: abort.signal })) {
          last = status;
          subscriber.next({ id: String(++n), data: status });
        }
        if (last && READY_STATES.has(last.state)) subscriber.next({ type: 'end', data: { taskId: id, state: last.state } });
        subscriber.complete();
      })().catch((err: unknown) => {
        subscriber.next({ type: 'error', data: { code: (err as { code?: string }).code ?? 'CELERIAC_STATUS_ERROR', message: 'Task updates are unavailable; try again later.' } });
        subscriber.complete();
      });
      return () => {
        clearInterval(heartbeat);
        abort.abort();
      };
    });
  }

  private async check(request: unknown, id: string): Promise<void> {
    if (!isTaskId(id)) throw new NotFoundException(`No task ${JSON.stringify(id)}: task ids are 1-200 characters of letters, digits, _ . : -`);
    if (this.options.authorize && !(await this.options.authorize(request, id))) throw new ForbiddenException(`Not allowed to see task ${id}`);
  }
}
