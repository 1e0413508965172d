/**
 * The dashboard's actions on the cluster, over remote control (Python and
 * Celeriac workers alike): revoke (optionally terminate), rate limit, pool
 * grow/shrink, shutdown. Each checks its input and says what went wrong.
 */
import type { Celeriac } from '../app.js';
import type { ControlReplies } from '../control/control-client.js';

/** The actions, by the name the auth hook is told. */
export type DashboardAction = 'revoke' | 'rate-limit' | 'pool-grow' | 'pool-shrink' | 'shutdown' | 'apply';

/** What an action answered: a message, and the workers' replies when it asked for them. */
export interface ActionResult {
  message: string;
  replies?: ControlReplies;
}

/** A request the dashboard cannot act on (bad input): answered with 400 and this message. */
export class ActionInputError extends Error {
  override name = 'ActionInputError';
}

const UUIDISH = /^[A-Za-z0-9_.:-]{1,200}$/;
const RATE = /^\d+(\.\d+)?(\/[smh])?$/;

function str(body: Record<string, unknown>, key: string): string | undefined {
  const v = body[key];
  return typeof v === 'string' && v.trim() !== '' ? v.trim() : undefined;
}

function workerOf(body: Record<string, unknown>, required: boolean): string[] | undefined {
  const w = str(body, 'worker');
  if (!w) {
    if (required) throw new ActionInputError('Name the worker: "worker": "celery@host".');
    return undefined;
  }
  return [w];
}

/** Revoke a task by id (`terminate` stops it if running). */
export async function revokeTask(app: Celeriac, id: string, terminate: boolean, signal = 'SIGTERM'): Promise<ActionResult> {
  if (!UUIDISH.test(id)) throw new ActionInputError(`Not a task id: ${JSON.stringify(id)}.`);
  await app.control.revoke(id, { terminate, signal });
  return { message: `Revoked '${id}'` };
}

/** Run one action by name with the posted body. */
export async function runAction(app: Celeriac, action: Exclude<DashboardAction, 'apply'>, body: Record<string, unknown>): Promise<ActionResult> {
  switch (action) {
    case 'revoke': {
      const id = str(body, 'id');
      if (!id) throw new ActionInputError('Name the task: "id": "<task id>".');
      return revokeTask(app, id, body.terminate === true || body.terminate === 'true', str(body, 'signal') ?? 'SIGTERM');
    }
    case 'rate-limit': {
      const task = str(body, 'task');
      if (!task) throw new ActionInputError('Name the task: "task": "tasks.add".');
      const rate = str(body, 'rate') ?? '';
      if (rate !== '' && rate !== '0' && !RATE.test(rate)) throw new ActionInputError(`Not a rate: ${JSON.stringify(rate)}; use 10/s, 100/m, 1000/h, or empty for none.`);
      const replies = await app.control.broadcast('rate_limit', { destination: workerOf(body, false), arguments: { task_name: task, rate_limit: rate === '' ? null : rate }, reply: true });
      return { message: `Rate limit of ${task} set to ${rate || 'none'} (${replies.length} worker${replies.length === 1 ? '' : 's'} answered)`, replies };
    }
    case 'pool-grow':
    case 'pool-shrink': {
      const destination = workerOf(body, true);
      const n = body.n === undefined ? 1 : Number(body.n);
      if (!Number.isInteger(n) || n < 1) throw new ActionInputError('"n" must be a whole number ≥ 1.');
      const method = action === 'pool-grow' ? 'pool_grow' : 'pool_shrink';
      const replies = await app.control.broadcast(method, { destination, arguments: { n }, reply: true });
      return { message: `${method} ${n} sent to ${destination![0]}${replies.length === 0 ? ' (no reply)' : ''}`, replies };
    }
    case 'shutdown': {
      const destination = workerOf(body, true);
      await app.control.broadcast('shutdown', { destination });
      return { message: `Shutdown sent to ${destination![0]}` };
    }
  }
}
