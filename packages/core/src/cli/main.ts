#!/usr/bin/env node
/**
 * The `celeriac` command line: worker, call, result, purge, report. Global
 * options (-A, -b, --result-backend) go before the command, as Celery users type
 * them (`celeriac -A proj worker -l INFO`), or after it.
 */
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Command } from 'commander';
import { callCommand, purgeCommand, resultCommand } from './commands.js';
import { UsageError } from './options.js';
import { reportCommand } from './report.js';
import { workerCommand, type WorkerFlags } from './worker-command.js';
import { CeleriacError, ConfigurationError } from '../errors.js';

/** This package's version: the first package.json named @celeriac/core above this file (src/ or dist/esm/). */
function ownVersion(): string {
  for (let dir = dirname(fileURLToPath(import.meta.url)); ; dir = dirname(dir)) {
    const file = join(dir, 'package.json');
    if (existsSync(file)) {
      const pkg = JSON.parse(readFileSync(file, 'utf8')) as { name?: string; version?: string };
      if (pkg.name === '@celeriac/core' && pkg.version) return pkg.version;
    }
    if (dirname(dir) === dir) return '?';
  }
}
const version = ownVersion();

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
  .option('-c, --concurrency <n>', 'tasks run at once (async pool)')
  .option('-l, --loglevel <level>', 'DEBUG, INFO, WARNING, ERROR or CRITICAL (any case)', 'INFO')
  .option('--log-format <format>', 'pretty (Celery form), json (pino lines) or auto: pretty when stderr is a terminal')
  .option('--no-color', 'no colours in the pretty log form')
  .option('--prefetch-multiplier <n>', 'prefetch = concurrency × this')
  .option('-n, --hostname <name>', 'node name, e.g. worker1@%h (%h host, %n host name, %d domain, %i, %I)')
  .action((_opts, cmd: Command) => workerCommand(flagsOf<WorkerFlags>(cmd), version));

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

program
  .command('report')
  .description('Print versions and the settings in effect (secrets masked), for bug reports')
  .action((_opts, cmd: Command) => reportCommand(flagsOf(cmd), version));

program.parseAsync().catch((err: Error) => {
  // Usage and configuration mistakes: status 2. Other Celeriac errors (a timeout, a
  // broker that is away): their message, status 1. Anything unexpected: the stack, status 1.
  const usage = err instanceof UsageError || err instanceof ConfigurationError;
  const known = usage || err instanceof CeleriacError;
  process.stderr.write(`celeriac: error: ${known ? `${usage ? '' : `${err.name}: `}${err.message}` : (err.stack ?? err.message)}\n`);
  process.exit(usage ? 2 : 1);
});
