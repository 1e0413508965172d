/**
 * A received message from delivery to settlement: validate → hold for its ETA
 * (or park it) → wait for a pool slot → run → record the outcome → ack / reject.
 * Every delivery is settled exactly once (ack, reject, defer) or, at shutdown,
 * given back with `Consumer.restore`.
 */
import type { Celeriac } from '../app.js';
import type { RevokedSet } from '../control/revoked-set.js';
import type { WorkerRequests } from '../control/worker-requests.js';
import type { TaskEvents } from '../events/task-events.js';
import type { ResultBackend, ResultDocument } from '../backends/backend.js';
import type { Consumer, Delivery } from '../brokers/broker.js';
import { MessageTooLarge, NotRegistered, TaskRevokedError } from '../errors.js';
import type { Logger } from '../logger.js';
import { toExceptionDocument } from '../protocol/exceptions.js';
import { decodeTaskMessage, peekTaskName, type DecodedTask } from '../protocol/task-message.js';
import { States } from '../states.js';
import { Batcher } from './batcher.js';
import { EarlyAckGate } from './early-ack-gate.js';
import { EtaHolder } from './eta-holder.js';
import type { Pool } from './pool.js';
import { resultDocument } from './result-document.js';
import { ResultWriter } from './result-writer.js';
import { recordOutcome, recordSuccessInline, runsInline, type FunctionOutcome, type RunDeps, type RunOutcome, type WriteResult } from './run-task.js';
import { TaskRequest } from './task-request.js';
import type { TimeLimits } from './time-limits.js';
import { RateLimiter } from './rate-limits.js';
import { emitSignal, hasSignal } from '../signals.js';

/** Counters for tests, the banner and (later) `inspect stats`. */
export interface WorkerStats {
  processed: number;
  succeeded: number;
  failed: number;
  retried: number;
  rejected: number;
  active: number;
  reserved: number;
  held: number;
}

/** What the lifecycle needs from the worker. */
export interface LifecycleOptions {
  app: Celeriac;
  consumer: Consumer;
  pool: Pool;
  backend: ResultBackend | null;
  hostname: string;
  log: Logger;
  stats: WorkerStats;
  /** Runs recording their outcome at most (a slow backend pushes back on new runs). */
  recordingLimit: number;
  /** A prefetch slot was freed. */
  onSlotFreed: () => void;
  /** The worker's default time limits (under the message's and the task's). */
  timeLimits?: Partial<TimeLimits>;
  /** What remote control reads (held requests, totals per task) and the revoked ids to discard. */
  control?: { requests: WorkerRequests; revoked: RevokedSet; totals: Map<string, number>; events?: TaskEvents };
}

/** A late-ack message whose outcome could not be stored is delivered again after this long. */
const REDELIVER_AFTER_BACKEND_ERROR_MS = 5_000;

/** Validates, schedules, runs and settles received messages. */
export class RequestLifecycle {
  private readonly ready: TaskRequest[] = [];

  /** Requests received and waiting for a pool slot (not started, not held for an ETA). */
  get queued(): number {
    return this.ready.length;
  }

  private readonly unsettled = new Map<string, Delivery>();
  /** Runs begun by `pump` and not yet handed to the pool. */
  private starting = 0;
  private readonly runs = new Set<Promise<void>>();
  private readonly acks: Batcher<Delivery>;
  private readonly earlyAcks: EarlyAckGate;
  private readonly results: ResultWriter | undefined;
  private readonly runDeps: RunDeps;
  /** `runDeps.storeResult` without a promise, for inline runs. */
  private readonly writeResult: WriteResult | null;
  private readonly eta: EtaHolder;
  private idleWaiters: (() => void)[] = [];
  /** Per-task token buckets (`rateLimit`); `Worker.setRateLimit` changes them. */
  readonly rateLimits: RateLimiter;
  private recording = 0;
  private pumpScheduled = false;
  /** Times everything held was forfeited after a hang (a run awaiting its early ack checks it). */
  private forfeits = 0;
  private accepting = true;

