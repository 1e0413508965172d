/**
 * The `threads` and `processes` pools: task functions run in worker threads or
 * child processes (Celery's prefork), one task at a time each, while this process
 * keeps the broker connection (prefetch, acks, heartbeats and result writes stay
 * in the worker, the same for every pool).
 *
 * - Hard time limit: the thread / child is terminated (FAILURE `TimeLimitExceeded`)
 *   and a new one takes its place.
 * - A thread / child that dies mid-task (crash, out of memory, killed) fails only
 *   its own task with `WorkerLostError` and is replaced.
 * - `maxTasksPerChild` / `maxMemoryPerChild` (KiB, checked after each task: the
 *   child's RSS, or a thread's V8 heap) retire a member after its task; a new one
 *   takes its place.
 * - Autoscale: between `minConcurrency` and `concurrency` members; new ones start
 *   when every member is busy and work waits, idle ones above the minimum stop
 *   after `idleMs`.
 * - Remote control: `resize` (pool_grow / pool_shrink), `setAutoscale`, and
 *   `terminate` (revoke with terminate: the member running the task gets the
 *   signal; a thread is terminated and replaced; the task is stored REVOKED).
 */
import { CANVAS_BUILTINS_THAT_SEND } from '../canvas/builtins.js';
import { Signature } from '../canvas/signature.js';
import { ConfigurationError, Retry, TaskTerminated, TimeLimitExceeded, WorkerLostError } from '../errors.js';
import type { WireSignature } from '../protocol/message.js';
import type { Logger } from '../logger.js';
import { longTimeout } from './long-timeout.js';
import { spawnProcess, spawnThread, type Executor } from './pool-executors.js';
import { rebuildError, transferError, type ChildConfig, type FromChild, type JobRequest, type ToChild } from './pool-protocol.js';
import type { Pool } from './pool.js';
import { runTaskFunction, storeStarted, taskPrerun, type FunctionOutcome, type RunDeps } from './run-task.js';
import type { TaskRequest } from './task-request.js';
import { timeLimitsFor } from './time-limits.js';

/** Options of a thread or process pool. */
export interface ChildPoolOptions {
  kind: 'threads' | 'processes';
  /** Members at most (tasks at once). */
  concurrency: number;
  /** Members kept even when idle (autoscale's minimum). Default: `concurrency`. */
  minConcurrency?: number;
  /** What each member loads. */
  config: ChildConfig;
  log: Logger;
  /** Replace a member after this many tasks. */
  maxTasksPerChild?: number | null;
  /** Replace a member whose memory passed this many KiB after a task. */
  maxMemoryPerChild?: number | null;
  /** V8 old-space limit per member, MB. */
  heapLimitMb?: number;
  /** Started with `--autoscale`: pool_grow / pool_shrink are refused (Celery: adjust the autoscale range instead). */
  autoscale?: boolean;
  /** Idle members above the minimum stop after this long. Default 30 s (Celery's autoscaler keepalive). */
  idleMs?: number;
}

interface RunningJob {
  id: number;
  request: TaskRequest;
  finish: (outcome: FunctionOutcome) => void;
  startedAt: number;
  /** Set when remote control terminated it: its member's exit is the termination, not a loss. */
  terminatedBy?: NodeJS.Signals;
}

interface Member {
  executor: Executor;
  state: 'starting' | 'idle' | 'busy' | 'gone';
  tasks: number;
  job?: RunningJob;
  idleTimer?: NodeJS.Timeout;
}

interface Waiter {
  resolve: (member: Member) => void;
  reject: (err: Error) => void;
}

