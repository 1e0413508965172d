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
 * - Sent ahead: at its full size the pool accepts two runs per member
 *   (`capacity`); a busy member is sent its next task, holds it, and starts it as
 *   soon as the running one ends, without a round trip to this process (Celery's
 *   prefork fills its children's queue ahead the same way). A task held ahead is
 *   reserved, not active, until the member says it started; its time limits run
 *   from then. Revoked before it starts, it is dropped (REVOKED). If its member
 *   dies or is retired first, it goes to another member. Runs that need this
 *   process between their start and their function (STARTED stored with
 *   `trackStarted`, `taskPrerun` handlers) wait for an idle member instead.
 * - Autoscale: between `minConcurrency` and `concurrency` members; new ones start
 *   when every member is busy and work waits (nothing is sent ahead below the
 *   maximum), idle ones above the minimum stop after `idleMs`.
 * - Remote control: `resize` (pool_grow / pool_shrink), `setAutoscale`, and
 *   `terminate` (revoke with terminate: the member running the task gets the
 *   signal; a thread is terminated and replaced; the task is stored REVOKED).
 */
import { CANVAS_BUILTINS_THAT_SEND } from '../canvas/builtins.js';
import { Signature } from '../canvas/signature.js';
import { ConfigurationError, Retry, TaskRevokedError, TaskTerminated, TimeLimitExceeded, WorkerLostError } from '../errors.js';
import { hasSignal } from '../signals.js';
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
  /**
   * Send each busy member its next task ahead (default true), so it starts it as
   * soon as the previous one ends, without waiting for this process.
   */
  sendAhead?: boolean;
}

/** A run handed to the pool: waiting for a member, held ahead by one, or running. */
interface Job {
  id: number;
  request: TaskRequest;
  deps: RunDeps;
  onStart?: () => void;
  resolve: (outcome: FunctionOutcome) => void;
  /** `performance.now()` when the member started it (when it was accepted, until then). */
  startedAt: number;
  /** `preparing`: STARTED / task_prerun before the send; `ahead`: sent to a busy member, not started; `running`. */
  phase: 'waiting' | 'preparing' | 'ahead' | 'running';
  /** Time-limit timers, armed when it starts. */
  cancelTimers: () => void;
  /** Set when remote control terminated it: its member's exit is the termination, not a loss. */
  terminatedBy?: NodeJS.Signals;
  /** Revoked while held ahead: `cancel` was sent to the member. */
  cancelling?: boolean;
  settled?: boolean;
}

interface Member {
  executor: Executor;
  state: 'starting' | 'idle' | 'busy' | 'gone';
  tasks: number;
  /** The job running (or being prepared for an idle member). */
  job?: Job;
  /** The job sent ahead: the member starts it when `job` ends. */
  ahead?: Job;
  idleTimer?: NodeJS.Timeout;
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
  /** Runs accepted and not yet on a member, in order (a run given back by a dead member goes first). */
  private readonly waiting: Job[] = [];
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