  constructor(private readonly o: LifecycleOptions) {
    const { consumer, backend, app, log } = o;
    // A slot is freed in the same step as its ack is handed to the consumer (not before):
    // a consumer that counts its prefetch window from its unsettled deliveries (AMQP) then
    // sees the same count as the worker's free slots.
    this.acks = new Batcher((batch) => {
      for (const d of batch) this.settle(d);
      return consumer.ack(batch);
    });
    this.earlyAcks = new EarlyAckGate(
      consumer,
      (err) => log.error({ err }, 'Ack failed; the message will be redelivered'),
      (deliveries) => {
        for (const d of deliveries) this.settle(d);
      },
    );
    this.results = backend ? new ResultWriter(backend, { log, retryWindowMs: app.settings.resultBackendRetryWindow * 1000 }) : undefined;
    const results = this.results;
    this.rateLimits = new RateLimiter((name) => (app.hasTask(name) ? app.getTask(name).options.rateLimit : undefined) ?? app.settings.taskDefaultRateLimit);
    this.runDeps = { app, log, storeResult: results ? (doc) => results.add(doc) : null, timeLimits: o.timeLimits };
    this.writeResult = results ? (doc, done) => results.write(doc, done) : null;
    // A pool slot can free up later than its run's outcome (code past its hard time limit, a replaced child).
    o.pool.onSlotFreed = () => this.pump();
    this.eta = new EtaHolder(app.settings.workerEtaHoldSeconds * 1000, {
      park: (request) => this.park(request),
      held: () => {
        // Held messages do not use a prefetch slot.
        o.stats.reserved--;
        o.stats.held++;
        o.onSlotFreed();
      },
      due: (request) => {
        o.stats.held--;
        o.stats.reserved++;
        o.control?.requests.due(request);
        this.enqueue(request);
      },
    });
  }