/** A pool of worker threads or child processes. */
export class ChildPool implements Pool {
  /** Members at most (changed by `resize` / `setAutoscale`). */
  private max: number;
  /** Members kept even when idle. */
  private min: number;
  readonly autoscaling: boolean;
  onSlotFreed?: () => void;
  private readonly members = new Set<Member>();
  private readonly idle: Member[] = [];
  private readonly waiters: Waiter[] = [];
  private busy = 0;
  private nextIndex = 1;
  private nextJob = 0;
  private closed = false;
  /** Set when a member could not load the app after start-up: no more are started (they would fail the same way). */
  private broken: Error | undefined;
  private startWaiters: { resolve: () => void; reject: (err: Error) => void }[] = [];

  constructor(private readonly o: ChildPoolOptions) {
    this.max = o.concurrency;
    this.min = Math.min(o.concurrency, Math.max(0, o.minConcurrency ?? o.concurrency));
    this.autoscaling = o.autoscale ?? this.min !== this.max;
  }

  /** Members at most (tasks at once). */
  get concurrency(): number {
    return this.max;
  }

  /** Members kept even when idle (autoscale's minimum). */
  get minConcurrency(): number {
    return this.min;
  }

  /** pool_grow (`delta` > 0) / pool_shrink (< 0): a fixed-size pool moves both bounds; never below 1. */
  resize(delta: number): void {
    this.max = Math.max(1, this.max + delta);
    this.min = Math.max(Math.min(this.max, this.min + delta), 0);
    this.applyBounds();
  }

  /** autoscale: new bounds (either may be left as is); a minimum above the maximum is lowered to it. */
  setAutoscale(max: number | undefined, min: number | undefined): [number, number] {
    if (max !== undefined) this.max = Math.max(1, max);
    if (min !== undefined) this.min = Math.max(0, min);
    this.min = Math.min(this.min, this.max);
    this.applyBounds();
    return [this.max, this.min];
  }

  /** Retire idle members above the maximum (busy ones retire when their task is done); start up to the minimum. */
  private applyBounds(): void {
    while (this.live() > this.max && this.idle.length > 0) this.retire(this.idle[0]!, `pool shrunk to ${this.max}`);
    this.maintain();
    this.onSlotFreed?.();
  }

  /**
   * Celery's `terminate_job` for `revoke(terminate=True)`: the member running
   * `taskId` gets `signal` (a child process) or is terminated (a thread, whatever
   * the signal) and replaced; the task ends as `TaskTerminated` (stored REVOKED).
   * A child that survives the signal (it handles it) goes on running the task.
   */
  terminate(taskId: string, signal: NodeJS.Signals): boolean {
    for (const member of this.members) {
      const job = member.job;
      if (!job || job.request.id !== taskId || member.state === 'gone') continue;
      this.o.log.info({ id: taskId, signal, member: member.executor.label, pid: member.executor.pid }, `Terminating ${taskId} (${signal}) in ${member.executor.label} (pid ${member.executor.pid})`);
      job.terminatedBy = signal;
      if (this.o.kind === 'threads') {
        member.state = 'gone';
        member.executor.kill();
        job.finish({ ok: false, error: new TaskTerminated(signal), startedAt: job.startedAt });
      } else {
        member.executor.kill(signal);
      }
      return true;
    }
    return false;
  }

  get active(): number {
    return this.busy;
  }

  /** Members alive (starting, idle or busy). */
  get size(): number {
    return this.live();
  }

  /** Process ids of the members alive (Celery's `pool.processes`; a thread's is the worker's). */
  get memberPids(): number[] {
    const pids: number[] = [];
    for (const m of this.members) if (m.state !== 'gone') pids.push(m.executor.pid);
    return pids;
  }

  hasFreeSlot(): boolean {
    return !this.closed && this.busy < this.concurrency;
  }

  /** Start the minimum number of members; rejects if the app module cannot be loaded in one. */
  async start(): Promise<void> {
    const first = Math.max(1, this.min);
    const ready = Array.from({ length: first }, () => new Promise<void>((resolve, reject) => this.startWaiters.push({ resolve, reject })));
    for (let i = 0; i < first; i++) this.spawn();
    try {
      await Promise.all(ready);
    } catch (err) {
      await this.close({ cold: true });
      throw err;
    }
  }

