/**
 * One RabbitMQ node for a whole test run, started by scripts/run-tests.mjs: starts a
 * private node (test/helpers/rabbitmq.ts), prints one JSON line (`SharedRabbit`) for
 * the runner to pass on in `CELERIAC_TEST_RABBITMQ`, and stops the node (by the PID
 * of the process group it started) when it gets SIGTERM or its stdin closes.
 *
 *   node --import tsx test/helpers/shared-rabbitmq.ts
 */
import { startRabbitMQ } from './rabbitmq.ts';

async function main(): Promise<void> {
  const rabbit = await startRabbitMQ();
  process.stdout.write(JSON.stringify(rabbit.share) + '\n');
  let stopping: Promise<void> | undefined;
  const stop = () =>
    (stopping ??= rabbit.stop().then(
      () => process.exit(0),
      (err: unknown) => {
        process.stderr.write(`shared RabbitMQ: stop failed: ${(err as Error).message}\n`);
        process.exit(1);
      },
    ));
  process.once('SIGTERM', stop);
  process.once('SIGINT', stop);
  process.stdin.on('end', stop);
  process.stdin.resume();
}

main().catch((err: Error) => {
  process.stderr.write(`shared RabbitMQ: ${err.stack ?? err.message}\n`);
  process.exit(1);
});
