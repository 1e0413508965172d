/**
 * Where task functions run. The worker hands a pool one request at a time while
 * `hasFreeSlot()`; the pool runs the function and resolves with what it did.
 * Recording the outcome (callbacks, result, late ack) happens outside the pool, so
 * a slot is held only while the function runs.
 *
 * `AsyncPool` runs functions on this event loop (Celery's closest equivalent is
 * the eventlet/gevent pools); the thread and process pools (`child-pool.ts`)
 * implement the same interface.
 */
import { runTaskFunction, runTaskFunctionInline, type FunctionOutcome, type RunDeps } from './run-task.js';
import type { TaskRequest } from './task-request.js';

/** A pool of slots running task functions. */
export interface Pool {
  /** Functions that may run at once. */
  readonly concurrency: number;
  /**
   * Runs the pool accepts at once (running plus handed ahead to a member, not yet
   * started). Default: `concurrency`. The thread/process pools take twice as many:
   * each member holds the next task and starts it as soon as the previous one ends.
   */
  readonly capacity?: number;
  /** Slots in use now (including code still running past its hard time limit). */
  readonly active: number;
  /** Members alive (threads / child processes), when the pool has members. */
  readonly size?: number;
  /** Process ids of the members alive (a thread's is the worker's), for `inspect stats` → `pool.processes`. */
  readonly memberPids?: number[];
  /** True when `run` would start at once. */
  hasFreeSlot(): boolean;
  /**
   * Run the request's task function in a slot. Never rejects. `onStart` is called
   * when the function really starts (a run handed ahead to a busy member starts
   * later); not at all when the run is discarded before it starts.
   */
  run(request: TaskRequest, deps: RunDeps, onStart?: () => void): Promise<FunctionOutcome>;
  /**
   * `run` on this event loop, for a request `runsInline` accepts, started at once (the
   * caller checked `hasFreeSlot`): a function that returns synchronously has its
   * outcome returned synchronously and its slot already free. Pools that run
   * elsewhere (threads, processes) omit it.
   */
  runInline?(request: TaskRequest, deps: RunDeps, onStart?: () => void): FunctionOutcome | Promise<FunctionOutcome>;
  /**
   * A revoked task handed to the pool but not started yet is discarded: its run
   * resolves with `TaskRevokedError('revoked')` (stored REVOKED) instead of running.
   * False when the pool holds no such run (not there, or already started).
   */
  discardQueued?(taskId: string): boolean;
  /**
   * Called when a slot frees up other than by `run` resolving (code that ran past
   * its hard limit finally returned, a replaced thread or child is ready). Set by
   * the worker.
   */
  onSlotFreed?: () => void;
  /**
   * `pool_grow` / `pool_shrink`: change the slots (and members) by `delta`, never
   * below 1. Members above the new size stop once their task is done.
   */
  resize?(delta: number): void;
  /** `autoscale` (pools started with one): new bounds; returns them as now in force. */
  setAutoscale?(max: number | undefined, min: number | undefined): [number, number];
  /** True when the pool was started with `autoscale` (pool_grow / pool_shrink are refused then, as Celery does). */
  readonly autoscaling?: boolean;
  /**
   * Celery's `terminate_job`: stop the member running `taskId` with `signal` (a
   * thread is terminated whatever the signal, and replaced). False when no member
   * runs it. Pools that cannot stop running code omit it.
   */
  terminate?(taskId: string, signal: NodeJS.Signals): boolean;
  /** Start-up (threads and children); resolves when the pool can run tasks. */
  start?(): Promise<void>;
  /** Wait for the running functions (warm shutdown); the pool takes no more work after. */
  close(): Promise<void>;
}

/**
 * Runs task functions as promises on the worker's own event loop. A function that
 * runs past its hard time limit is recorded as failed at once but keeps its slot
 * until its code returns: JavaScript cannot be stopped from outside, and freeing
 * the slot would let such tasks pile up without bound.
 */
export class AsyncPool implements Pool {
  private busy = 0;
  private outcomes = new Set<Promise<FunctionOutcome>>();
  private closed = false;
  onSlotFreed?: () => void;

  constructor(public concurrency: number) {}

  resize(delta: number): void {
    this.concurrency = Math.max(1, this.concurrency + delta);
    this.onSlotFreed?.();
  }

  get active(): number {
    return this.busy;
  }

  hasFreeSlot(): boolean {
    return !this.closed && this.busy < this.concurrency;
  }

  run(request: TaskRequest, deps: RunDeps, onStart?: () => void): Promise<FunctionOutcome> {
    this.busy++;
    onStart?.();
    const outcome = runTaskFunction(request, deps);
    this.outcomes.add(outcome);
    void outcome.then((ran) => {
      this.outcomes.delete(outcome);
      if (!ran.stillRunning) {
        this.busy--;
        return;
      }
      // The caller frees its own count when `run` resolves; this slot is given back (and the worker woken) only later.
      void ran.stillRunning.then(() => {
        this.busy--;
        this.onSlotFreed?.();
      });
    });
    return outcome;
  }

  runInline(request: TaskRequest, deps: RunDeps, onStart?: () => void): FunctionOutcome | Promise<FunctionOutcome> {
    onStart?.();
    const outcome = runTaskFunctionInline(request, deps);
    if (!(outcome instanceof Promise)) return outcome;
    // No hard limit here (runsInline), so the slot is free when the outcome is.
    this.busy++;
    this.outcomes.add(outcome);
    void outcome.then(() => {
      this.outcomes.delete(outcome);
      this.busy--;
    });
    return outcome;
  }

  /** Waits for outcomes, not for code still running past its hard limit (it may never return). */
  async close(): Promise<void> {
    this.closed = true;
    await Promise.all(this.outcomes);
  }
}