  async run(request: TaskRequest, deps: RunDeps): Promise<FunctionOutcome> {
    if (CANVAS_BUILTINS_THAT_SEND.has(request.name)) return this.runInWorker(request, deps);
    this.busy++;
    const startedAt = performance.now();
    try {
      const member = await this.acquire();
      return await this.runOn(member, request, deps, startedAt);
    } catch (error) {
      return { ok: false, error, startedAt };
    } finally {
      this.busy--;
    }
  }

  /**
   * A canvas built-in that sends messages or reads results runs here, on the
   * worker's event loop (a member's own app has its own connections: on memory://
   * another broker altogether). It holds a slot as on the async pool: until its code
   * returns, even past a hard time limit.
   */
  private async runInWorker(request: TaskRequest, deps: RunDeps): Promise<FunctionOutcome> {
    this.busy++;
    const ran = await runTaskFunction(request, deps);
    if (!ran.stillRunning) this.busy--;
    else
      void ran.stillRunning.then(() => {
        this.busy--;
        this.onSlotFreed?.();
      });
    return ran;
  }

  /** Stop every member now (after a warm shutdown finished its tasks; at once when cold). */
  async close(_options: { cold?: boolean } = {}): Promise<void> {
    this.closed = true;
    for (const waiter of this.waiters.splice(0)) waiter.reject(new WorkerLostError('The pool is closing'));
    const exits = [...this.members].map(
      (m) =>
        new Promise<void>((resolve) => {
          const previous = m.executor;
          previous.onExit((how) => {
            this.onExit(m, how);
            resolve();
          });
          m.state = 'gone';
          previous.kill();
        }),
    );
    await Promise.race([Promise.all(exits), new Promise((r) => setTimeout(r, 5000).unref())]);
  }

  private live(): number {
    let n = 0;
    for (const m of this.members) if (m.state !== 'gone') n++;
    return n;
  }

  private starting(): number {
    let n = 0;
    for (const m of this.members) if (m.state === 'starting') n++;
    return n;
  }

  private spawn(): Member {
    const index = this.nextIndex++;
    const spawnOne = this.o.kind === 'threads' ? spawnThread : spawnProcess;
    const executor = spawnOne(index, { config: this.o.config, heapLimitMb: this.o.heapLimitMb });
    const member: Member = { executor, state: 'starting', tasks: 0 };
    this.members.add(member);
    executor.onMessage((m) => this.onMessage(member, m));
    executor.onExit((how) => this.onExit(member, how));
    return member;
  }

  /** Keep the minimum alive, and start members for waiting work (up to `concurrency`). */
  private maintain(): void {
    if (this.closed) return;
    if (this.broken) {
      for (const waiter of this.waiters.splice(0)) waiter.reject(this.broken);
      return;
    }
    while (this.live() < this.min) this.spawn();
    while (this.waiters.length > this.starting() && this.live() < this.max) this.spawn();
  }

  private acquire(): Promise<Member> {
    const member = this.idle.pop();
    if (member) {
      clearTimeout(member.idleTimer);
      member.state = 'busy';
      return Promise.resolve(member);
    }
    return new Promise<Member>((resolve, reject) => {
      this.waiters.push({ resolve, reject });
      this.maintain();
    });
  }

  /** A member is free: give it to waiting work, or park it (idle members above the minimum stop later). */
  private release(member: Member): void {
    if (member.state === 'gone') return;
    if (this.live() > this.max) {
      this.retire(member, `pool shrunk to ${this.max}`);
      return;
    }
    const waiter = this.waiters.shift();
    if (waiter) {
      member.state = 'busy';
      waiter.resolve(member);
      return;
    }
    member.state = 'idle';
    this.idle.push(member);
    if (this.live() > this.min) {
      member.idleTimer = setTimeout(() => {
        if (member.state === 'idle' && this.live() > this.min) this.retire(member, 'idle (autoscale)');
      }, this.o.idleMs ?? 30_000);
      member.idleTimer.unref();
    }
  }

