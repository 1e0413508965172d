/**
 * Where task functions run. The worker hands a pool one request at a time while
 * `hasFreeSlot()`; the pool runs the function and resolves with what it did.
 * Recording the outcome (callbacks, result, late ack) happens outside the pool, so
 * a slot is held only while the function runs.
 *
 * `AsyncPool` runs functions on this event loop (Celery's closest equivalent is
 * the eventlet/gevent pools); thread and process pools will implement the same
 * interface.
 */
import { runTaskFunction, type FunctionOutcome, type RunDeps } from './run-task.js';
import type { TaskRequest } from './task-request.js';

/** A pool of slots running task functions. */
export interface Pool {
  /** Functions that may run at once. */
  readonly concurrency: number;
  /** Functions running now. */
  readonly active: number;
  /** True when `run` would start at once. */
  hasFreeSlot(): boolean;
  /** Run the request's task function in a slot. Never rejects. */
  run(request: TaskRequest, deps: RunDeps): Promise<FunctionOutcome>;
  /** Wait for the running functions (warm shutdown); the pool takes no more work after. */
  close(): Promise<void>;
}

/** Runs task functions as promises on the worker's own event loop. */
export class AsyncPool implements Pool {
  private running = new Set<Promise<FunctionOutcome>>();
  private closed = false;

  constructor(readonly concurrency: number) {}

  get active(): number {
    return this.running.size;
  }

  hasFreeSlot(): boolean {
    return !this.closed && this.running.size < this.concurrency;
  }

  run(request: TaskRequest, deps: RunDeps): Promise<FunctionOutcome> {
    const run = runTaskFunction(request, deps).finally(() => this.running.delete(run));
    this.running.add(run);
    return run;
  }

  async close(): Promise<void> {
    this.closed = true;
    await Promise.all(this.running);
  }
}
