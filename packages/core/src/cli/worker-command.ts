import { claimPidfile } from './pidfile.js';
import { appFor, type ConnectionFlags } from './load-app.js';
import { workerBanner } from './banner.js';
import { expandNodeName } from './nodename.js';
import { parseAutoscale, parseList, parseLogFormat, parseLogLevel, parsePool, parseSeconds, parseWholeNumber, UsageError } from './options.js';
import { createLogger } from '../logger.js';
import { Beat } from '../beat/beat.js';
import { Worker } from '../worker/worker.js';

/** `celeriac worker` flags (with the global ones). */
export interface WorkerFlags extends ConnectionFlags {
  queues?: string;
  excludeQueues?: string;
  concurrency?: string;
  loglevel?: string;
  logFormat?: string;
  /** false with `--no-color`. */
  color?: boolean;
  prefetchMultiplier?: string;
  hostname?: string;
  timeLimit?: string;
  softTimeLimit?: string;
  pool?: string;
  maxTasksPerChild?: string;
  maxMemoryPerChild?: string;
  autoscale?: string;
  /** `--pidfile`: refuse to start while a live worker holds it. */
  pidfile?: string;
  /** `-S/--statedb`: the persistent state file (revoked ids survive a restart). */
  statedb?: string;
  /** `-E`. */
  taskEvents?: boolean;
  /** `--without-heartbeat`. */
  withoutHeartbeat?: boolean;
  /** `--without-mingle`. */
  withoutMingle?: boolean;
  /** `-B`: run beat in this process too. */
  beat?: boolean;
  /** `-s`: beat's last-run file (with -B). */
  schedule?: string;
}

/** Run a worker until SIGTERM/SIGINT (warm), or a second signal (cold). */
export async function workerCommand(flags: WorkerFlags, version: string): Promise<void> {
  // Every flag is checked before the app loads, so a typo is the only thing printed.
  const level = parseLogLevel(flags.loglevel);
  const logFormat = parseLogFormat(flags.logFormat);
  const concurrency = parseWholeNumber(flags.concurrency, '-c/--concurrency', 1, 'tasks run at once');
  const prefetchMultiplier = parseWholeNumber(flags.prefetchMultiplier, '--prefetch-multiplier', 0, 'prefetch = concurrency × this; 0 = unlimited');
  const hostname = expandNodeName(flags.hostname);
  const queues = parseList(flags.queues);
  const timeLimit = parseSeconds(flags.timeLimit, '--time-limit');
  const softTimeLimit = parseSeconds(flags.softTimeLimit, '--soft-time-limit');
  const pool = parsePool(flags.pool);
  const maxTasksPerChild = parseWholeNumber(flags.maxTasksPerChild, '--max-tasks-per-child', 1, 'tasks a pool member runs before it is replaced');
  const maxMemoryPerChild = parseWholeNumber(flags.maxMemoryPerChild, '--max-memory-per-child', 1, 'KiB a pool member may use before it is replaced');
  const autoscale = parseAutoscale(flags.autoscale);
  const excludeQueues = parseList(flags.excludeQueues);
  if (!flags.app) throw new UsageError('celeriac worker needs -A <module> (the module that exports your app and imports your tasks).');

  if (flags.pidfile) claimPidfile(flags.pidfile);
  const app = await appFor(flags);
  if (concurrency !== undefined) app.configure({ workerConcurrency: concurrency });
  const logger = createLogger(level, 'celeriac', { format: logFormat ?? app.settings.workerLogFormat, colors: flags.color === false ? false : undefined });
  // The broker stayed away past brokerConnectionMaxRetries: exit non-zero, as Celery does, for the service manager to restart us.
  let signals = 0; // SIGTERM/SIGINT (or a remote shutdown) seen: the first is warm, the second cold
  const onBrokerLost = () => void worker.stop({ cold: true }).catch(() => undefined).then(() => process.exit(1));
  const worker: Worker = new Worker(app, {
    queues,
    excludeQueues,
    prefetchMultiplier,
    hostname,
    logger,
    onBrokerLost,
    timeLimit,
    softTimeLimit,
    pool,
    // Each pool thread / child loads the same module (paths resolved from this directory).
    appModule: flags.app,
    cwd: process.cwd(),
    maxTasksPerChild,
    maxMemoryPerChild,
    autoscale,
    mingle: flags.withoutMingle !== true,
    ...(flags.statedb ? { stateDb: flags.statedb } : {}),
    sendEvents: flags.taskEvents ? true : undefined,
    heartbeat: flags.withoutHeartbeat !== true,
    // A remote shutdown exits the process as SIGTERM does (it used to stop the worker and leave the process running).
    onRemoteShutdown: () => onSignal('remote shutdown'),
  });
  process.stdout.write(workerBanner(worker, version, flags.taskEvents === true) + '\n');
  // -B: beat in this process (checked before the worker starts, so a bad entry is the only thing printed).
  const beat = flags.beat ? new Beat(app, { logger, scheduleFile: flags.schedule }) : undefined;
  const stopBeat = () => beat?.stop().catch((err: Error) => worker.log.error({ err }, 'beat: error while stopping'));
  await beat?.start();
  await worker.start();
  if (beat) {
    worker.log.info(`beat: Starting... (embedded, -B; ${beat.entries.length} entries, ${beat.storeDescription})`);
  }
  function onSignal(signal: NodeJS.Signals | 'remote shutdown'): void {
    signals++;
    if (signals === 1) {
      worker.log.warn(`worker: Warm shutdown (${signal}); send it again for a cold shutdown`);
      Promise.resolve(stopBeat())
        .then(() => worker.stop())
        .then(() => app.close())
        .then(
          () => process.exit(signals > 1 ? 1 : 0),
          (err) => (worker.log.error({ err }, 'Error during shutdown'), process.exit(1)),
        );
    } else if (signals === 2) {
      // Exit now: give back what can be given back (with Redis up: well under a second;
      // with Redis away: nothing is waited for), never waiting more than 3 s.
      worker.log.warn(`worker: Cold shutdown (${signal})`);
      const giveUp = new Promise((resolve) => setTimeout(resolve, 3000).unref());
      void Promise.race([Promise.all([stopBeat(), worker.stop({ cold: true }).catch(() => undefined)]), giveUp]).then(() => process.exit(1));
    }
  }
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);
  // After the handlers: whoever reacts to "ready." by sending SIGTERM gets a warm shutdown.
  worker.log.info({ hostname: worker.hostname }, `${worker.hostname} ready.`);
}
