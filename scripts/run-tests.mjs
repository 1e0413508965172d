#!/usr/bin/env node
// Runs the test files with node's test runner in two passes: most files two at a time
// (the suite has ~90 files and CI must stay well under 20 minutes), then the files whose
// assertions depend on a worker reacting within seconds (shutdown, liveness, hang and
// outage tests) one at a time, so a busy neighbour cannot make them miss their marks.
// Prints node's TAP output as it goes and ends with one line: "N passed, N failed".
// Arguments: test files to run instead of test/*.test.ts.
// RabbitMQ: the files that never restart the broker share one node for the whole run (each
// in a vhost of its own, see useRabbitMQ in test/helpers/rabbitmq.ts) instead of booting
// one each; this script starts it before the passes and stops it by PID after them.
import { spawn } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { createInterface } from 'node:readline';

/** Files run alone, after the others. */
const SERIAL = new Set([
  'test/redis-worker.test.ts',
  'test/redis-outage.test.ts',
  'test/worker-hang.test.ts',
  'test/redis-liveness.test.ts',
  'test/redis-poison.test.ts',
  'test/redis-ack-outage.test.ts',
  'test/broker-restart.test.ts',
  'test/backend-outage.test.ts',
  'test/cli-client.test.ts',
  'test/loop-watch.test.ts',
  'test/worker-time-limits.test.ts',
]);

const all = process.argv.length > 2 ? process.argv.slice(2) : readdirSync('test').filter((f) => f.endsWith('.test.ts')).sort().map((f) => `test/${f}`);
const parallel = all.filter((f) => !SERIAL.has(f));
const serial = all.filter((f) => SERIAL.has(f));

/** Files that take the shared RabbitMQ node (useRabbitMQ); the others start a private one. */
const SHARED_RABBITMQ = new Set(['test/amqp-ha.test.ts', 'test/amqp-interop.test.ts', 'test/amqp-routing.test.ts', 'test/conformance.test.ts', 'test/rpc-backend.test.ts']);

/**
 * Start the run's RabbitMQ node (test/helpers/shared-rabbitmq.ts) when two or more files
 * would use it; resolves with its process, or null (each file then boots its own).
 */
async function startSharedRabbit() {
  if (all.filter((f) => SHARED_RABBITMQ.has(f)).length < 2 || !existsSync('/usr/lib/rabbitmq/bin/rabbitmq-server')) return null;
  const child = spawn(process.execPath, ['--import', 'tsx', 'test/helpers/shared-rabbitmq.ts'], { stdio: ['pipe', 'pipe', 'inherit'] });
  const line = await new Promise((resolve) => {
    const lines = createInterface({ input: child.stdout });
    lines.once('line', (l) => resolve(l));
    child.once('exit', () => resolve(null));
  });
  if (!line) {
    process.stderr.write('run-tests: the shared RabbitMQ node did not start; the files start their own\n');
    return null;
  }
  process.env.CELERIAC_TEST_RABBITMQ = line;
  return child;
}

/** Stop the shared node by the PID of the launcher we started (it stops the node's process group). */
async function stopSharedRabbit(child) {
  if (!child || child.exitCode !== null) return;
  const exited = new Promise((resolve) => child.once('exit', resolve));
  process.kill(child.pid, 'SIGTERM');
  await exited;
}

/** Run one pass; resolves with its pass/fail counts (from the runner's final summary). */
function pass(files, concurrency) {
  if (files.length === 0) return Promise.resolve({ passed: 0, failed: 0, code: 0 });
  const args = ['--import', 'tsx', '--test', `--test-concurrency=${concurrency}`, '--test-force-exit', '--test-timeout=600000', '--test-reporter=tap', ...files];
  return new Promise((resolve) => {
    const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'inherit'] });
    let tail = '';
    child.stdout.on('data', (chunk) => {
      process.stdout.write(chunk);
      tail = (tail + chunk.toString()).slice(-4000);
    });
    child.on('close', (code) => {
      const num = (name) => Number(new RegExp(`^# ${name} (\\d+)$`, 'm').exec(tail)?.[1] ?? 0);
      const failed = num('fail') + num('cancelled');
      resolve({ passed: num('pass'), failed: code !== 0 && failed === 0 ? 1 : failed, code: code ?? 1 });
    });
  });
}

const rabbit = await startSharedRabbit();
let first;
let second;
try {
  first = await pass(parallel, 2);
  second = await pass(serial, 1);
} finally {
  await stopSharedRabbit(rabbit);
}
const passed = first.passed + second.passed;
const failed = first.failed + second.failed;
process.stdout.write(`\n${passed} passed, ${failed} failed\n`);
process.exit(failed > 0 || first.code !== 0 || second.code !== 0 ? 1 : 0);