  /** Stop a member that is not running a task; a new one takes its place if needed. */
  private retire(member: Member, why: string): void {
    member.state = 'gone';
    const i = this.idle.indexOf(member);
    if (i >= 0) this.idle.splice(i, 1);
    this.o.log.info({ member: member.executor.label, pid: member.executor.pid }, `${member.executor.label} (pid ${member.executor.pid}) retired: ${why}`);
    member.executor.kill();
    this.maintain();
  }

  private runOn(member: Member, request: TaskRequest, deps: RunDeps, startedAt: number): Promise<FunctionOutcome> {
    return storeStarted(request, deps, member.executor.pid).then(
      () => taskPrerun(request, deps),
    ).then(
      () =>
        new Promise<FunctionOutcome>((resolve) => {
          const { log } = this.o;
          const limits = timeLimitsFor(request, deps.timeLimits);
          const what = `${request.name}[${request.id}]`;
          const cancelSoftLine =
            limits.soft === null ? () => undefined : longTimeout(() => log.warn({ softTimeLimit: limits.soft }, `Soft time limit (${limits.soft}s) exceeded for ${what}`), limits.soft * 1000);
          let cancelHard = () => undefined as void;
          const job: RunningJob = {
            id: this.nextJob++,
            request,
            startedAt,
            finish: (outcome) => {
              cancelSoftLine();
              cancelHard();
              if (member.job === job) member.job = undefined;
              resolve(outcome);
            },
          };
          member.job = job;
          if (limits.hard !== null) {
            const hard = limits.hard;
            cancelHard = longTimeout(() => {
              log.error({ task: request.name, id: request.id, timeLimit: hard }, `Hard time limit (${hard}s) exceeded for ${what}; terminating ${member.executor.label} (pid ${member.executor.pid})`);
              member.state = 'gone';
              member.executor.kill();
              job.finish({ ok: false, error: new TimeLimitExceeded(hard), startedAt });
            }, hard * 1000);
          }
          try {
            member.executor.send({ type: 'run', job: job.id, request: jobRequest(request, limits.soft) });
          } catch (error) {
            job.finish({ ok: false, error, startedAt });
            this.release(member);
          }
        }),
    );
  }

  private onMessage(member: Member, message: FromChild): void {
    switch (message.type) {
      case 'ready': {
        member.executor.pid = message.pid;
        this.startWaiters.shift()?.resolve();
        this.release(member);
        return;
      }
      case 'load-failed': {
        member.state = 'gone';
        member.executor.kill();
        const err = new ConfigurationError(`The ${this.o.kind} pool could not load the app in ${member.executor.label}: ${message.message}`);
        const starter = this.startWaiters.shift();
        if (starter) starter.reject(err);
        else {
          this.o.log.error({ err }, `${err.message}; no more ${this.o.kind === 'threads' ? 'threads' : 'child processes'} are started: fix the module and restart the worker`);
          this.broken = err;
          this.maintain();
        }
        return;
      }
      case 'done': {
        const job = member.job;
        if (!job || job.id !== message.job) return;
        member.tasks++;
        job.finish(message.ok ? { ok: true, retval: message.retval, startedAt: job.startedAt } : { ok: false, error: rebuildError(message.error, job.request.id), startedAt: job.startedAt });
        const { maxTasksPerChild, maxMemoryPerChild } = this.o;
        if (maxTasksPerChild && member.tasks >= maxTasksPerChild) this.retire(member, `ran ${member.tasks} tasks (maxTasksPerChild ${maxTasksPerChild})`);
        else if (maxMemoryPerChild && message.memoryKiB > maxMemoryPerChild) this.retire(member, `uses ${message.memoryKiB} KiB > maxMemoryPerChild ${maxMemoryPerChild} KiB`);
        else this.release(member);
        return;
      }
      case 'call': {
        const job = member.job;
        if (!job || job.id !== message.job) return;
        const reply = (m: ToChild) => {
          try {
            member.executor.send(m);
          } catch {
            // the member died meanwhile: its exit fails the task
          }
        };
        const fail = (err: unknown) => reply({ type: 'reply', call: message.call, ok: false, error: transferError(err) });
        if (message.method === 'updateState') {
          job.request.updateState(message.state, message.meta).then(() => reply({ type: 'reply', call: message.call, ok: true }), fail);
        } else if (message.method === 'replace') {
          // Always rejects: with the Ignore that ends the run once the replacement was sent.
          job.request.replace(job.request.app.signatureFromWire(message.sig)).catch(fail);
        } else if (message.method === 'addToChord') {
          this.addToChord(job.request, message.sig, message.lazy).then((added) => reply({ type: 'reply', call: message.call, ok: true, value: added }), fail);
        } else {
          const exc = message.options.exc ? rebuildError(message.options.exc, job.request.id) : undefined;
          job.request.retry({ ...message.options, exc }).catch((err: unknown) =>
            reply({ type: 'reply', call: message.call, ok: false, error: transferError(err), rethrowExc: exc !== undefined && err === exc && !(err instanceof Retry) }),
          );
        }
        return;
      }
    }
  }

