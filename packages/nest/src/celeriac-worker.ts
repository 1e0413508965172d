import { startEmbeddedWorker, useApp, wantsEmbeddedWorker, type AppUse, type Celeriac, type EmbeddedWorker, type Worker } from '@celeriac/core';
import { Inject, Injectable, Logger, type OnApplicationBootstrap, type OnApplicationShutdown, type OnModuleDestroy } from '@nestjs/common';
import { CELERIAC_MODULE_OPTIONS } from './celeriac.module-definition.js';
import type { CeleriacModuleOptions } from './celeriac.options.js';
import { CELERIAC_APP } from './tokens.js';

/**
 * The consumer side and the module's lifecycle: consume from
 * `onApplicationBootstrap` (unless `manualRegistration`), drain running tasks in
 * `onModuleDestroy`, close the producer and backend connections last in
 * `onApplicationShutdown`. Call `app.enableShutdownHooks()` so SIGTERM runs them.
 * The embedded worker and the connections are shared with whatever else uses the
 * same app in this process (an Express `queuePlugin`, a second Nest app): the last
 * one to close stops the worker and closes the connections.
 */
@Injectable()
export class CeleriacWorker implements OnApplicationBootstrap, OnModuleDestroy, OnApplicationShutdown {
  private readonly log = new Logger('Celeriac');
  private embedded: EmbeddedWorker | null = null;
  private readonly use: AppUse;

  constructor(
    @Inject(CELERIAC_APP) private readonly app: Celeriac,
    @Inject(CELERIAC_MODULE_OPTIONS) private readonly options: CeleriacModuleOptions,
  ) {
    this.use = useApp(app);
  }

  /** Whether this process consumes (see the module's `worker` option). */
  get consumes(): boolean {
    return wantsEmbeddedWorker(this.app, this.options.worker);
  }

  /** The running core worker, or null. */
  get worker(): Worker | null {
    return this.embedded?.worker ?? null;
  }

  async onApplicationBootstrap(): Promise<void> {
    if (!this.options.manualRegistration) await this.start();
  }

  /**
   * Start consuming (when this process consumes; see `worker`). Resolves once
   * consuming has begun. Idempotent. With `manualRegistration`, call it yourself.
   */
  async start(): Promise<void> {
    if (this.embedded || !this.consumes) return;
    this.embedded = await startEmbeddedWorker(this.app, { worker: true, ...this.options.workerOptions });
    this.log.log(`Consuming ${this.embedded?.worker.queues.join(', ')} (tasks: ${this.app.taskNames.join(', ') || 'none'})`);
  }

  /** Stop consuming; running tasks finish first (a warm stop). */
  async stop(): Promise<void> {
    const running = this.embedded;
    this.embedded = null;
    if (!running) return;
    if (running.holders > 1) {
      await running.stop();
      this.log.log(`Released the embedded worker (${running.holders} other user(s) of the app keep it consuming)`);
      return;
    }
    this.log.log(`Warm shutdown: stop consuming, let ${running.worker.stats.active} running task(s) finish`);
    await running.stop();
    this.log.log('Stopped consuming');
  }

  async onModuleDestroy(): Promise<void> {
    await this.stop();
  }

  async onApplicationShutdown(): Promise<void> {
    const closed = await this.use.release();
    if (closed && this.consumes) this.log.log('Closed the broker and result backend connections');
  }
}

