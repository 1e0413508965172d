/**
 * PROVISIONAL: the shared web-adapter pieces that branch `webcore` is adding to
 * @celeriac/core (bindApp, the request context, the task producer, the embedded
 * worker, task status and state-change subscription, the SSE writer). This file
 * holds minimal stand-ins under the same names so the Fastify adapter can be built
 * and tested before that branch lands; it is replaced by re-exports from
 * `@celeriac/core` when `webcore` is merged.
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import type { ServerResponse } from 'node:http';
import { currentApp, fromObject, Worker, type ApplyOptions, type AsyncResult, type Celeriac, type Settings, type Task, type WorkerOptions } from '@celeriac/core';

/** What a web request hands to the tasks it sends. */
export interface RequestContext {
  requestId?: string;
  traceparent?: string;
  tracestate?: string;
  headers?: Record<string, unknown>;
}

const requestStorage = new AsyncLocalStorage<RequestContext>();

export function runWithRequestContext<T>(ctx: RequestContext, fn: () => T): T {
  return requestStorage.run(ctx, fn);
}

export function currentRequestContext(): RequestContext | undefined {
  return requestStorage.getStore();
}

/** A producer whose sends carry a request's context in the task headers. */
export interface TaskProducer {
  delay<A extends unknown[], R>(task: Task<A, R>, ...args: A): Promise<AsyncResult<Awaited<R>>>;
  applyAsync<A extends unknown[], R>(task: Task<A, R>, args?: A, kwargs?: Record<string, unknown>, options?: ApplyOptions): Promise<AsyncResult<Awaited<R>>>;
  send<R = unknown>(name: string, args?: readonly unknown[], kwargs?: Record<string, unknown>, options?: ApplyOptions): Promise<AsyncResult<R>>;
}

function contextHeaders(ctx: RequestContext | undefined): Record<string, unknown> {
  if (!ctx) return {};
  const out: Record<string, unknown> = { ...ctx.headers };
  if (ctx.requestId !== undefined) out.request_id = ctx.requestId;
  if (ctx.traceparent !== undefined) out.traceparent = ctx.traceparent;
  if (ctx.tracestate !== undefined) out.tracestate = ctx.tracestate;
  return out;
}

export function createTaskProducer(app: Celeriac, options: { headers?: Record<string, unknown> | (() => Record<string, unknown>) } = {}): TaskProducer {
  const headers = (extra?: Record<string, unknown>) => ({
    ...contextHeaders(currentRequestContext()),
    ...(typeof options.headers === 'function' ? options.headers() : options.headers),
    ...extra,
  });
  return {
    delay: (task, ...args) => task.applyAsync(args, {}, { headers: headers() }),
    applyAsync: (task, args, kwargs, opts = {}) => task.applyAsync(args, kwargs, { ...opts, headers: headers(opts.headers) }),
    send: (name, args = [], kwargs = {}, opts = {}) => app.sendTask(name, args, kwargs, { ...opts, headers: headers(opts.headers) }),
  };
}

const bound = new WeakMap<Celeriac, string>();

/** Bind `app` (default: the one app declared) to web-framework config. */
export function bindApp(app: Celeriac | undefined, config: Partial<Settings> | Record<string, unknown> = {}): Celeriac {
  const target = app ?? currentApp();
  if (!target) throw new Error('No Celeriac app declared: import your tasks module (createApp(...)) before registering the adapter, or pass { app }.');
  const settings: Record<string, unknown> = { ...(config as Record<string, unknown>) };
  const celery = { ...fromObject(settings, { namespace: 'CELERY', onUnknown: () => undefined }), ...fromObject(settings, { namespace: 'CELERIAC', onUnknown: () => undefined }) };
  for (const k of Object.keys(settings)) if (/^[A-Z]/.test(k)) delete settings[k];
  const merged = { ...settings, ...celery } as Partial<Settings>;
  const previous = bound.get(target);
  if (previous !== undefined && merged.brokerUrl !== undefined && merged.brokerUrl !== previous) throw new Error(`app already bound to ${previous}`);
  target.configure(merged);
  bound.set(target, target.settings.brokerUrl);
  return target;
}

export interface EmbeddedWorker {
  stop(): Promise<void>;
}

export async function startEmbeddedWorker(app: Celeriac, options: WorkerOptions = {}): Promise<EmbeddedWorker> {
  const worker = new Worker(app, { logLevel: 'warn', ...options });
  await worker.start();
  return { stop: () => worker.stop() };
}

/** What GET /tasks/:id answers. */
export interface TaskStatus {
  id: string;
  state: string;
  ready: boolean;
  result?: unknown;
  progress?: unknown;
  error?: { type: string; message: string; traceback?: string | null };
}

export async function taskStatus(app: Celeriac, id: string, options: { tracebacks?: boolean } = {}): Promise<TaskStatus> {
  const snap = await app.AsyncResult(id).refresh();
  const ready = ['SUCCESS', 'FAILURE', 'REVOKED'].includes(snap.state);
  const status: TaskStatus = { id, state: snap.state, ready };
  if (snap.result instanceof Error) status.error = { type: snap.result.name, message: snap.result.message, ...(options.tracebacks ? { traceback: snap.traceback } : {}) };
  else if (snap.state === 'SUCCESS') status.result = snap.result;
  else if (snap.state !== 'PENDING') status.progress = snap.result;
  return status;
}

/** Call `listener` with each new status of `id` until it is ready; returns an unsubscribe function. (Stand-in polls.) */
export function watchTaskState(app: Celeriac, id: string, listener: (status: TaskStatus) => void, options: { tracebacks?: boolean } = {}): () => void {
  let last = '';
  let stopped = false;
  const tick = async () => {
    if (stopped) return;
    const status = await taskStatus(app, id, options).catch(() => null);
    if (status && JSON.stringify(status) !== last) {
      last = JSON.stringify(status);
      listener(status);
    }
    if (!stopped && !status?.ready) setTimeout(tick, 50);
  };
  void tick();
  return () => void (stopped = true);
}

/** Writes Server-Sent Events on a raw response. */
export class SseWriter {
  private timer: NodeJS.Timeout;
  constructor(private readonly res: ServerResponse, heartbeatMs = 15_000) {
    res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache', connection: 'keep-alive', 'x-accel-buffering': 'no' });
    res.flushHeaders();
    this.timer = setInterval(() => res.write(': heartbeat\n\n'), heartbeatMs);
  }
  send(event: string, data: unknown): void {
    this.res.write(`event: ${event}\ndata: ${JSON.stringify(data)}\n\n`);
  }
  end(): void {
    clearInterval(this.timer);
    if (!this.res.writableEnded) this.res.end();
  }
}