  /** Validate a delivery and route it to the pool, the ETA holder, or rejection. */
  receive(delivery: Delivery): void {
    const { app, stats } = this.o;
    stats.reserved++;
    this.unsettled.set(delivery.deliveryTag, delivery);
    const s = app.settings;
    const message = delivery.message;
    // Size first, from the raw bytes: a transport delivers an oversized message unparsed.
    if (delivery.sizeBytes > s.maxMessageSize || delivery.decodeError instanceof MessageTooLarge) {
      const taskId = typeof message?.headers?.id === 'string' ? message.headers.id : delivery.taskId;
      const why = `${taskId ? `Message ${taskId}` : 'A message'} of ${delivery.sizeBytes} bytes from queue ${delivery.queue} exceeds maxMessageSize (${s.maxMessageSize}); rejected. Raise maxMessageSize or send smaller payloads (e.g. a URL to the data).`;
      const err = new MessageTooLarge(why);
      this.discard(delivery, why, err);
      // A waiter gets the reason instead of PENDING forever (as for an unregistered task).
      if (taskId) this.store(resultDocument({ id: taskId, groupId: null, parentId: null }, States.FAILURE, toExceptionDocument(err)));
      return;
    }
    if (!message) {
      this.discard(delivery, `Received an undecodable message from queue ${delivery.queue} (${delivery.decodeError?.message ?? 'unknown error'}); rejected.`);
      return;
    }
    if (this.o.log.isLevelEnabled('debug')) {
      this.o.log.debug({ headers: message.headers, properties: message.properties, deliveryInfo: { ...delivery, message: undefined } }, 'Received message');
    }
    const name = peekTaskName(message);
    if (name !== null && !app.hasTask(name)) {
      const id = typeof message.headers.id === 'string' ? message.headers.id : null;
      this.discard(delivery, `Received unregistered task of type ${JSON.stringify(name)}; rejected. The message has been ignored and discarded. Did you import the module that defines it in the worker (-A)?`);
      if (hasSignal(app, 'taskUnknown')) void emitSignal(app, 'taskUnknown', { name, id, message, exc: new NotRegistered(name) });
      if (id) this.store(resultDocument({ id, groupId: null, parentId: null }, States.FAILURE, toExceptionDocument(new NotRegistered(name))));
      return;
    }
    let decoded: DecodedTask;
    try {
      decoded = decodeTaskMessage(message, s.acceptContent, { maxBodyBytes: s.maxMessageSize });
    } catch (err) {
      this.discard(delivery, `Received invalid task message: ${(err as Error).message}; rejected.`, err);
      return;
    }
    if (decoded.protocol === 1 && !s.workerAcceptProtocolV1) {
      this.discard(
        delivery,
        `Received a protocol v1 message (task ${JSON.stringify(decoded.name)}, id ${decoded.id}); rejected. ` +
          'Send protocol 2 (Celery ≥ 4 default: task_protocol=2), or set workerAcceptProtocolV1: true to run v1 messages.',
      );
      return;
    }
    if (!app.hasTask(decoded.name)) {
      this.discard(delivery, `Received unregistered task of type ${JSON.stringify(decoded.name)}; rejected.`);
      return;
    }
    if ((delivery.redeliveries ?? 0) > s.workerMaxRedeliveries) {
      this.giveUp(delivery, decoded);
      return;
    }
    const request = new TaskRequest(decoded, delivery, app.getTask(decoded.name), this.o.hostname, app, this.o.backend);
    if (decoded.expires && decoded.expires.getTime() <= Date.now()) {
      this.revokeExpired(request);
      return;
    }
    if (this.o.control?.revoked.has(request.id)) {
      this.discardRevoked(request);
      return;
    }
    // Guarded: building the line and its bindings costs on every task even when info is off.
    if (this.o.log.isLevelEnabled('info')) this.o.log.info({ task: request.name, id: request.id }, `Task ${request.name}[${request.id}] received`);
    if (hasSignal(app, 'taskReceived')) void emitSignal(app, 'taskReceived', { request });
    const delayMs = decoded.eta ? decoded.eta.getTime() - Date.now() : 0;
    this.o.control?.requests.received(request, delayMs > 0);
    this.o.control?.events?.received(request);
    if (delayMs > 0) this.eta.hold(request, delayMs);
    else this.enqueue(request);
  }

  /**
   * A message whose holders kept dying (a task that crashes the process): store
   * FAILURE as Celery does for a lost worker, and drop the message.
   */
  private giveUp(delivery: Delivery, decoded: DecodedTask): void {
    const limit = this.o.app.settings.workerMaxRedeliveries;
    const why =
      `Task ${decoded.name}[${decoded.id}] was redelivered ${delivery.redeliveries} times after the worker holding it died or stalled ` +
      `(workerMaxRedeliveries = ${limit}); giving up: stored FAILURE (WorkerLostError) and dropped the message. ` +
      'Look for a task that crashes or blocks its process, or raise workerMaxRedeliveries.';
    this.o.log.error({ id: decoded.id, task: decoded.name, redeliveries: delivery.redeliveries }, why);
    this.o.stats.failed++;
    this.store(resultDocument(decoded, States.FAILURE, { exc_type: 'WorkerLostError', exc_message: [why], exc_module: 'billiard.exceptions' }));
    this.ackDelivery(delivery);
  }

  /** Far future: give it back to the broker instead of holding it past the visibility timeout. */
  private park(request: TaskRequest): void {
    this.settle(request.delivery);
    this.o.control?.requests.done(request);
    this.o.consumer.defer(request.delivery, request.eta!).catch((err) => this.o.log.error({ err, id: request.id }, 'Could not park ETA message; it stays unacked and will be restored'));
    this.o.log.info({ id: request.id, eta: request.eta }, `Task ${request.name}[${request.id}] parked broker-side until ${request.eta!.toISOString()}`);
  }

