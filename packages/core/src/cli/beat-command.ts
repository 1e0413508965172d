/**
 * `celeriac beat` (run the scheduler, like `celery beat`) and `celeriac beat list |
 * add | remove | enable | disable` (the dynamic schedule in Redis).
 */
import { appFor, type ConnectionFlags } from './load-app.js';
import { parseLogFormat, parseLogLevel, UsageError } from './options.js';
import type { Celeriac } from '../app.js';
import { Beat } from '../beat/beat.js';
import { beatRedis } from '../beat/beat-redis.js';
import { crontab } from '../beat/crontab.js';
import { scheduleFromJSON, type BeatEntry, type BeatSendOptions } from '../beat/entry.js';
import type { Schedule } from '../beat/schedule.js';
import { every } from '../beat/interval.js';
import { createLogger, type Logger } from '../logger.js';
import { maskUrl } from '../mask-url.js';

/** `celeriac beat` flags (with the global ones). */
export interface BeatFlags extends ConnectionFlags {
  loglevel?: string;
  logFormat?: string;
  color?: boolean;
  schedule?: string;
  maxInterval?: string;
}

/** `--max-interval 30`: a positive number of seconds. */
export function parseMaxInterval(value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!/^\s*\d+(\.\d+)?\s*$/.test(value) || !(n > 0)) throw new UsageError(`--max-interval must be a positive number of seconds (the longest beat sleeps between checks), got ${JSON.stringify(value)}.`);
  return n;
}

/** The start-up banner, shaped like `celery beat`'s. */
export function beatBanner(beat: Beat, version: string, maxInterval: number): string {
  const s = beat.app.settings;
  return [
    `celeriac beat v${version} is starting.`,
    `LocalTime -> ${new Date().toISOString()}`,
    'Configuration ->',
    `    . broker -> ${maskUrl(s.brokerUrl)}`,
    `    . app -> ${beat.app.name}`,
    `    . timezone -> ${beat.zone}`,
    `    . db -> ${beat.storeDescription}`,
    `    . maxinterval -> ${maxInterval} s`,
    `    . entries -> ${beat.entries.length}`,
    ...beat.entries.map((e) => `        ${e.name}: ${e.task} ${e.schedule.describe()}${e.enabled ? '' : ' (disabled)'}`),
    '',
  ].join('\n');
}

/** Run `stop` on SIGTERM/SIGINT, then exit (0, or 1 on a second signal or an error). */
export function exitOnSignals(log: Logger, name: string, stop: () => Promise<void>): void {
  let signals = 0;
  const onSignal = (signal: NodeJS.Signals) => {
    signals++;
    if (signals > 1) process.exit(1);
    log.info(`${name}: shutting down (${signal})`);
    stop().then(
      () => process.exit(0),
      (err: Error) => (log.error({ err }, 'Error during shutdown'), process.exit(1)),
    );
  };
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);
}

/** Run beat until SIGTERM/SIGINT. */
export async function beatCommand(flags: BeatFlags, version: string): Promise<void> {
  const level = parseLogLevel(flags.loglevel);
  const format = parseLogFormat(flags.logFormat);
  const maxIntervalFlag = parseMaxInterval(flags.maxInterval);
  const app = await appFor(flags);
  if (!flags.app && !beatRedis(app.settings)) {
    throw new UsageError('celeriac beat needs -A <module> (the module whose app declares beatSchedule / app.beat.add()), or -b redis://... to run the dynamic schedule alone.');
  }
  const logger = createLogger(level, 'celeriac', { format: format ?? app.settings.workerLogFormat, colors: flags.color === false ? false : undefined });
  app.logger = logger;
  const beat = new Beat(app, { logger, scheduleFile: flags.schedule, maxInterval: maxIntervalFlag });
  await beat.start();
  process.stdout.write(beatBanner(beat, version, maxIntervalFlag ?? app.settings.beatMaxLoopInterval) + '\n');
  exitOnSignals(logger, 'beat', async () => {
    await beat.stop();
    await app.close();
  });
  logger.info('beat: Starting...');
}

async function dynamicApp(flags: ConnectionFlags, command: string): Promise<Celeriac> {
  const app = await appFor(flags);
  if (!beatRedis(app.settings)) {
    throw new UsageError(`celeriac beat ${command} edits the dynamic schedule in Redis: pass -b redis://127.0.0.1:6379/0, set CELERIAC_BROKER_URL, or -A a module whose app sets a redis:// brokerUrl (or resultBackend).`);
  }
  return app;
}

