/**
 * `queueRouter()`: optional routes for a task's status. `GET /tasks/:id` answers
 * the state, result, progress and error as JSON; `GET /tasks/:id/events` streams
 * each change as Server-Sent Events, pushed by the result backend (no polling),
 * ending at a final state. Both ask `authorize(req, taskId)` first; tracebacks are
 * hidden unless the plugin or the router enables them.
 */
import express, { type Request, type Router } from 'express';
import { currentApp, getTaskStatus, isTaskId, SseStreams, streamTaskEvents, type Celeriac } from '@celeriac/core';
import { queueStateOf } from './plugin.js';

/** Options of `queueRouter`. */
export interface QueueRouterOptions {
  /** May this request see this task? Default: everyone. Answer false for 403. */
  authorize?: (req: Request, taskId: string) => boolean | Promise<boolean>;
  /** Show remote tracebacks (default: the plugin's `tracebacks`, false). */
  tracebacks?: boolean;
  /** Milliseconds between SSE heartbeat comments (default 15,000). */
  heartbeatMs?: number;
}

const problem = (statusCode: number, code: string, error: string, message: string) => ({ statusCode, code, error, message });

/** The status routes; mount where you like: `app.use('/queue', queueRouter({ authorize }))`. */
export function queueRouter(options: QueueRouterOptions = {}): Router {
  const router = express.Router();
  const fallbackStreams = new SseStreams();

  const target = (req: Request): { app: Celeriac; streams: SseStreams; tracebacks: boolean } => {
    const state = queueStateOf(req);
    const app = state?.app ?? currentApp();
    if (!app) throw new Error('queueRouter(): mount queuePlugin() before the router (no Celeriac app for this request).');
    return { app, streams: state?.streams ?? fallbackStreams, tracebacks: options.tracebacks ?? state?.tracebacks ?? false };
  };

  /** Checks the id and the authorize hook; answers 400/403 itself and returns false. */
  const allowed = async (req: Request<{ id: string }>, res: express.Response): Promise<boolean> => {
    const id = req.params.id;
    if (!isTaskId(id)) {
      res.status(400).json(problem(400, 'CELERIAC_BAD_TASK_ID', 'Bad Request', 'Not a task id.'));
      return false;
    }
    if (options.authorize && !(await options.authorize(req, id))) {
      res.status(403).json(problem(403, 'CELERIAC_FORBIDDEN', 'Forbidden', 'Not allowed to see this task.'));
      return false;
    }
    return true;
  };

  router.get('/tasks/:id', async (req, res) => {
    if (!(await allowed(req, res))) return;
    const { app, tracebacks } = target(req);
    res.setHeader('Cache-Control', 'no-store');
    res.json(await getTaskStatus(app, req.params.id, { tracebacks }));
  });

  router.get('/tasks/:id/events', async (req, res) => {
    if (!(await allowed(req, res))) return;
    const { app, streams, tracebacks } = target(req);
    await streamTaskEvents(app, req.params.id, res, { tracebacks, streams, heartbeatMs: options.heartbeatMs });
  });

  return router;
}
