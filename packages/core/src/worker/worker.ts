/**
 * The consumer and its async pool.
 *
 * Data path: broker.reserve (atomic take + unacked) → validate → hold ETA (near)
 * or park it broker-side (far) → pool slot → task function → (slot freed) callbacks,
 * batched result writes → ack.
 * Prefetch = concurrency × multiplier messages reserved at once; messages held for
 * their ETA do not count (Celery raises the prefetch count for them too).
 */
import { randomUUID } from 'node:crypto';
import { hostname as osHostname } from 'node:os';
import type { Celeriac } from '../app.js';
import type { ResultBackend, ResultDocument } from '../backends/backend.js';
import type { Broker, Delivery } from '../brokers/broker.js';
import { createBroker } from '../brokers/index.js';
import { MessageTooLarge, NotRegistered, TaskRevokedError } from '../errors.js';
import { createLogger, type Logger, type LogLevel } from '../logger.js';
import { maskUrl } from '../mask-url.js';
import { loggedConnectionEvents } from '../redis-client.js';
import { isConnectionError } from '../redis-connection.js';
import { toExceptionDocument } from '../protocol/exceptions.js';
import { decodeTaskMessage, peekTaskName, type DecodedTask } from '../protocol/task-message.js';
import { States } from '../states.js';
import { Batcher } from './batcher.js';
import { ConsumerHeartbeats } from './consumer-heartbeats.js';
import { resultDocument } from './result-document.js';
import { recordOutcome, runTaskFunction, type RunDeps, type RunOutcome } from './run-task.js';
import { TaskRequest } from './task-request.js';
import { waitForRedis } from './wait-for-redis.js';

/** Options of a worker (the `celeriac worker` flags). */
export interface WorkerOptions {
  /** Queues to consume, in priority order. Default: the app's `taskDefaultQueue`. */
  queues?: string[];
  /** Tasks run at once. Default: app `workerConcurrency`. */
  concurrency?: number;
  /** Prefetch = concurrency × this (0 = unlimited). Default: app `workerPrefetchMultiplier` (4). */
  prefetchMultiplier?: number;
  /** Node name. Default `celeriac@<host>`. */
  hostname?: string;
  /** Log level. Default `info`. */
  logLevel?: LogLevel;
  /** Use this logger instead of creating one. */
  logger?: Logger;
}

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

const UNLIMITED_PREFETCH = 10_000;
/** A late-ack message whose outcome could not be stored is delivered again after this long. */
const REDELIVER_AFTER_BACKEND_ERROR_MS = 5_000;

/** A worker consuming task messages for one app. */
export class Worker {
  readonly hostname: string;
  readonly queues: string[];
  readonly concurrency: number;
  readonly prefetchLimit: number;
  readonly log: Logger;
  /** Identifies this consumer in the broker (unacked ownership, heartbeats). */
  readonly consumerId = randomUUID();
  readonly stats: WorkerStats = { processed: 0, succeeded: 0, failed: 0, retried: 0, rejected: 0, active: 0, reserved: 0, held: 0 };

  private broker: Broker | undefined;
  private backend: ResultBackend | null = null;
  private running = false;
  private loopDone: Promise<void> = Promise.resolve();
  private readonly ready: TaskRequest[] = [];
  private readonly unsettled = new Map<string, Delivery>();
  private readonly heldTimers = new Map<string, { timer: NodeJS.Timeout; request: TaskRequest }>();
  private readonly activeRuns = new Set<Promise<void>>();
  private slotWaiter: (() => void) | undefined;
  private heartbeats: ConsumerHeartbeats | undefined;
  private acks!: Batcher<Delivery>;
  private results: Batcher<ResultDocument> | undefined;
  private idleWaiters: (() => void)[] = [];
  /** Runs whose function finished and whose outcome is being recorded. */
  private recording = 0;
  private stopping: Promise<void> | undefined;
  private turnCold: (() => void) | undefined;
  private readonly recordingLimit: number;
  private runDeps!: RunDeps;