/** `celeriac beat list`: static entries of -A's app and the dynamic ones, with last runs. */
export async function beatListCommand(flags: ConnectionFlags & { json?: boolean }): Promise<void> {
  const app = await dynamicApp(flags, 'list');
  try {
    const rows: Record<string, unknown>[] = [];
    const dynamic = await app.beat.dynamic.list();
    const dynamicNames = new Set(dynamic.map((d) => d.name));
    for (const e of flags.app ? app.beat.staticEntries() : []) {
      if (!dynamicNames.has(e.name)) rows.push({ name: e.name, source: e.source, task: e.task, schedule: e.schedule.describe(), enabled: e.enabled });
    }
    for (const d of dynamic) {
      rows.push({
        name: d.name,
        source: 'redis',
        task: d.entry.task,
        schedule: scheduleFromJSON(d.entry.schedule).describe(),
        enabled: d.entry.enabled !== false,
        lastRunAt: d.lastRun && d.lastRun.totalRunCount > 0 ? new Date(d.lastRun.lastRunAt).toISOString() : null,
        runs: d.lastRun?.totalRunCount ?? 0,
      });
    }
    if (flags.json) process.stdout.write(JSON.stringify(rows) + '\n');
    else if (rows.length === 0) process.stdout.write('No beat entries.\n');
    else {
      for (const r of rows) {
        const last = r.lastRunAt ? `  last run ${String(r.lastRunAt)} (${String(r.runs)} runs)` : '';
        process.stdout.write(`${String(r.name)}  [${String(r.source)}]  ${String(r.task)}  ${String(r.schedule)}${r.enabled ? '' : '  (disabled)'}${last}\n`);
      }
    }
  } finally {
    await app.close();
  }
}

/** `celeriac beat add` flags. */
export interface BeatAddFlags extends ConnectionFlags {
  task?: string;
  every?: string;
  crontab?: string;
  args?: string;
  kwargs?: string;
  queue?: string;
  priority?: string;
  expires?: string;
  disabled?: boolean;
}

/** `--every 30s` / `5m` / `1h` / `2d` / `500ms` / `30` (seconds). */
export function parseEvery(text: string): Schedule {
  const m = /^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*$/.exec(text);
  if (!m) throw new UsageError(`--every ${JSON.stringify(text)} is not an interval: write e.g. 30s, 5m, 1h, 2d or 500ms (a bare number is seconds).`);
  const unit = { ms: 'milliseconds', s: 'seconds', m: 'minutes', h: 'hours', d: 'days' }[(m[2] ?? 's') as 'ms' | 's' | 'm' | 'h' | 'd'];
  return every({ [unit]: Number(m[1]) });
}

/** `--crontab "*\/15 9-17 * * mon-fri"`: minute hour day-of-month month day-of-week, as Celery prints a crontab. */
export function parseCrontab(text: string): Schedule {
  const parts = text.trim().split(/\s+/);
  if (parts.length !== 5) throw new UsageError(`--crontab ${JSON.stringify(text)} needs 5 fields: minute hour day-of-month month day-of-week, e.g. "0 4 * * *" (04:00 daily) or "*/15 9-17 * * mon-fri".`);
  const [minute, hour, dayOfMonth, monthOfYear, dayOfWeek] = parts as [string, string, string, string, string];
  try {
    return crontab({ minute, hour, dayOfMonth, monthOfYear, dayOfWeek });
  } catch (err) {
    throw new UsageError(`--crontab: ${(err as Error).message}`);
  }
}

/** `celeriac beat add <name> --task t (--every 30s | --crontab "...")`: add or replace a dynamic entry. */
export async function beatAddCommand(name: string, flags: BeatAddFlags): Promise<void> {
  if (!flags.task) throw new UsageError('celeriac beat add needs --task <name> (the registered task name).');
  if (!flags.every === !flags.crontab) throw new UsageError('celeriac beat add needs exactly one of --every <interval> (30s, 5m, 1h) or --crontab "<m h dom mon dow>".');
  const schedule = flags.every ? parseEvery(flags.every) : parseCrontab(flags.crontab!);
  const options: BeatSendOptions = {};
  if (flags.queue) options.queue = flags.queue;
  if (flags.priority !== undefined) options.priority = Number(flags.priority);
  if (flags.expires !== undefined) options.expires = Number(flags.expires);
  const entry: BeatEntry = {
    task: flags.task,
    schedule,
    args: parseJson<unknown>(flags.args, '--args', undefined, Array.isArray) as unknown[] | undefined,
    kwargs: parseJson<unknown>(flags.kwargs, '--kwargs', undefined, (v) => !!v && typeof v === 'object' && !Array.isArray(v)) as Record<string, unknown> | undefined,
    options,
    enabled: !flags.disabled,
  };
  const app = await dynamicApp(flags, 'add');
  try {
    await app.beat.dynamic.add(name, entry);
    process.stdout.write(`Added ${name}: ${flags.task} ${schedule.describe()}${flags.disabled ? ' (disabled)' : ''}\n`);
  } finally {
    await app.close();
  }
}

/** `celeriac beat remove <name>`. */
export async function beatRemoveCommand(name: string, flags: ConnectionFlags): Promise<void> {
  const app = await dynamicApp(flags, 'remove');
  try {
    if (!(await app.beat.dynamic.remove(name))) {
      process.stderr.write(`celeriac: no dynamic beat entry ${JSON.stringify(name)} (celeriac beat list shows them).\n`);
      process.exitCode = 1;
    } else process.stdout.write(`Removed ${name}\n`);
  } finally {
    await app.close();
  }
}

/** `celeriac beat enable|disable <name>`. */
export async function beatToggleCommand(name: string, enabled: boolean, flags: ConnectionFlags): Promise<void> {
  const app = await dynamicApp(flags, enabled ? 'enable' : 'disable');
  try {
    if (enabled) await app.beat.dynamic.enable(name);
    else await app.beat.dynamic.disable(name);
    process.stdout.write(`${enabled ? 'Enabled' : 'Disabled'} ${name}\n`);
  } finally {
    await app.close();
  }
}
