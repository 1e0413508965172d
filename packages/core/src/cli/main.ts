#!/usr/bin/env node
/**
 * The `celeriac` command line: worker, call, result, purge, inspect, control,
 * status, events, multi, beat, report. Global options (-A, -b, --result-backend)
 * go before the command, as Celery users type them (`celeriac -A proj worker -l
 * INFO`), or after it.
 */
import { Command } from 'commander';
import { beatAddCommand, beatCommand, beatListCommand, beatRemoveCommand, beatToggleCommand, type BeatFlags } from './beat-command.js';
import { callCommand, purgeCommand, resultCommand } from './commands.js';
import type { DashboardFlags } from './dashboard-command.js';
import { controlCommand, inspectCommand, statusCommand, type ControlFlags } from './control-command.js';
import { UsageError } from './options.js';
import { eventsCommand } from './events-command.js';
import { multiCommand } from './multi.js';
import { reportCommand } from './report.js';
import { workerCommand, type WorkerFlags } from './worker-command.js';
import { CeleriacError, ConfigurationError } from '../errors.js';
import { VERSION } from '../version.js';

const version = VERSION;

const program = new Command('celeriac')
  .version(version, '-V, --version', 'print the version')
  .description('Celery-compatible task queue for TypeScript')
  .option('-A, --app <module>', 'module exporting the app: path/to/module[:export]')
  .option('-b, --broker <url>', 'broker URL (overrides the app; env CELERIAC_BROKER_URL or CELERY_BROKER_URL)')
  .option('--result-backend <url>', 'result backend URL (overrides the app; env CELERIAC_RESULT_BACKEND or CELERY_RESULT_BACKEND)')
  .option('--backend <url>', 'same as --result-backend')
  .configureHelp({ showGlobalOptions: true })
  .showHelpAfterError('(celeriac --help lists the commands; celeriac <command> --help their options)')
  // commander's own parse errors in the same voice and with click's usage status (2); help and --version exit 0.
  .configureOutput({ outputError: (text, write) => write(`celeriac: ${text}`) })
  .exitOverride((err) => process.exit(err.exitCode === 0 ? 0 : 2));

/** The command's own options merged with the global ones. */
const flagsOf = <T>(cmd: Command): T => cmd.optsWithGlobals() as T;

program
  .command('worker')
  .description('Start a worker')
  .option('-Q, --queues <list>', 'comma-separated queues to consume')
  .option('-X, --exclude-queues <list>', 'comma-separated queues not to consume')
  .option('-c, --concurrency <n>', 'tasks run at once (pool slots, threads or child processes)')
  .option('-l, --loglevel <level>', 'DEBUG, INFO, WARNING, ERROR or CRITICAL (any case)', 'INFO')
  .option('--log-format <format>', 'pretty (Celery form), json (pino lines) or auto: pretty when stderr is a terminal')
  .option('--no-color', 'no colours in the pretty log form')
  .option('--prefetch-multiplier <n>', 'prefetch = concurrency × this')
  .option('-n, --hostname <name>', 'node name, e.g. worker1@%h (%h host, %n host name, %d domain, %i, %I)')
  .option('--time-limit <seconds>', 'hard time limit for tasks that set none (FAILURE TimeLimitExceeded)')
  .option('--soft-time-limit <seconds>', "soft time limit for tasks that set none (the task's signal aborts with SoftTimeLimitExceeded)")
  .option('-P, --pool <kind>', 'async (default: I/O-bound tasks share the event loop), threads or processes (CPU-bound tasks)')
  .option('--max-tasks-per-child <n>', 'threads/processes: replace a member after this many tasks')
  .option('--max-memory-per-child <KiB>', 'threads/processes: replace a member whose memory passed this after a task')
  .option('--autoscale <max,min>', 'threads/processes: between min and max members, growing while work waits')
  .option('--without-mingle', 'do not ask other workers for revoked ids at start-up')
  .option('--pidfile <path>', 'write the pid here; refuse to start while a live worker holds it')
  .option('-S, --statedb <path>', 'keep revoked ids in this file across restarts (%n node name, %h host; Celeriac JSON, not shared with Python)')
  .option('-E, --task-events', 'send task events for monitors (celeriac events, Flower)')
  .option('--without-heartbeat', 'send no worker-online / worker-heartbeat / worker-offline events')
  .option('-B, --beat', 'also run beat (the periodic task scheduler) in this process')
  .option('-s, --schedule <file>', 'with -B: beat last-run file when the broker is not Redis')
  .action((_opts, cmd: Command) => workerCommand(flagsOf<WorkerFlags>(cmd), version));