  private enqueue(request: TaskRequest): void {
    // Over its rate limit: the message waits (reserved) for a token; other tasks go on.
    if (!this.rateLimits.admit(request.name, () => this.enqueueNow(request))) return;
    this.enqueueNow(request);
  }

  private enqueueNow(request: TaskRequest): void {
    this.ready.push(request);
    // After the current step: the messages of one reserve start as one batch.
    this.pumpSoon();
  }

  /**
   * Start queued requests while a slot is free. A slot is held only while the task
   * function runs; recording its outcome (callbacks, result write, late ack) goes on
   * after the slot is freed, bounded by `recordingLimit` so a slow backend pushes back.
   */
  private pump(): void {
    const { pool, stats } = this.o;
    // stats.active counts from here (an early ack is written before the pool runs the function).
    // `starting`: runs begun but not yet in the pool (waiting for their early ack); they
    // count against the pool's slots too, or a slot still held by code past its hard
    // limit could be handed out twice.
    // `capacity`: a thread/process pool also takes one run per member to hold ahead.
    const capacity = pool.capacity ?? pool.concurrency;
    const buffered = this.ready.length;
    let inline: TaskRequest[] | undefined;
    while (this.accepting && stats.active < capacity && pool.hasFreeSlot() && pool.active + this.starting < capacity && this.recording < this.o.recordingLimit && this.ready.length > 0) {
      const request = this.ready.shift()!;
      stats.active++;
      this.starting++;
      if (pool.runInline && !request.acksLate && runsInline(request, this.runDeps)) (inline ??= []).push(request);
      else this.track(this.execute(request));
    }
    if (inline) this.track(this.executeInline(inline));
    // The consumer loop may wait for the buffer to drain before it reserves more (`minBatch`).
    if (this.ready.length < buffered) this.o.onSlotFreed();
  }

  private track(started: Promise<void>): void {
    const run = started.finally(() => {
      this.runs.delete(run);
      this.pump();
      this.maybeIdle();
    });
    this.runs.add(run);
  }

  /**
   * `execute` for a batch of early-ack requests whose functions the pool runs on this
   * event loop with nothing around them (`runsInline`): one early-ack wait for the
   * batch, then each function called in turn, and a synchronous function's outcome
   * recorded without the promises of the general path. The order of every step for
   * one request is `execute`'s.
   */
  private async executeInline(batch: TaskRequest[]): Promise<void> {
    const { stats, consumer, control } = this.o;
    const pool = this.o.pool as Required<Pick<Pool, 'runInline'>> & Pool;
    const forfeits = this.forfeits;
    const release = (request: TaskRequest) => {
      control?.requests.done(request);
      this.starting--;
      stats.active--;
    };
    const starting: TaskRequest[] = [];
    for (const request of batch) {
      if (this.discardedBeforeRun(request)) release(request);
      else if (consumer.taskStarting?.(request.delivery, 'ack', this.failureTarget(request)) === false) release(request);
      else starting.push(request);
    }
    if (starting.length > 0) {
      await this.earlyAcks.passMany(starting.map((r) => r.delivery));
      // Resolved when every run of the batch has recorded its outcome.
      let unrecorded = 1;
      let allRecorded: () => void = () => undefined;
      const finished = () => {
        if (--unrecorded === 0) allRecorded();
      };
      for (const request of starting) {
        // Forfeited when the consumer released a hung event loop meanwhile.
        if (this.forfeits !== forfeits) {
          consumer.taskFinished?.(request.delivery);
          release(request);
          continue;
        }
        this.starting--;
        unrecorded++;
        const ran = pool.runInline(request, this.runDeps, this.onStart(request));
        if (ran instanceof Promise) {
          void ran.then((r) => {
            this.recordInline(request, r, finished);
            this.pumpSoon(); // its slot is free
          });
        } else this.recordInline(request, ran, finished);
      }
      this.pump();
      if (--unrecorded > 0) await new Promise<void>((resolve) => (allRecorded = resolve));
    } else this.pump();
  }