  constructor(
    readonly app: Celeriac,
    options: WorkerOptions = {},
  ) {
    const s = app.settings;
    this.hostname = options.hostname ?? `celeriac@${osHostname()}`;
    this.queues = options.queues?.length ? options.queues : [s.taskDefaultQueue];
    this.concurrency = options.concurrency ?? s.workerConcurrency;
    const multiplier = options.prefetchMultiplier ?? s.workerPrefetchMultiplier;
    this.prefetchLimit = multiplier === 0 ? UNLIMITED_PREFETCH : Math.max(1, this.concurrency * multiplier);
    this.log = options.logger ?? createLogger(options.logLevel ?? 'info');
    this.recordingLimit = Math.max(this.prefetchLimit, this.concurrency * 2);
  }

  /** Connect and start consuming. Resolves once consuming has begun. */
  async start(): Promise<void> {
    if (this.running) return;
    const s = this.app.settings;
    this.app.logger = this.log;
    // Like Celery: "Cannot connect to ...: Trying again in 2.00 seconds... (1/100)" until the broker answers.
    const wait = { retry: s.brokerConnectionRetry, maxRetries: s.brokerConnectionMaxRetries, timeoutMs: s.brokerConnectionTimeout * 1000, log: this.log };
    await waitForRedis(s.brokerUrl, s.brokerTransportOptions.redis as Record<string, unknown> | undefined, wait);
    const backendUrl = this.app.resultBackendUrl;
    if (backendUrl && backendUrl !== s.brokerUrl) await waitForRedis(backendUrl, s.resultBackendTransportOptions.redis as Record<string, unknown> | undefined, wait);
    this.broker = await createBroker(s.brokerUrl, {
      consumerId: this.consumerId,
      transportOptions: s.brokerTransportOptions,
      connectionEvents: loggedConnectionEvents(() => this.log, 'broker'),
    });
    this.log.info({ url: maskUrl(s.brokerUrl) }, `Connected to ${maskUrl(s.brokerUrl)}`);
    this.backend = this.app.resultBackendUrl ? await this.app.getBackend() : null;
    const backend = this.backend;
    this.acks = new Batcher((batch) => this.broker!.ack(batch));
    this.results = backend
      ? new Batcher((docs) => (backend.storeResults ? backend.storeResults(docs) : Promise.all(docs.map((d) => backend.storeResult(d))).then(() => undefined)))
      : undefined;
    const results = this.results;
    this.runDeps = { app: this.app, log: this.log, storeResult: results ? (doc) => results.add(doc) : null };
    this.running = true;
    this.heartbeats = new ConsumerHeartbeats({
      broker: this.broker,
      brokerUrl: s.brokerUrl,
      transportOptions: s.brokerTransportOptions,
      consumerId: this.consumerId,
      intervalSeconds: s.workerHeartbeatInterval,
      useThread: s.workerHeartbeatThread,
      log: this.log,
    });
    await this.heartbeats.start();
    this.loopDone = this.consumeLoop();
  }

  private async consumeLoop(): Promise<void> {
    while (this.running) {
      const free = this.prefetchLimit - this.stats.reserved;
      if (free <= 0) {
        await new Promise<void>((resolve) => (this.slotWaiter = resolve));
        continue;
      }
      let deliveries: Delivery[];
      try {
        deliveries = await this.broker!.reserve(this.queues, { max: free, timeoutMs: 1000 });
      } catch (err) {
        if (!this.running) break;
        // An outage is reported once by the connection itself.
        if (isConnectionError(err)) this.log.debug({ err }, 'Cannot reserve messages: no broker connection; retrying in 1 s');
        else this.log.error({ err }, 'Cannot reserve messages from the broker; retrying in 1 s');
        await new Promise((r) => setTimeout(r, 1000));
        continue;
      }
      for (const d of deliveries) this.receive(d);
      this.maybeIdle();
    }
  }

