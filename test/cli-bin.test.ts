/**
 * The `celeriac` bin run as a command (as npx, node_modules/.bin and npm scripts run
 * it): its shell lines exec node with the memory flags (same process: the PID a
 * supervisor signals is node's), CELERIAC_NODE_FLAGS replaces or removes them, heap
 * flags in NODE_OPTIONS win, and `node bin/celeriac.js` still runs without them.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { startCli, type CliProcess } from './helpers/cli.ts';
import { CELERIAC_BIN } from './helpers/node-process.ts';

const DEFAULT_FLAGS = ['--max-semi-space-size=4', '--heap-growing-percent=50'];
const dir = mkdtempSync(join(tmpdir(), 'celeriac-bin-'));
/** A preload (through NODE_OPTIONS) that prints the node flags the CLI process got. */
const preload = join(dir, 'print-exec-argv.mjs');
writeFileSync(preload, "process.stderr.write(`execArgv=${JSON.stringify(process.execArgv)}\\n`);\n");
const running: CliProcess[] = [];
after(async () => {
  await Promise.all(running.map((p) => p.stop()));
  rmSync(dir, { recursive: true, force: true });
});

/** Run `command... --version` to completion; its exit code and the node flags it saw. */
async function version(command: string[], env: Record<string, string>): Promise<{ code: number | null; execArgv: string[]; stdout: string }> {
  const p = startCli(['--version'], env, command);
  running.push(p);
  const code = await new Promise<number | null>((resolve) => (p.child.exitCode !== null ? resolve(p.child.exitCode) : p.child.once('exit', resolve)));
  const seen = /execArgv=(\[.*\])/.exec(p.stderr());
  assert.ok(seen, `the preload ran:\n${p.stderr()}`);
  return { code, execArgv: (JSON.parse(seen[1]!) as string[]).filter((a) => !a.startsWith('--import')), stdout: p.stdout() };
}

test('run as a command, the bin starts node with the memory flags; CELERIAC_NODE_FLAGS and NODE_OPTIONS override them', async () => {
  const nodeOptions = `--import=${preload}`;
  const plain = await version([CELERIAC_BIN], { NODE_OPTIONS: nodeOptions });
  assert.equal(plain.code, 0);
  assert.match(plain.stdout, /^\d+\.\d+\.\d+/);
  assert.deepEqual(plain.execArgv, DEFAULT_FLAGS);

  assert.deepEqual((await version([CELERIAC_BIN], { NODE_OPTIONS: nodeOptions, CELERIAC_NODE_FLAGS: '' })).execArgv, [], 'empty CELERIAC_NODE_FLAGS: no flags');
  assert.deepEqual((await version([CELERIAC_BIN], { NODE_OPTIONS: nodeOptions, CELERIAC_NODE_FLAGS: '--max-semi-space-size=8' })).execArgv, ['--max-semi-space-size=8']);
  // The user's own heap flags in NODE_OPTIONS are not overridden by the bin's (command-line flags would win).
  assert.deepEqual((await version([CELERIAC_BIN], { NODE_OPTIONS: `${nodeOptions} --max-semi-space-size=16` })).execArgv, []);
  // `node bin/celeriac.js` skips the shell lines: no flags, same CLI.
  const viaNode = await version([process.execPath, CELERIAC_BIN], { NODE_OPTIONS: nodeOptions });
  assert.equal(viaNode.code, 0);
  assert.deepEqual(viaNode.execArgv, []);
  assert.equal(viaNode.stdout, plain.stdout);
});

test('run as a command, the worker is the process that was started: SIGTERM is a warm shutdown, exit code 0; errors keep their exit code', async () => {
  const worker = startCli(['worker', '-A', 'test/apps/beat-app.mjs', '-b', 'memory://', '-l', 'info', '--log-format', 'json'], {}, [CELERIAC_BIN]);
  running.push(worker);
  await worker.waitFor(/ready\./);
  const pid = worker.child.pid!;
  // exec, not a child: the started PID runs node with the bin's flags.
  const cmdline = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
  assert.match(cmdline[0]!, /node$/);
  for (const flag of DEFAULT_FLAGS) assert.ok(cmdline.includes(flag), `${flag} in ${cmdline.join(' ')}`);
  worker.child.kill('SIGTERM');
  const code = await new Promise<number | null>((resolve) => (worker.child.exitCode !== null ? resolve(worker.child.exitCode) : worker.child.once('exit', resolve)));
  assert.equal(code, 0);
  assert.match(worker.stderr(), /Warm shutdown \(SIGTERM\)/);

  const bad = startCli(['bogus'], {}, [CELERIAC_BIN]);
  running.push(bad);
  const badCode = await new Promise<number | null>((resolve) => (bad.child.exitCode !== null ? resolve(bad.child.exitCode) : bad.child.once('exit', resolve)));
  assert.equal(badCode, 2);
  assert.match(bad.stderr(), /unknown command 'bogus'/);
});

test('run as a command, --pool threads starts: its threads get no V8 heap flags in execArgv (ERR_WORKER_INVALID_EXEC_ARGV), V8 applies them anyway', async () => {
  for (const pool of ['threads', 'processes']) {
    const worker = startCli(['worker', '-A', 'test/apps/beat-app.mjs', '-b', 'memory://', '-P', pool, '-c', '2', '-l', 'info', '--log-format', 'json'], {}, [CELERIAC_BIN]);
    running.push(worker);
    await worker.waitFor(/ready\./);
    worker.child.kill('SIGTERM');
    const code = await new Promise<number | null>((resolve) => (worker.child.exitCode !== null ? resolve(worker.child.exitCode) : worker.child.once('exit', resolve)));
    assert.equal(code, 0, `${pool}: ${worker.stderr()}`);
    assert.doesNotMatch(worker.stderr(), /ERR_WORKER_INVALID_EXEC_ARGV/);
  }
});