  /** The rest of an inline run once its function has returned: free the slot, record, settle, then `finished`. */
  private recordInline(request: TaskRequest, ran: FunctionOutcome, finished: () => void): void {
    this.recording++;
    this.o.stats.active--;
    const settled = () => {
      this.o.consumer.taskFinished?.(request.delivery);
      this.o.control?.requests.done(request);
      this.pumpSoon(); // a recording slot is free
      finished();
    };
    const inline = recordSuccessInline(request, this.runDeps, ran, this.writeResult, (outcome) => {
      try {
        this.recorded(request, ran, outcome);
      } finally {
        settled();
      }
    });
    if (!inline) void this.record(request, ran).finally(settled);
  }

  /** `pump` once the current microtasks are done: the runs freed by one batch reply start as one batch. */
  private pumpSoon(): void {
    if (this.pumpScheduled) return;
    this.pumpScheduled = true;
    process.nextTick(() => {
      this.pumpScheduled = false;
      this.pump();
    });
  }

  /**
   * Celery checks expiry and revocation again right before running (an ETA task may
   * expire, or be revoked, while held): true when the request was discarded for either.
   */
  private discardedBeforeRun(request: TaskRequest): boolean {
    if (request.expires && request.expires.getTime() <= Date.now()) {
      this.revokeExpired(request);
      return true;
    }
    if (this.o.control?.revoked.has(request.id)) {
      this.discardRevoked(request);
      return true;
    }
    return false;
  }

  /** For an early-ack run: the task whose FAILURE the consumer stores if the worker is lost while it runs (undefined: none stored). */
  private failureTarget(request: TaskRequest): { id: string; groupId: string | null; parentId: string | null } | undefined {
    const storesFailure = this.o.backend !== null && (!request.ignoreResult || this.o.app.settings.taskStoreErrorsEvenIfIgnored);
    return storesFailure ? { id: request.id, groupId: request.groupId ?? null, parentId: request.parentId ?? null } : undefined;
  }

  /** Active (inspect active, task-started) from when the function starts: a run held ahead by a pool member is reserved until then. */
  private onStart(request: TaskRequest): (() => void) | undefined {
    const control = this.o.control;
    if (!control) return undefined;
    return () => {
      control.requests.started(request);
      control.totals.set(request.name, (control.totals.get(request.name) ?? 0) + 1);
      control.events?.started(request);
    };
  }

  private async execute(request: TaskRequest): Promise<void> {
    const { stats } = this.o;
    let holdsSlot = true;
    // Counted in `starting` (by pump) until it is handed to the pool or ends without running.
    let waitingForPool = true;
    const enterPool = () => {
      if (!waitingForPool) return;
      waitingForPool = false;
      this.starting--;
    };
    const freeSlot = () => {
      if (!holdsSlot) return;
      holdsSlot = false;
      stats.active--;
      this.pump();
    };
    try {
      if (this.discardedBeforeRun(request)) return;
      const lateAck = request.acksLate;
      const forfeits = this.forfeits;
      // Refused when the consumer is settling a hung event loop: it may have given the message back.
      // An early-ack message counts as started-to-drop from before its ack is written until
      // the run has finished (a hang before the ack landed acks it; during the run, FAILURE is stored).
      const ifLost = lateAck && request.rejectOnWorkerLost ? 'requeue' : 'ack';
      const task = ifLost !== 'requeue' ? this.failureTarget(request) : undefined;
      if (this.o.consumer.taskStarting?.(request.delivery, ifLost, task) === false) return;
      try {
        if (!lateAck) {
          // Early ack, written before the function runs (as Celery's): a task that crashes
          // the process must not come back. Batched per turn; the reply is not awaited.
          // The gate frees the prefetch slot when it hands the ack to the consumer.
          await this.earlyAcks.pass(request.delivery);
        }
        // Forfeited when the consumer released a hung event loop meanwhile.
        if (this.forfeits !== forfeits) return;
        await this.runAndRecord(request, freeSlot, enterPool);
      } finally {
        if (!lateAck) this.o.consumer.taskFinished?.(request.delivery);
      }
    } finally {
      this.o.control?.requests.done(request);
      enterPool();
      freeSlot();
    }
  }