const beat = program.command('beat').description('Run the periodic task scheduler; list, add or remove dynamic entries (in Redis)');
beat
  .command('run', { isDefault: true })
  .description('Run beat (the default: celeriac beat -A proj)')
  .option('-l, --loglevel <level>', 'DEBUG, INFO, WARNING, ERROR or CRITICAL (any case)', 'INFO')
  .option('--log-format <format>', 'pretty (Celery form), json (pino lines) or auto')
  .option('--no-color', 'no colours in the pretty log form')
  .option('-s, --schedule <file>', 'last-run file when the broker is not Redis (default: beatScheduleFilename)')
  .option('--max-interval <seconds>', 'longest sleep between checks (default: beatMaxLoopInterval, 300)')
  .action((_opts, cmd: Command) => beatCommand(flagsOf<BeatFlags>(cmd), version));
beat
  .command('list')
  .description('List beat entries: those of -A, and the dynamic ones in Redis with their last runs')
  .option('--json', 'one JSON array')
  .action((_opts, cmd: Command) => beatListCommand(flagsOf(cmd)));
beat
  .command('add <name>')
  .description('Add or replace a dynamic entry (running beats pick it up at once)')
  .option('-t, --task <name>', 'task name')
  .option('--every <interval>', 'interval: 30s, 5m, 1h, 2d, 500ms (a bare number is seconds)')
  .option('--crontab <expr>', 'crontab "minute hour day-of-month month day-of-week", Celery syntax, e.g. "0 4 * * mon-fri"')
  .option('-a, --args <json>', 'positional arguments as a JSON array')
  .option('-k, --kwargs <json>', 'keyword arguments as a JSON object')
  .option('-Q, --queue <name>', 'target queue')
  .option('--priority <n>', 'priority 0-9')
  .option('--expires <seconds>', 'each run expires this many seconds after it is sent')
  .option('--disabled', 'add it disabled')
  .action((name: string, _opts, cmd: Command) => beatAddCommand(name, flagsOf(cmd)));
beat
  .command('remove <name>')
  .description('Remove a dynamic entry')
  .action((name: string, _opts, cmd: Command) => beatRemoveCommand(name, flagsOf(cmd)));
beat
  .command('enable <name>')
  .description('Send a disabled dynamic entry again')
  .action((name: string, _opts, cmd: Command) => beatToggleCommand(name, true, flagsOf(cmd)));
beat
  .command('disable <name>')
  .description('Keep a dynamic entry but stop sending it')
  .action((name: string, _opts, cmd: Command) => beatToggleCommand(name, false, flagsOf(cmd)));

program
  .command('call <name>')
  .description('Send a task by name and print its id')
  .option('-a, --args <json>', 'positional arguments as a JSON array', '[]')
  .option('-k, --kwargs <json>', 'keyword arguments as a JSON object', '{}')
  .option('--countdown <seconds>', 'run after this many seconds')
  .option('--eta <iso>', 'run at this time')
  .option('--expires <seconds>', 'revoke if not started within this many seconds')
  .option('-Q, --queue <name>', 'target queue')
  .option('--priority <n>', 'priority 0-9')
  .option('-w, --wait', 'wait for the result and print it')
  .option('--timeout <seconds>', 'with --wait: give up after this long')
  .action((name: string, _opts, cmd: Command) => callCommand(name, flagsOf(cmd)));

program
  .command('result <id>')
  .description("Print a task's result (waits for it)")
  .option('--timeout <seconds>', 'give up after this long')
  .option('--no-wait', 'print the current state and result without waiting')
  .action((id: string, _opts, cmd: Command) => {
    const flags = flagsOf<Record<string, unknown>>(cmd);
    return resultCommand(id, { ...flags, noWait: flags.wait === false });
  });