  /**
   * `this.addToChord` for a member: added to the chord here (the parent holds the
   * broker and backend connections), sent unless lazy; the frozen signature goes
   * back so the member can return its result handle (or the signature, when lazy).
   */
  private async addToChord(request: TaskRequest, wire: WireSignature, lazy: boolean): Promise<WireSignature> {
    const added = await request.addToChord(request.app.signatureFromWire(wire), true);
    if (!(added instanceof Signature)) throw new TypeError('addToChord(sig, true) did not return the signature');
    if (!lazy) await added.delay();
    return added.toJSON();
  }

  private onExit(member: Member, how: string): void {
    if (!this.members.delete(member)) return;
    const wasGone = member.state === 'gone';
    member.state = 'gone';
    const i = this.idle.indexOf(member);
    if (i >= 0) this.idle.splice(i, 1);
    clearTimeout(member.idleTimer);
    const job = member.job;
    if (job?.terminatedBy) {
      this.o.log.info({ member: member.executor.label, pid: member.executor.pid, id: job.request.id }, `Process '${member.executor.label}' pid:${member.executor.pid} terminated by remote control (${how})`);
      job.finish({ ok: false, error: new TaskTerminated(job.terminatedBy), startedAt: job.startedAt });
    } else if (job) {
      this.o.log.error({ member: member.executor.label, pid: member.executor.pid, id: job.request.id }, `Process '${member.executor.label}' pid:${member.executor.pid} exited with '${how}'`);
      job.finish({ ok: false, error: new WorkerLostError(`Worker exited prematurely: ${how} Job: ${job.id}.`), startedAt: job.startedAt });
    } else if (!wasGone && !this.closed) {
      this.o.log.error({ member: member.executor.label, pid: member.executor.pid }, `Process '${member.executor.label}' pid:${member.executor.pid} exited with '${how}'`);
      this.startWaiters.shift()?.reject(new WorkerLostError(`${member.executor.label} exited while starting: ${how}`));
    }
    this.maintain();
    this.onSlotFreed?.();
  }
}

/** The request as data for the member. */
function jobRequest(req: TaskRequest, softTimeLimit: number | null): JobRequest {
  return {
    id: req.id,
    name: req.name,
    args: [...req.args],
    kwargs: { ...req.kwargs },
    retries: req.retries,
    eta: req.eta,
    expires: req.expires,
    headers: { ...req.headers },
    properties: { ...req.properties },
    deliveryInfo: { ...req.deliveryInfo },
    hostname: req.hostname,
    parentId: req.parentId,
    rootId: req.rootId,
    groupId: req.groupId,
    groupIndex: req.groupIndex,
    softTimeLimit,
  };
}