  /** Runs accepted at once: one running and one held ahead per member (Celery's prefork fills its children's queue the same way). */
  get capacity(): number {
    return this.o.sendAhead === false ? this.max : this.max * 2;
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

  /** Retire idle members above the maximum (busy ones retire when their tasks are done); start up to the minimum. */
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
   * A task held ahead (not started) is discarded instead (`discardQueued`).
   */
  terminate(taskId: string, signal: NodeJS.Signals): boolean {
    for (const member of this.members) {
      const job = member.job;
      if (!job || job.phase !== 'running' || job.request.id !== taskId || member.state === 'gone') continue;
      this.o.log.info({ id: taskId, signal, member: member.executor.label, pid: member.executor.pid }, `Terminating ${taskId} (${signal}) in ${member.executor.label} (pid ${member.executor.pid})`);
      job.terminatedBy = signal;
      if (this.o.kind === 'threads') {
        member.state = 'gone';
        member.executor.kill();
        this.finish(member, job, { ok: false, error: new TaskTerminated(signal), startedAt: job.startedAt });
      } else {
        member.executor.kill(signal);
      }
      return true;
    }
    return this.discardQueued(taskId);
  }

  discardQueued(taskId: string): boolean {
    const i = this.waiting.findIndex((j) => j.request.id === taskId);
    if (i >= 0) {
      const [job] = this.waiting.splice(i, 1);
      this.settle(job!, discarded(job!));
      return true;
    }
    for (const member of this.members) {
      const job = member.ahead;
      if (!job || job.request.id !== taskId || member.state === 'gone') continue;
      if (!job.cancelling) {
        job.cancelling = true;
        this.sendTo(member, { type: 'cancel', job: job.id });
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
    return !this.closed && this.busy < this.capacity;
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

  run(request: TaskRequest, deps: RunDeps, onStart?: () => void): Promise<FunctionOutcome> {
    if (CANVAS_BUILTINS_THAT_SEND.has(request.name)) return this.runInWorker(request, deps, onStart);
    this.busy++;
    return new Promise<FunctionOutcome>((resolve) => {
      const job: Job = {
        id: this.nextJob++,
        request,
        deps,
        onStart,
        startedAt: performance.now(),
        phase: 'waiting',
        cancelTimers: () => undefined,
        resolve: (outcome) => {
          this.busy--;
          resolve(outcome);
        },
      };
      if (this.closed) return this.settle(job, { ok: false, error: new WorkerLostError('The pool is closing'), startedAt: job.startedAt });
      this.waiting.push(job);
      this.dispatch();
    });
  }

  /**
   * A canvas built-in that sends messages or reads results runs here, on the
   * worker's event loop (a member's own app has its own connections: on memory://
   * another broker altogether). It holds a slot as on the async pool: until its code
   * returns, even past a hard time limit.
   */
  private async runInWorker(request: TaskRequest, deps: RunDeps, onStart?: () => void): Promise<FunctionOutcome> {
    this.busy++;
    onStart?.();
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
    for (const job of this.waiting.splice(0)) this.settle(job, { ok: false, error: new WorkerLostError('The pool is closing'), startedAt: job.startedAt });
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
    const executor = spawnOne(index, { config: { ...this.o.config, maxMemoryKiB: this.o.maxMemoryPerChild ?? null }, heapLimitMb: this.o.heapLimitMb });
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
      for (const job of this.waiting.splice(0)) this.settle(job, { ok: false, error: this.broken, startedAt: job.startedAt });
      return;
    }
    while (this.live() < this.min) this.spawn();
    while (this.waiting.length > this.starting() && this.live() < this.max) this.spawn();
  }

  /**
   * Give waiting runs to members, in order: an idle member first; else, when the
   * pool is at its size (no member to start instead), the next run is sent ahead to
   * a busy member that holds none yet.
   */
  private dispatch(): void {
    while (this.waiting.length > 0 && !this.closed) {
      const job = this.waiting[0]!;
      const idle = this.idle.pop();
      if (idle) {
        this.waiting.shift();
        clearTimeout(idle.idleTimer);
        idle.state = 'busy';
        this.startOn(idle, job);
        continue;
      }
      const holder = this.canSendAhead(job) ? this.memberToHoldAhead() : undefined;
      if (!holder) break;
      this.waiting.shift();
      holder.ahead = job;
      job.phase = 'ahead';
      this.sendTo(holder, { type: 'run', job: job.id, request: jobRequest(job.request, timeLimitsFor(job.request, job.deps.timeLimits).soft), now: false });
    }
    this.maintain();
  }

  /** Sent ahead only when nothing must happen in the worker between its start and its function (STARTED stored, task_prerun handlers). */
  private canSendAhead(job: Job): boolean {
    return this.o.sendAhead !== false && this.live() >= this.max && !needsWorkerBeforeStart(job);
  }

  /** A busy member running a task, holding none ahead, that will run another (not retiring at `maxTasksPerChild`, pool not shrinking). */
  private memberToHoldAhead(): Member | undefined {
    if (this.live() > this.max) return undefined;
    const limit = this.o.maxTasksPerChild;
    for (const m of this.members) {
      if (m.state !== 'busy' || m.ahead || m.job?.phase !== 'running') continue;
      if (limit && m.tasks + 2 > limit) continue;
      return m;
    }
    return undefined;
  }

  /** Run `job` on an idle member now: STARTED and task_prerun first (when there are any), then the send. */
  private startOn(member: Member, job: Job): void {
    member.job = job;
    job.phase = 'preparing';
    const { request, deps } = job;
    const send = () => {
      if (member.state === 'gone' || member.job !== job) return;
      this.begin(member, job);
      this.sendTo(member, { type: 'run', job: job.id, request: jobRequest(request, timeLimitsFor(request, deps.timeLimits).soft), now: true });
    };
    if (!needsWorkerBeforeStart(job)) return send();
    storeStarted(request, deps, member.executor.pid)
      .then(() => taskPrerun(request, deps))
      .then(send, (error: unknown) => {
        this.finish(member, job, { ok: false, error, startedAt: job.startedAt });
        this.afterJob(member);
      });
  }

  /** The member started `job`: it is active from now, and its time limits run from now. */
  private begin(member: Member, job: Job): void {
    job.phase = 'running';
    job.startedAt = performance.now();
    member.job = job;
    if (member.ahead === job) member.ahead = undefined;
    job.onStart?.();
    const { log } = this.o;
    const { request } = job;
    const limits = timeLimitsFor(request, job.deps.timeLimits);
    const what = `${request.name}[${request.id}]`;
    if (limits.soft === null && limits.hard === null) return;
    const cancelSoftLine =
      limits.soft === null ? () => undefined : longTimeout(() => log.warn({ softTimeLimit: limits.soft }, `Soft time limit (${limits.soft}s) exceeded for ${what}`), limits.soft * 1000);
    let cancelHard = () => undefined as void;
    if (limits.hard !== null) {
      const hard = limits.hard;
      cancelHard = longTimeout(() => {
        log.error({ task: request.name, id: request.id, timeLimit: hard }, `Hard time limit (${hard}s) exceeded for ${what}; terminating ${member.executor.label} (pid ${member.executor.pid})`);
        member.state = 'gone';
        member.executor.kill();
        this.finish(member, job, { ok: false, error: new TimeLimitExceeded(hard), startedAt: job.startedAt });
      }, hard * 1000);
    }
    job.cancelTimers = () => {
      cancelSoftLine();
      cancelHard();
    };
  }

  /** Resolve a run once. */
  private settle(job: Job, outcome: FunctionOutcome): void {
    if (job.settled) return;
    job.settled = true;
    job.cancelTimers();
    job.resolve(outcome);
  }

  /** The running `job` of `member` ended. */
  private finish(member: Member, job: Job, outcome: FunctionOutcome): void {
    if (member.job === job) member.job = undefined;
    this.settle(job, outcome);
  }

  private sendTo(member: Member, message: ToChild): void {
    try {
      member.executor.send(message);
    } catch (error) {
      // The member is dying: its exit fails its running task and gives back the one held ahead.
      this.o.log.debug({ err: error, member: member.executor.label }, `Could not send to ${member.executor.label}`);
    }
  }

  /** After a member's running task ended: retire it, keep it busy (it started the one held ahead), or free it. */
  private afterJob(member: Member): void {
    if (member.state === 'gone') return;
    if (member.job || member.ahead) {
      this.dispatch();
      return;
    }
    this.release(member);
  }

  /** A member has nothing to run: give it to waiting work, or park it (idle members above the minimum stop later). */
  private release(member: Member): void {
    if (member.state === 'gone') return;
    if (this.live() > this.max) {
      this.retire(member, `pool shrunk to ${this.max}`);
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
    this.dispatch();
  }

  /** Stop a member; a new one takes its place if needed (a task it held ahead goes to another one when it has exited). */
  private retire(member: Member, why: string): void {
    member.state = 'gone';
    const i = this.idle.indexOf(member);
    if (i >= 0) this.idle.splice(i, 1);
    this.o.log.info({ member: member.executor.label, pid: member.executor.pid }, `${member.executor.label} (pid ${member.executor.pid}) retired: ${why}`);
    member.executor.kill();
    this.maintain();
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
      case 'started': {
        if (member.ahead?.id === message.job && member.state !== 'gone') this.begin(member, member.ahead);
        this.dispatch();
        return;
      }
      case 'cancelled': {
        const job = member.ahead;
        if (!job || job.id !== message.job) return;
        member.ahead = undefined;
        this.settle(job, discarded(job));
        this.afterJob(member);
        return;
      }
      case 'done': {
        const job = member.job;
        if (!job || job.id !== message.job) return;
        member.tasks++;
        this.finish(member, job, message.ok ? { ok: true, retval: message.retval, startedAt: job.startedAt } : { ok: false, error: rebuildError(message.error, job.request.id), startedAt: job.startedAt });
        if (message.next !== undefined && member.ahead?.id === message.next && member.state !== 'gone') this.begin(member, member.ahead);
        const { maxTasksPerChild, maxMemoryPerChild } = this.o;
        // Past the memory limit the member starts nothing more: a task it held goes to another member when it has exited.
        if (maxMemoryPerChild && message.memoryKiB > maxMemoryPerChild) this.retire(member, `uses ${message.memoryKiB} KiB > maxMemoryPerChild ${maxMemoryPerChild} KiB`);
        else if (maxTasksPerChild && member.tasks >= maxTasksPerChild && !member.job && !member.ahead) this.retire(member, `ran ${member.tasks} tasks (maxTasksPerChild ${maxTasksPerChild})`);
        else this.afterJob(member);
        return;
      }
      case 'call': {
        const job = member.job;
        if (!job || job.id !== message.job) return;
        const reply = (m: ToChild) => this.sendTo(member, m);
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
    const what = `Process '${member.executor.label}' pid:${member.executor.pid}`;
    if (job?.terminatedBy) {
      this.o.log.info({ member: member.executor.label, pid: member.executor.pid, id: job.request.id }, `${what} terminated by remote control (${how})`);
      this.finish(member, job, { ok: false, error: new TaskTerminated(job.terminatedBy), startedAt: job.startedAt });
    } else if (job && job.phase === 'running' && !job.settled) {
      this.o.log.error({ member: member.executor.label, pid: member.executor.pid, id: job.request.id }, `${what} exited with '${how}'`);
      this.finish(member, job, { ok: false, error: new WorkerLostError(`Worker exited prematurely: ${how} Job: ${job.id}.`), startedAt: job.startedAt });
    } else if (!job && !member.ahead && !wasGone && !this.closed) {
      this.o.log.error({ member: member.executor.label, pid: member.executor.pid }, `${what} exited with '${how}'`);
      this.startWaiters.shift()?.reject(new WorkerLostError(`${member.executor.label} exited while starting: ${how}`));
    }
    // Not started there (held ahead, or still being prepared): given to another member, not lost and not failed.
    const notStarted = [member.ahead, job && !job.settled && job.phase !== 'running' ? job : undefined].filter((j): j is Job => j !== undefined && !j.settled);
    member.ahead = undefined;
    member.job = undefined;
    for (const back of notStarted.reverse()) {
      if (back.cancelling) {
        this.settle(back, discarded(back));
        continue;
      }
      if (this.closed) {
        this.settle(back, { ok: false, error: new WorkerLostError(`The pool closed before the task started: ${how}`), startedAt: back.startedAt });
        continue;
      }
      this.o.log.info({ id: back.request.id, member: member.executor.label }, `${back.request.name}[${back.request.id}] was held by ${member.executor.label}, which exited before starting it: given to another member`);
      back.phase = 'waiting';
      back.cancelTimers = () => undefined;
      this.waiting.unshift(back);
    }
    this.dispatch();
    this.onSlotFreed?.();
  }
}

/** STARTED to store (`trackStarted`) or `taskPrerun` handlers: done in the worker right before the send, so never sent ahead. */
function needsWorkerBeforeStart({ request, deps }: Job): boolean {
  if (hasSignal(deps.app, 'taskPrerun')) return true;
  return deps.storeResult !== null && !request.ignoreResult && (request.task.options.trackStarted ?? deps.app.settings.taskTrackStarted);
}

/** A revoked run dropped before it started (stored REVOKED, like a revoked message Celery discards). */
function discarded(job: Job): FunctionOutcome {
  return { ok: false, error: new TaskRevokedError('revoked'), startedAt: job.startedAt };
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
