/**
 * The `celeriac` command line as a Celery user types it: global options before
 * the command, case-insensitive levels, `-n` expansion, and flag errors said once.
 */
import assert from 'node:assert/strict';
import { hostname } from 'node:os';
import { test } from 'node:test';
import { expandNodeName } from '../packages/core/src/cli/nodename.ts';
import { runCli, startCli } from './helpers/cli.ts';

test('-n expands %h %n %d %i %I like Celery’s host_format(default_nodename(...))', () => {
  // Expected values produced by Celery 5.2.6 with gethostname() = george.example.com (MainProcess).
  const host = 'george.example.com';
  const cases: [string | undefined, string][] = [
    ['worker1@%h', 'worker1@george.example.com'],
    ['w@%n', 'w@george'],
    ['w@%d', 'w@example.com'],
    ['w%i@%h', 'w0@george.example.com'],
    ['w%I@%h', 'w@george.example.com'],
    ['%n.w@%h', 'george.w@george.example.com'],
    ['%%h', 'celeriac@%george.example.com'],
    ['plainhost', 'celeriac@plainhost'],
    ['', 'celeriac@george.example.com'],
    [undefined, 'celeriac@george.example.com'],
  ];
  for (const [spec, expected] of cases) assert.equal(expandNodeName(spec, host), expected, `-n ${spec}`);
  assert.throws(() => expandNodeName('w@%x', host), /Unknown format %x in -n "w@%x".*%h, %n, %d, %i, %I/);
});

test('Celery’s order: -A/-b before the command, -l in capitals, -Q/-c/-n after it', async () => {
  const w = startCli(['-A', 'test/apps/worker-app.ts', '-b', 'memory://', 'worker', '-l', 'INFO', '-Q', 'a,b', '-c', '4', '-n', 'w1@%h', '--log-format', 'json']);
  try {
    await w.waitFor(/ ready\./);
    const out = w.stdout();
    assert.match(out, new RegExp(`-------------- w1@${hostname().replace(/\./g, '\\.')} v`));
    assert.match(out, /\.> concurrency: 4 \(async\)/);
    assert.match(out, /\.> a +exchange=a\(direct\) key=a\n +\.> b +exchange=b\(direct\) key=b\n/);
    assert.match(w.stderr(), new RegExp(`"msg":"w1@${hostname().replace(/\./g, '\\.')} ready\\."`));
  } finally {
    await w.stop();
  }
  assert.equal(w.child.exitCode, 0, `signal ${w.child.signalCode}: ${w.stderr()}`);
});

test('the same flags after the command, and a lowercase level', async () => {
  const w = startCli(['worker', '-A', 'test/apps/worker-app.ts', '-b', 'memory://', '-l', 'debug', '-c', '2', '--log-format', 'json']);
  try {
    await w.waitFor(/ ready\./);
    assert.match(w.stdout(), /\.> concurrency: 2 \(async\)/);
    assert.match(w.stderr(), /"level":30,.*ready\./);
  } finally {
    await w.stop();
  }
});

/** A flag error: exit 2, one line on stderr in Celeriac's words, nothing on stdout. */
function assertRejectedOnce(run: { code: number | null; stdout: string; stderr: string }, pattern: RegExp): void {
  assert.equal(run.code, 2, run.stderr);
  const lines = run.stderr.trim().split('\n');
  assert.equal(lines.length, 1, `exactly one error line, got:\n${run.stderr}`);
  assert.match(lines[0]!, /^celeriac: error: /);
  assert.match(lines[0]!, pattern);
  assert.equal(run.stdout, '', 'no banner before the error');
}

test('-l bogus, -c 0 and --log-format xml are rejected once, before the app loads, in Celeriac’s words', async () => {
  const [level, zero, nonInt, format] = await Promise.all([
    runCli(['-A', 'test/apps/worker-app.ts', 'worker', '-l', 'bogus']),
    runCli(['-A', 'test/apps/worker-app.ts', 'worker', '-c', '0']),
    runCli(['-A', 'test/apps/worker-app.ts', 'worker', '-c', 'four']),
    runCli(['-A', 'test/apps/worker-app.ts', 'worker', '--log-format', 'xml']),
  ]);
  assertRejectedOnce(level, /-l\/--loglevel "bogus" is not a log level: use DEBUG, INFO, WARNING, ERROR or CRITICAL \(any case\)\.$/);
  assertRejectedOnce(zero, /-c\/--concurrency must be a positive whole number \(tasks run at once\), got "0"\.$/);
  assertRejectedOnce(nonInt, /-c\/--concurrency must be a positive whole number \(tasks run at once\), got "four"\.$/);
  assertRejectedOnce(format, /--log-format "xml" is not a log format: use pretty, json or auto\.$/);
});

test('worker without -A, an unknown option, an unknown command: one "celeriac: error:" line (plus the help hint), status 2', async () => {
  const [noApp, option, command] = await Promise.all([runCli(['worker', '-b', 'memory://']), runCli(['worker', '--bogus']), runCli(['bogus'])]);
  assertRejectedOnce(noApp, /^celeriac: error: celeriac worker needs -A <module> \(the module that exports your app and imports your tasks\)\.$/);
  for (const [run, what] of [[option, "unknown option '--bogus'"], [command, "unknown command 'bogus'"]] as const) {
    assert.equal(run.code, 2, run.stderr);
    assert.deepEqual(run.stderr.trim().split('\n'), [`celeriac: error: ${what}`, '(celeriac --help lists the commands; celeriac <command> --help their options)']);
  }
});