  /** Run the function in a pool slot, then record the outcome (and ack late / reject). */
  private async runAndRecord(request: TaskRequest, freeSlot: () => void, enterPool: () => void): Promise<void> {
    enterPool();
    const ran = await this.o.pool.run(request, this.runDeps, this.onStart(request));
    this.recording++;
    freeSlot();
    await this.record(request, ran);
  }

  /** Record a run's outcome (counted in `recording`, which it ends) and ack late / reject. */
  private async record(request: TaskRequest, ran: FunctionOutcome): Promise<void> {
    let outcome: RunOutcome | Error;
    try {
      outcome = await recordOutcome(request, this.runDeps, ran);
    } catch (err) {
      outcome = err instanceof Error ? err : new Error(String(err));
    }
    this.recorded(request, ran, outcome);
  }

  /** After `recordOutcome`: count, report, ack late / reject, and end the recording. */
  private recorded(request: TaskRequest, ran: FunctionOutcome, outcome: RunOutcome | Error): void {
    const { stats, log } = this.o;
    const lateAck = request.acksLate;
    try {
      if (outcome instanceof Error) {
        // The result backend failed: a late-ack message is run again later (parked
        // broker-side, so a backend outage is not a hot requeue loop).
        log.error({ err: outcome, id: request.id }, `${outcome.message}${lateAck ? `; message redelivered in ${REDELIVER_AFTER_BACKEND_ERROR_MS / 1000} s` : ''}`);
        stats.failed++;
        if (lateAck) {
          this.settle(request.delivery);
          this.o.consumer.defer(request.delivery, new Date(Date.now() + REDELIVER_AFTER_BACKEND_ERROR_MS)).catch((e) =>
            log.error({ err: e, id: request.id }, 'Could not park the message; it stays unacked and is restored when this worker stops'),
          );
        }
        return;
      }
      this.count(outcome);
      this.o.control?.events?.finished(request, outcome.state, ran, (performance.now() - ran.startedAt) / 1000, outcome.requeue);
      if (lateAck) {
        if (outcome.state === States.REJECTED) this.rejectDelivery(request.delivery, outcome.requeue === true);
        else this.ackDelivery(request.delivery);
      }
    } finally {
      this.recording--;
    }
  }

  private count(outcome: RunOutcome): void {
    const { stats } = this.o;
    stats.processed++;
    if (outcome.state === States.SUCCESS) stats.succeeded++;
    else if (outcome.state === States.FAILURE) stats.failed++;
    else if (outcome.state === States.RETRY) stats.retried++;
    else if (outcome.state === States.REJECTED) stats.rejected++;
  }

  /** Revoked by id (remote control): discarded as Celery does, state REVOKED. */
  private discardRevoked(request: TaskRequest): void {
    this.o.log.info({ id: request.id }, `Discarding revoked task: ${request.name}[${request.id}]`);
    if (hasSignal(this.o.app, 'taskRevoked')) void emitSignal(this.o.app, 'taskRevoked', { sender: request.name, request, terminated: false, signum: null, expired: false });
    this.o.control?.requests.done(request);
    this.o.control?.events?.revoked(request, false);
    if (!request.ignoreResult) {
      this.store(resultDocument(request.decoded, States.REVOKED, toExceptionDocument(new TaskRevokedError('revoked'))));
    }
    this.ackDelivery(request.delivery);
  }

