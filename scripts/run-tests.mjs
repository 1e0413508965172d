#!/usr/bin/env node
// Runs the test files with node's test runner in two passes: most files two at a time
// (the suite has ~90 files and CI must stay well under 20 minutes), then the files whose
// assertions depend on a worker reacting within seconds (shutdown, liveness, hang and
// outage tests) one at a time, so a busy neighbour cannot make them miss their marks.
// Prints node's TAP output as it goes and ends with one line: "N passed, N failed".
// Arguments: test files to run instead of test/*.test.ts.
import { spawn } from 'node:child_process';
import { readdirSync } from 'node:fs';

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

const first = await pass(parallel, 2);
const second = await pass(serial, 1);
const passed = first.passed + second.passed;
const failed = first.failed + second.failed;
process.stdout.write(`\n${passed} passed, ${failed} failed\n`);
process.exit(failed > 0 || first.code !== 0 || second.code !== 0 ? 1 : 0);
