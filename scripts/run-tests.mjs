#!/usr/bin/env node
// Runs the test files with node's test runner, one `node --test` process per file, in two
// passes: most files two at a time (CELERIAC_TEST_CONCURRENCY overrides; the suite has
// ~100 files and CI must stay well under 20 minutes), longest first so the lanes finish
// together; then the files whose assertions depend on a worker reacting within seconds
// (shutdown, liveness, hang and outage tests) one at a time, so a busy neighbour cannot
// make them miss their marks.
// When a selected file uses the run's shared RabbitMQ (useRabbitMQ in
// test/helpers/rabbitmq-shared.ts), one node is booted up front by
// test/helpers/rabbitmq-holder.ts (while the first files already run) and stopped at the end.
// Prints each file's TAP output when the file ends, then `# file <path> <seconds> s ok|FAILED`;
// ends with the slowest files and one line: "N passed, N failed".
// Arguments: test files to run instead of test/*.test.ts.
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

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

/**
 * Files of the parallel pass that take longest, roughly longest first (from the top-level
 * test durations of a full run on the 2-core machine, 2026-12-02, plus files known to boot
 * browsers/frameworks/sentinels): started first so no lane ends with one long file alone.
 */
const SLOW_FIRST = [
  'test/amqp-cluster.test.ts',
  'test/fresh-clone.test.ts',
  'test/amqp-control.test.ts',
  'test/nest-frameworks.test.ts',
  'test/amqp-interop.test.ts',
  'test/dashboard-browser.test.ts',
  'test/express-adapter.test.ts',
  'test/events.test.ts',
  'test/amqp-routing.test.ts',
  'test/cli-multi.test.ts',
  'test/beat-cli.test.ts',
  'test/beat-interop.test.ts',
  'test/interop-canvas.test.ts',
  'test/amqp-fault.test.ts',
  'test/redis-sentinel.test.ts',
  'test/canvas-redis.test.ts',
  'test/cli.test.ts',
  'test/amqp-eta.test.ts',
  'test/amqp-broker.test.ts',
  'test/worker-pools.test.ts',
  'test/pool-send-ahead.test.ts',
  'test/amqp-startup.test.ts',
  'test/amqp-revoked.test.ts',
];

const all = process.argv.length > 2 ? process.argv.slice(2) : readdirSync('test').filter((f) => f.endsWith('.test.ts')).sort().map((f) => `test/${f}`);
const rank = (f) => (SLOW_FIRST.includes(f) ? SLOW_FIRST.indexOf(f) : SLOW_FIRST.length);
const parallel = all.filter((f) => !SERIAL.has(f)).sort((a, b) => rank(a) - rank(b));
const serial = all.filter((f) => SERIAL.has(f));
const concurrency = Math.max(1, Number(process.env.CELERIAC_TEST_CONCURRENCY ?? 2) || 2);

/** Start the shared RabbitMQ holder if a selected file uses it; returns its stop function. */
function startSharedRabbit() {
  const wanted = all.some((f) => existsSync(f) && readFileSync(f, 'utf8').includes('useRabbitMQ('));
  if (!wanted || !existsSync('/usr/lib/rabbitmq/bin/rabbitmq-server')) return async () => {};
  const dir = mkdtempSync(join(tmpdir(), 'celeriac-shared-rabbit-'));
  const holder = spawn(process.execPath, ['--import', 'tsx', 'test/helpers/rabbitmq-holder.ts', dir], { stdio: ['pipe', 'ignore', 'inherit'] });
  process.env.CELERIAC_TEST_AMQP_SHARED = dir;
  const exited = new Promise((resolve) => holder.once('exit', resolve));
  // Closing its stdin tells the holder to stop the node; it does so even if we die.
  for (const sig of ['SIGINT', 'SIGTERM']) process.once(sig, () => (holder.stdin.end(), process.exit(130)));
  return async () => {
    holder.stdin.end();
    const timer = setTimeout(() => holder.kill('SIGTERM'), 60_000);
    await exited;
    clearTimeout(timer);
    rmSync(dir, { recursive: true, force: true });
  };
}

/** Run one file in its own `node --test`; resolves with its counts, exit code and wall time. */
function runFile(file) {
  const args = ['--import', 'tsx', '--test', '--test-force-exit', '--test-timeout=600000', '--test-reporter=tap', file];
  const started = Date.now();
  return new Promise((resolve) => {
    const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'inherit'] });
    const chunks = [];
    child.stdout.on('data', (chunk) => chunks.push(chunk));
    child.on('close', (code) => {
      const output = Buffer.concat(chunks).toString();
      const tail = output.slice(-4000);
      const num = (name) => Number(new RegExp(`^# ${name} (\\d+)$`, 'm').exec(tail)?.[1] ?? 0);
      const counted = num('fail') + num('cancelled');
      const failed = code !== 0 && counted === 0 ? 1 : counted;
      const seconds = (Date.now() - started) / 1000;
      process.stdout.write(output.endsWith('\n') ? output : `${output}\n`);
      process.stdout.write(`# file ${file} ${seconds.toFixed(1)} s ${failed > 0 ? 'FAILED' : 'ok'}\n`);
      resolve({ file, passed: num('pass'), failed, seconds });
    });
  });
}

/** Run files `lanes` at a time, in the given order. */
async function pass(files, lanes) {
  const queue = [...files];
  const results = [];
  const lane = async () => {
    for (let f = queue.shift(); f !== undefined; f = queue.shift()) results.push(await runFile(f));
  };
  await Promise.all(Array.from({ length: Math.min(lanes, files.length) }, lane));
  return results;
}

const started = Date.now();
const stopSharedRabbit = startSharedRabbit();
let results = [];
try {
  results = [...(await pass(parallel, concurrency)), ...(await pass(serial, 1))];
} finally {
  await stopSharedRabbit();
}
const passed = results.reduce((n, r) => n + r.passed, 0);
const failed = results.reduce((n, r) => n + r.failed, 0);
const slowest = [...results].sort((a, b) => b.seconds - a.seconds).slice(0, 15);
process.stdout.write(`\n# slowest files:\n${slowest.map((r) => `#   ${r.seconds.toFixed(1).padStart(6)} s  ${r.file}`).join('\n')}\n`);
process.stdout.write(`# failed files: ${results.filter((r) => r.failed > 0).map((r) => r.file).join(', ') || 'none'}\n`);
process.stdout.write(`# total ${((Date.now() - started) / 1000).toFixed(1)} s (${concurrency} lanes, then ${serial.length} files alone)\n`);
process.stdout.write(`\n${passed} passed, ${failed} failed\n`);
process.exit(failed > 0 ? 1 : 0);