  private revokeExpired(request: TaskRequest): void {
    this.o.log.info({ id: request.id }, `Discarding revoked task: ${request.name}[${request.id}] (expired)`);
    if (hasSignal(this.o.app, 'taskRevoked')) void emitSignal(this.o.app, 'taskRevoked', { sender: request.name, request, terminated: false, signum: null, expired: true });
    this.o.control?.events?.revoked(request, true);
    if (!request.ignoreResult) {
      this.store(resultDocument(request.decoded, States.REVOKED, toExceptionDocument(new TaskRevokedError('expired'))));
    }
    this.ackDelivery(request.delivery);
  }

  private store(doc: ResultDocument): void {
    this.results?.add(doc).catch((err) => this.o.log.error({ err, id: doc.task_id }, 'Could not store result'));
  }

  /** Log a bad message and reject it without requeue: it is dropped, the worker goes on. */
  private discard(delivery: Delivery, why: string, err?: unknown): void {
    this.o.log.error({ err, queue: delivery.queue, deliveryTag: delivery.deliveryTag }, why);
    if (hasSignal(this.o.app, 'taskRejected')) void emitSignal(this.o.app, 'taskRejected', { message: delivery.message ?? undefined, exc: err ?? new Error(why) });
    this.o.stats.rejected++;
    this.rejectDelivery(delivery, false);
  }

  private settle(delivery: Delivery): void {
    if (this.unsettled.delete(delivery.deliveryTag)) {
      this.o.stats.reserved--;
      this.o.onSlotFreed();
    }
  }

  /** Ack in the next batch (settled when the batch is handed over); resolves once the ack was written (never rejects). */
  private ackDelivery(delivery: Delivery): Promise<void> {
    return this.acks.add(delivery).catch((err) => this.o.log.error({ err }, 'Ack failed; the message will be redelivered'));
  }

  private rejectDelivery(delivery: Delivery, requeue: boolean): void {
    this.settle(delivery);
    this.o.consumer.reject(delivery, requeue).catch((err) => this.o.log.error({ err }, 'Reject failed'));
  }

  /** Resolve `whenIdle` waiters if nothing runs or waits for a slot. */
  maybeIdle(): void {
    if (this.runs.size === 0 && this.ready.length === 0 && this.rateLimits.waiting === 0 && this.idleWaiters.length > 0) {
      const waiters = this.idleWaiters;
      this.idleWaiters = [];
      waiters.forEach((w) => w());
    }
  }

  /** Resolves when no task is running or waiting for a slot. */
  whenIdle(): Promise<void> {
    if (this.runs.size === 0 && this.ready.length === 0 && this.rateLimits.waiting === 0) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  /** Shutdown, first step: start nothing more; held and queued requests stay unsettled. */
  stopAccepting(): void {
    this.accepting = false;
    this.eta.clear();
    this.rateLimits.clear();
    this.ready.length = 0;
  }

  /** Resolves when every started run has recorded its outcome. */
  async runsDone(): Promise<void> {
    await Promise.all(this.runs);
  }

  /**
   * Write pending acks and results. Cold: results the backend has not accepted
   * yet are dropped (logged by task id) instead of retried for the retry window.
   */
  async flush(cold = false): Promise<void> {
    await this.acks.flush();
    await this.earlyAcks.landed();
    await (cold ? this.results?.abandon() : this.results?.flush());
  }

  /**
   * After a hang the consumer released: drop everything held (queued, held for an
   * ETA, reserved) without settling it; the consumer settled it already.
   */
  forfeitHeld(): void {
    const { stats } = this.o;
    this.forfeits++;
    this.eta.clear();
    this.rateLimits.clear();
    this.ready.length = 0;
    this.unsettled.clear();
    stats.reserved = 0;
    stats.held = 0;
    this.o.onSlotFreed();
  }

  /** Everything not settled yet (to give back at shutdown); forgets them. */
  takeUnsettled(): Delivery[] {
    const out = [...this.unsettled.values()];
    this.unsettled.clear();
    return out;
  }
}
