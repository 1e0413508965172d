/**
 * Keeps the test run's shared RabbitMQ (see rabbitmq-shared.ts) up: started by
 * scripts/run-tests.mjs as `node --import tsx test/helpers/rabbitmq-holder.ts <dir>`.
 * Boots a node, writes `<dir>/node.json` (or `<dir>/error`), and stops the node by
 * PID when its stdin closes (the runner ended, however it ended) or on SIGTERM/SIGINT.
 */
import { renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { startRabbitMQ, type RabbitServer } from './rabbitmq.ts';
import { SHARED_RABBIT_ERROR, SHARED_RABBIT_READY } from './rabbitmq-shared.ts';

const dir = process.argv[2];
if (!dir) {
  console.error('usage: node --import tsx test/helpers/rabbitmq-holder.ts <folder for node.json>');
  process.exit(2);
}

let server: RabbitServer | undefined;
let stopping = false;
async function stop(): Promise<void> {
  if (stopping) return;
  stopping = true;
  await server?.stop();
  process.exit(0);
}
process.stdin.on('end', () => void stop());
process.stdin.on('error', () => void stop());
process.stdin.resume();
process.on('SIGTERM', () => void stop());
process.on('SIGINT', () => void stop());

try {
  server = await startRabbitMQ({ management: true });
  // Write then rename, so a reader never sees half a file.
  writeFileSync(join(dir, `${SHARED_RABBIT_READY}.tmp`), JSON.stringify(server.ctlTarget));
  renameSync(join(dir, `${SHARED_RABBIT_READY}.tmp`), join(dir, SHARED_RABBIT_READY));
  if (stopping) await server.stop();
} catch (err) {
  writeFileSync(join(dir, SHARED_RABBIT_ERROR), err instanceof Error ? err.message : String(err));
  process.exit(1);
}