  /** Validate a delivery and route it to the pool, the ETA holder, or rejection. */
  private receive(delivery: Delivery): void {
    this.stats.reserved++;
    this.unsettled.set(delivery.deliveryTag, delivery);
    const s = this.app.settings;
    const message = delivery.message;
    if (!message) {
      this.discard(delivery, `Received an undecodable message from queue ${delivery.queue} (${delivery.decodeError?.message ?? 'unknown error'}); rejected.`);
      return;
    }
    if (delivery.sizeBytes > s.maxMessageSize) {
      const err = new MessageTooLarge(`${delivery.sizeBytes} bytes > maxMessageSize ${s.maxMessageSize}`);
      this.discard(delivery, `Message ${String(message.headers?.id)} of ${delivery.sizeBytes} bytes exceeds maxMessageSize (${s.maxMessageSize}); rejected. Raise maxMessageSize or send smaller payloads (e.g. a URL to the data).`, err);
      return;
    }
    const name = peekTaskName(message);
    if (name !== null && !this.app.hasTask(name)) {
      const id = typeof message.headers.id === 'string' ? message.headers.id : null;
      this.discard(delivery, `Received unregistered task of type ${JSON.stringify(name)}; rejected. The message has been ignored and discarded. Did you import the module that defines it in the worker (-A)?`);
      if (id) this.store(resultDocument({ id, groupId: null, parentId: null }, States.FAILURE, toExceptionDocument(new NotRegistered(name))));
      return;
    }
    let decoded: DecodedTask;
    try {
      decoded = decodeTaskMessage(message, s.acceptContent);
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
    if (!this.app.hasTask(decoded.name)) {
      this.discard(delivery, `Received unregistered task of type ${JSON.stringify(decoded.name)}; rejected.`);
      return;
    }
    const request = new TaskRequest(decoded, delivery, this.app.getTask(decoded.name), this.hostname, this.app, this.backend);
    if (decoded.expires && decoded.expires.getTime() <= Date.now()) {
      this.revokeExpired(request);
      return;
    }
    const delayMs = decoded.eta ? decoded.eta.getTime() - Date.now() : 0;
    if (delayMs > 0) this.holdUntilEta(request, delayMs);
    else this.enqueue(request);
  }

  private holdUntilEta(request: TaskRequest, delayMs: number): void {
    const delivery = request.delivery;
    if (delayMs > this.app.settings.workerEtaHoldSeconds * 1000) {
      // Far future: give it back to the broker instead of holding it past the visibility timeout.
      this.settle(delivery);
      this.broker!.deferUntil(delivery, request.eta!).catch((err) => this.log.error({ err, id: request.id }, 'Could not park ETA message; it stays unacked and will be restored'));
      this.log.info({ id: request.id, eta: request.eta }, `Task ${request.name}[${request.id}] parked broker-side until ${request.eta!.toISOString()}`);
      return;
    }
    // Held messages do not use a prefetch slot.
    this.stats.reserved--;
    this.stats.held++;
    this.wakeLoop();
    const timer = setTimeout(() => {
      this.heldTimers.delete(delivery.deliveryTag);
      this.stats.held--;
      this.stats.reserved++;
      this.enqueue(request);
    }, delayMs);
    this.heldTimers.set(delivery.deliveryTag, { timer, request });
  }

  private enqueue(request: TaskRequest): void {
    this.ready.push(request);
    this.pump();
  }

  /**
   * Start queued requests while a slot is free. A slot is held only while the task
   * function runs; recording its outcome (callbacks, result write, late ack) goes on
   * after the slot is freed, bounded by `recordingLimit` so a slow backend pushes back.
   */
  private pump(): void {
    while (this.running && this.stats.active < this.concurrency && this.recording < this.recordingLimit && this.ready.length > 0) {
      const request = this.ready.shift()!;
      this.stats.active++;
      const run = this.execute(request).finally(() => {
        this.activeRuns.delete(run);
        this.pump();
        this.maybeIdle();
      });
      this.activeRuns.add(run);
    }
  }

  private async execute(request: TaskRequest): Promise<void> {
    let holdsSlot = true;
    const freeSlot = () => {
      if (!holdsSlot) return;
      holdsSlot = false;
      this.stats.active--;
      this.pump();
    };
    try {
      // Celery checks expiry again right before running (an ETA task may expire while held).
      if (request.expires && request.expires.getTime() <= Date.now()) {
        this.revokeExpired(request);
        return;
      }
      const lateAck = request.acksLate;
      if (!lateAck) this.ackDelivery(request.delivery);
      const deps = this.runDeps;
      const ran = await runTaskFunction(request, deps);
      this.recording++;
      freeSlot();
      try {
        const outcome = await recordOutcome(request, deps, ran);
        this.count(outcome);
        if (lateAck) {
          if (outcome.state === States.REJECTED) this.rejectDelivery(request.delivery, outcome.requeue === true);
          else this.ackDelivery(request.delivery);
        }
      } catch (err) {
        // The result backend failed: a late-ack message is run again later (parked
        // broker-side, so a backend outage is not a hot requeue loop).
        this.log.error({ err, id: request.id }, `${(err as Error).message}${lateAck ? `; message redelivered in ${REDELIVER_AFTER_BACKEND_ERROR_MS / 1000} s` : ''}`);
        this.stats.failed++;
        if (lateAck) {
          this.settle(request.delivery);
          this.broker!.deferUntil(request.delivery, new Date(Date.now() + REDELIVER_AFTER_BACKEND_ERROR_MS)).catch((e) =>
            this.log.error({ err: e, id: request.id }, 'Could not park the message; it stays unacked and is restored when this worker stops'),
          );
        }
      } finally {
        this.recording--;
      }
    } finally {
      freeSlot();
    }
  }

  private count(outcome: RunOutcome): void {
    this.stats.processed++;
    if (outcome.state === States.SUCCESS) this.stats.succeeded++;
    else if (outcome.state === States.FAILURE) this.stats.failed++;
    else if (outcome.state === States.RETRY) this.stats.retried++;
    else if (outcome.state === States.REJECTED) this.stats.rejected++;
  }

  private revokeExpired(request: TaskRequest): void {
    this.log.info({ id: request.id }, `Discarding revoked task: ${request.name}[${request.id}] (expired)`);
    if (!request.ignoreResult) {
      this.store(resultDocument(request.decoded, States.REVOKED, toExceptionDocument(new TaskRevokedError('expired'))));
    }
    this.ackDelivery(request.delivery);
  }

  private store(doc: ResultDocument): void {
    this.results?.add(doc).catch((err) => this.log.error({ err, id: doc.task_id }, 'Could not store result'));
  }

  /** Log a bad message and reject it without requeue: it is dropped, the worker goes on. */
  private discard(delivery: Delivery, why: string, err?: unknown): void {
    this.log.error({ err, queue: delivery.queue, deliveryTag: delivery.deliveryTag }, why);
    this.stats.rejected++;
    this.rejectDelivery(delivery, false);
  }

  private settle(delivery: Delivery): void {
    if (this.unsettled.delete(delivery.deliveryTag)) {
      this.stats.reserved--;
      this.wakeLoop();
    }
  }

  private ackDelivery(delivery: Delivery): void {
    this.settle(delivery);
    this.acks.add(delivery).catch((err) => this.log.error({ err }, 'Ack failed; the message will be redelivered'));
  }

  private rejectDelivery(delivery: Delivery, requeue: boolean): void {
    this.settle(delivery);
    this.broker!.reject(delivery, requeue).catch((err) => this.log.error({ err }, 'Reject failed'));
  }

  private wakeLoop(): void {
    const wake = this.slotWaiter;
    this.slotWaiter = undefined;
    wake?.();
  }

  private maybeIdle(): void {
    if (this.activeRuns.size === 0 && this.ready.length === 0 && this.idleWaiters.length > 0) {
      const waiters = this.idleWaiters;
      this.idleWaiters = [];
      waiters.forEach((w) => w());
    }
  }

  /**
   * Stop consuming. Warm (default): finish running tasks, give back messages not
   * started (held ETAs, queued) and flush acks and results. Cold: give back
   * everything unacknowledged, including running late-ack tasks, and return now.
   */
  async stop(options: { cold?: boolean } = {}): Promise<void> {
    if (this.stopping) {
      // A second request during a warm shutdown turns it cold.
      if (options.cold) this.turnCold?.();
      return this.stopping;
    }
    if (!this.running) return;
    this.stopping = this.shutdown(options.cold === true);
    return this.stopping;
  }

  private async shutdown(cold: boolean): Promise<void> {
    const coldRequested = new Promise<void>((resolve) => (this.turnCold = resolve));
    this.running = false;
    this.wakeLoop();
    for (const { timer } of this.heldTimers.values()) clearTimeout(timer);
    this.heldTimers.clear();
    this.ready.length = 0; // still unsettled: given back below
    // A broker that is away must not hold the process: waiting on it gets
    // brokerConnectionTimeout in all (running tasks still finish in a warm shutdown).
    let turnedCold = cold;
    void coldRequested.then(() => (turnedCold = true));
    const limitMs = this.app.settings.brokerConnectionTimeout * 1000;
    const deadline = Date.now() + limitMs;
    await within(Promise.race([this.loopDone, coldRequested]), limitMs);
    if (!cold) await Promise.race([Promise.all(this.activeRuns), coldRequested]);
    // Connected: the usual limit. Away: what is left of the first one (nothing once cold).
    const connected = (await this.broker!.whenConnected?.(0)) ?? true;
    const budgetMs = connected ? limitMs : turnedCold ? 0 : Math.max(0, deadline - Date.now());
    if (!(await within(this.releaseToBroker(), budgetMs))) {
      this.log.warn(
        { count: this.unsettled.size },
        `The broker ${maskUrl(this.app.settings.brokerUrl)} did not answer within ${this.app.settings.brokerConnectionTimeout} s (brokerConnectionTimeout): ` +
          'stopping anyway; messages this worker still held stay unacked in Redis and are restored by other workers (or kombu\'s visibility timeout).',
      );
      await within(this.broker!.close(), 1000).catch(() => undefined);
    }
  }

  /** Flush acks and results, give back what was not acknowledged, stop beating, close. */
  private async releaseToBroker(): Promise<void> {
    await this.acks.flush();
    await this.results?.flush();
    // Everything not acknowledged by now goes back: held ETAs, queued, and (cold) running late-ack tasks.
    const giveBack = [...this.unsettled.values()];
    if (giveBack.length > 0) {
      this.log.info({ count: giveBack.length }, `Restoring ${giveBack.length} unacknowledged message(s)`);
      if (this.broker!.restoreUnacked) await this.broker!.restoreUnacked(giveBack);
      else await Promise.all(giveBack.map((d) => this.broker!.reject(d, true)));
    }
    this.unsettled.clear();
    // Beat until the very end: a long warm shutdown must not look like a dead worker.
    await this.heartbeats?.stop();
    await this.broker!.close();
  }

  /** Resolves when no task is running or waiting for a slot (tests, the demo). */
  whenIdle(): Promise<void> {
    if (this.activeRuns.size === 0 && this.ready.length === 0) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }
}

/** Resolves true when `promise` settles in time, false after `ms` (a late rejection is ignored). */
async function within(promise: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const settled = promise.then(() => true);
  settled.catch(() => undefined);
  try {
    return await Promise.race([settled, new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(false), ms)))]);
  } finally {
    clearTimeout(timer);
  }
}