program
  .command('purge')
  .description('Delete all waiting messages from queues')
  .option('-Q, --queues <list>', 'comma-separated queues (default: the default queue)')
  .option('-f, --force', 'do not ask for confirmation')
  .action((_opts, cmd: Command) => purgeCommand(flagsOf(cmd)));

/** -t / -d / -j, as Celery's remote-control commands take them. */
const withControlOptions = (cmd: Command) =>
  cmd
    .option('-t, --timeout <seconds>', 'seconds to wait for replies', '1')
    .option('-d, --destination <nodes>', 'comma-separated node names (default: every worker)')
    .option('-j, --json', 'print the replies as one JSON object');

withControlOptions(
  program
    .command('inspect <method> [args...]')
    .description('Ask workers: ping, active, reserved, scheduled, registered, stats, revoked, active_queues, conf, report, query_task <id...>')
    .action((method: string, rest: string[], _opts, cmd: Command) => inspectCommand(method, rest, flagsOf<ControlFlags>(cmd))),
);

withControlOptions(
  program
    .command('control <method> [args...]')
    .description('Tell workers: revoke <id...>, terminate <signal> <id...>, rate_limit <task> <rate>, time_limit <task> <soft> [hard], shutdown, ...')
    .action((method: string, rest: string[], _opts, cmd: Command) => controlCommand(method, rest, flagsOf<ControlFlags>(cmd))),
);

withControlOptions(
  program
    .command('status')
    .description('List the workers that are online (exit 69 when none answers)')
    .action((_opts, cmd: Command) => statusCommand(flagsOf<ControlFlags>(cmd))),
);

program
  .command('report')
  .description('Print versions and the settings in effect (secrets masked), for bug reports')
  .action((_opts, cmd: Command) => reportCommand(flagsOf(cmd), version));

program
  .command('events')
  .description('Print every worker\'s events as they happen (Python and Celeriac), one line each')
  .option('--dump', 'one JSON object per line (like celery events --dump)')
  .option('--duration <seconds>', 'stop after this long')
  .action((_opts, cmd: Command) => eventsCommand(flagsOf(cmd)));

program
  .command('dashboard')
  .description('Serve a live web dashboard and Flower\'s JSON API for every worker (Python and Celeriac) on the broker')
  .option('-p, --port <n>', 'port (Flower\'s 5555 by default; 0: any free port)', '5555')
  .option('--address <host>', 'address to bind (default 127.0.0.1; actions are off on other addresses unless --basic-auth is given)')
  .option('--basic-auth <user:password,...>', 'HTTP basic auth on every page (env CELERIAC_DASHBOARD_BASIC_AUTH); turns actions on')
  .option('--read-only', 'no actions (revoke, rate limit, pool, shutdown, apply)')
  .option('--duration <seconds>', 'stop after this long')
  // Loaded on use: the other commands do not pay for the dashboard's modules at start-up.
  .action(async (_opts, cmd: Command) => (await import('./dashboard-command.js')).dashboardCommand(flagsOf<DashboardFlags>(cmd)));

program
  .command('multi')
  .description('Start/stop several workers: multi start|stop|stopwait|restart|kill|show|names <N|names...> [worker options, -c:1-2 8]')
  .allowUnknownOption()
  .helpOption(false);

/** Usage and configuration mistakes: status 2; other Celeriac errors: 1 (their message); anything else: the stack. */
function fail(err: Error): never {
  const usage = err instanceof UsageError || err instanceof ConfigurationError;
  const known = usage || err instanceof CeleriacError;
  process.stderr.write(`celeriac: error: ${known ? `${usage ? '' : `${err.name}: `}${err.message}` : (err.stack ?? err.message)}\n`);
  process.exit(usage ? 2 : 1);
}

// `multi` takes Celery's namespaced options (-c:1-2 8), which no option parser knows: its arguments go to it raw.
if (process.argv[2] === 'multi') {
  multiCommand(process.argv.slice(3)).then((code) => process.exit(code), fail);
} else {
  program.parseAsync().catch(fail);
}
