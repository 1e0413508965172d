#!/usr/bin/env node
/** The `celeriac` command line: worker, call, result, purge. */
import { readFileSync } from 'node:fs';
import { Command } from 'commander';
import { callCommand, purgeCommand, resultCommand, workerCommand } from './commands.js';

const { version } = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };

const program = new Command('celeriac').version(version).description('Celery-compatible task queue for TypeScript');

const withConnection = (cmd: Command) =>
  cmd
    .option('-A, --app <module>', 'module exporting the app: path/to/module[:export]')
    .option('-b, --broker <url>', 'broker URL (overrides the app; env CELERY_BROKER_URL)')
    .option('--backend <url>', 'result backend URL (overrides the app; env CELERY_RESULT_BACKEND)');

withConnection(program.command('worker').description('Start a worker'))
  .option('-Q, --queues <list>', 'comma-separated queues to consume')
  .option('-c, --concurrency <n>', 'tasks run at once (async pool)')
  .option('-l, --loglevel <level>', 'debug, info, warning, error, critical', 'info')
  .option('--prefetch-multiplier <n>', 'prefetch = concurrency × this')
  .option('-n, --hostname <name>', 'node name (default celeriac@<host>)')
  .action((flags) => workerCommand(flags, version));

withConnection(program.command('call <name>').description('Send a task by name and print its id'))
  .option('-a, --args <json>', 'positional arguments as a JSON array', '[]')
  .option('-k, --kwargs <json>', 'keyword arguments as a JSON object', '{}')
  .option('--countdown <seconds>', 'run after this many seconds')
  .option('--eta <iso>', 'run at this time')
  .option('--expires <seconds>', 'revoke if not started within this many seconds')
  .option('-Q, --queue <name>', 'target queue')
  .option('--priority <n>', 'priority 0-9')
  .option('-w, --wait', 'wait for the result and print it')
  .option('--timeout <seconds>', 'with --wait: give up after this long')
  .action((name, flags) => callCommand(name, flags));

withConnection(program.command('result <id>').description("Print a task's result (waits for it)"))
  .option('--timeout <seconds>', 'give up after this long')
  .option('--no-wait', 'print the current state and result without waiting')
  .action((id, flags) => resultCommand(id, { ...flags, noWait: flags.wait === false }));

withConnection(program.command('purge').description('Delete all waiting messages from queues'))
  .option('-Q, --queues <list>', 'comma-separated queues (default: the default queue)')
  .option('-f, --force', 'do not ask for confirmation')
  .action((flags) => purgeCommand(flags));

program.parseAsync().catch((err: Error) => {
  process.stderr.write(`celeriac: error: ${err.message}\n`);
  process.exit(2);
});
