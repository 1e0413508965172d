#!/usr/bin/env node
/**
 * Celery 5.2.6's own integration tests (t/integration/test_canvas.py, test_tasks.py,
 * test_inspect.py), unmodified, against a worker on Redis (broker + backend):
 * first Celery's in-process Python worker (the baseline), then a Celeriac worker
 * (`celeriac worker -A test/celery-suite/tasks.ts`, the tasks written for Celeriac).
 * Prints pass / fail / error / skip / xfail counts per file for both, and the tests
 * that pass with Python but not with Celeriac, with pytest's reason.
 *
 *   CELERY_SRC=/path/to/celery npm run celery-suite -- [options]
 *
 * CELERY_SRC is a Celery checkout (a directory with t/integration) or a bare git
 * mirror (then CELERY_TAG, default v5.2.6, is extracted with `git archive`).
 * Celery's files are read from there at run time and never copied into this repo.
 *
 * NOT RUN IN CI: a clean clone with only the npm registry and Debian binaries cannot
 * get Celery's test sources (Debian's source package is unreachable, PyPI is blocked,
 * and the tests are not in python3-celery), so this runs by hand where a Celery
 * checkout exists. Python side: Debian's /usr/bin/python3 with python3-celery,
 * python3-pytest, python3-pytest-subtests, python3-pytest-timeout and
 * python3-pytest-rerunfailures (scripts/test-services.sh installs them).
 *
 * Options:
 *   --worker python|celeriac|both   which runs (default both)
 *   --files a.py,b.py               test files under t/integration (default the three above)
 *   -k EXPR                         pytest -k expression
 *   --reruns                        keep Celery's @flaky reruns (off by default: each test runs once,
 *                                   so a failing test costs one timeout, not six)
 *   --out FILE                      also write the Markdown table and list to FILE
 *   --json FILE                     also write every test's outcome (both runs) as JSON
 *   --baseline FILE                 take the Python worker's outcomes from FILE (an earlier --json)
 *                                   instead of running them again
 *   --celeriac-results FILE         the same for the Celeriac worker's outcomes (with both: report only)
 */
import { spawn, spawnSync } from 'node:child_process';
import { appendFileSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { connect, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { basename, dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const PYTHON = '/usr/bin/python3';
const REDIS_SERVER = '/usr/bin/redis-server';
// In this order: test_inspect's first test starts the session worker, which test_canvas's first tests (test_link_error, no `manager` fixture) need.
const DEFAULT_FILES = ['test_inspect.py', 'test_tasks.py', 'test_canvas.py'];
const OUTCOMES = ['passed', 'failed', 'error', 'skipped', 'xfailed', 'xpassed'];

const { values: opts } = parseArgs({
  options: {
    worker: { type: 'string', default: 'both' },
    files: { type: 'string' },
    k: { type: 'string', short: 'k' },
    reruns: { type: 'boolean', default: false },
    out: { type: 'string' },
    json: { type: 'string' },
    baseline: { type: 'string' },
    'celeriac-results': { type: 'string' },
  },
});

function die(message) {
  console.error(`celery-suite: ${message}`);
  process.exit(2);
}

if (!['python', 'celeriac', 'both'].includes(opts.worker)) die(`--worker ${opts.worker}: use python, celeriac or both`);
const files = opts.files ? opts.files.split(',').map((f) => f.trim()).filter(Boolean) : DEFAULT_FILES;

/** A directory holding Celery's t/ (and pyproject.toml), from CELERY_SRC. */
function celerySource() {
  const src = process.env.CELERY_SRC;
  if (!src) die('set CELERY_SRC to a Celery checkout (with t/integration) or a bare git mirror of celery/celery (then CELERY_TAG, default v5.2.6)');
  if (existsSync(join(src, 't', 'integration', 'conftest.py'))) return { dir: resolve(src), cleanup: () => {} };
  const isGit = spawnSync('git', ['-C', src, 'rev-parse', '--git-dir'], { encoding: 'utf8' }).status === 0;
  if (!isGit) die(`CELERY_SRC=${src} has no t/integration/conftest.py and is not a git repository`);
  const tag = process.env.CELERY_TAG ?? 'v5.2.6';
  const dir = mkdtempSync(join(tmpdir(), 'celery-suite-src-'));
  const archive = spawnSync('sh', ['-c', `git -C "$0" archive "$1" t pyproject.toml | tar -x -C "$2"`, src, tag, dir], { encoding: 'utf8' });
  if (archive.status !== 0 || !existsSync(join(dir, 't', 'integration', 'conftest.py'))) die(`could not extract t/ at ${tag} from ${src}: ${archive.stderr}`);
  return { dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

function checkPython() {
  if (!existsSync(PYTHON)) die(`${PYTHON} not found; run scripts/test-services.sh`);
  const probe = spawnSync(PYTHON, ['-c', 'import celery, pytest, pytest_subtests, pytest_timeout, redis'], { encoding: 'utf8' });
  if (probe.status !== 0) die(`${PYTHON} lacks a module the tests need (${probe.stderr.trim().split('\n').pop()}); run scripts/test-services.sh`);
  if (!existsSync(REDIS_SERVER)) die(`${REDIS_SERVER} not found; run scripts/test-services.sh`);
}

function freePort() {
  return new Promise((ok, fail) => {
    const srv = createServer();
    srv.on('error', fail);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => ok(port));
    });
  });
}

async function startRedis() {
  const port = await freePort();
  const dir = mkdtempSync(join(tmpdir(), 'celery-suite-redis-'));
  const child = spawn(REDIS_SERVER, ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir], { stdio: 'ignore' });
  for (let i = 0; i < 200; i++) {
    const listening = await new Promise((ok) => {
      const socket = connect(port, '127.0.0.1');
      socket.once('connect', () => (socket.destroy(), ok(true)));
      socket.once('error', () => ok(false));
    });
    if (listening) break;
    if (child.exitCode !== null) die(`redis-server exited (${child.exitCode})`);
    await new Promise((r) => setTimeout(r, 50));
  }
  const stop = async () => {
    if (child.exitCode === null) {
      const exited = new Promise((r) => child.once('exit', r));
      process.kill(child.pid, 'SIGTERM');
      await exited;
    }
    rmSync(dir, { recursive: true, force: true });
  };
  return { port, stop };
}

/** One pytest run: returns { nodeid: { outcome, reason } }. */
async function runPytest(kind, src, workDir) {
  const redis = await startRedis();
  const url = `redis://127.0.0.1:${redis.port}/0`;
  const results = join(workDir, `${kind}.json`);
  const log = join(workDir, `${kind}-pytest.log`);
  const env = {
    ...process.env,
    TEST_BROKER: url,
    TEST_BACKEND: url,
    REDIS_HOST: '127.0.0.1',
    CELERIAC_SUITE_REDIS_PORT: String(redis.port),
    CELERIAC_SUITE_RESULTS: results,
    PYTHONPATH: [join(ROOT, 'test', 'celery-suite'), src].join(':'),
    PYTHONUNBUFFERED: '1',
  };
  delete env.CELERIAC_SUITE_WORKER;
  if (kind === 'celeriac') {
    env.CELERIAC_SUITE_WORKER = JSON.stringify([
      process.execPath, '--import', 'tsx', join(ROOT, 'packages/core/src/cli/main.ts'), 'worker',
      '-A', join(ROOT, 'test/celery-suite/tasks.ts'), '--broker', url, '--backend', url, '-c', '1', '-l', 'info',
    ]);
    env.CELERIAC_SUITE_WORKER_CWD = ROOT;
    env.CELERIAC_SUITE_WORKER_LOG = join(workDir, 'celeriac-worker.log');
  }
  const args = [
    '-m', 'pytest', '-c', join(ROOT, 'test/celery-suite/pytest.ini'), '--rootdir', src,
    '-p', 'celeriac_suite_plugin', '-p', 'no:cacheprovider', '-rA', '-v',
    ...(opts.reruns ? [] : ['-p', 'no:rerunfailures']),
    ...(opts.k ? ['-k', opts.k] : []),
    ...files.map((f) => join('t', 'integration', f)),
  ];
  console.log(`\n=== ${kind} worker: pytest ${files.join(' ')} (Redis on ${redis.port}; log ${log}) ===`);
  writeFileSync(log, '');
  const child = spawn(PYTHON, args, { cwd: src, env, stdio: ['ignore', 'pipe', 'pipe'] });
  let pending = '';
  const onData = (d) => {
    appendFileSync(log, d);
    const lines = (pending + String(d)).split('\n');
    pending = lines.pop() ?? '';
    for (const line of lines) if (/ (PASSED|FAILED|ERROR|SKIPPED|XFAIL|XPASS)\b/.test(line) && line.startsWith('t/')) console.log(`  ${line.trim()}`);
  };
  child.stdout.on('data', onData);
  child.stderr.on('data', onData);
  const stop = () => child.exitCode === null && process.kill(child.pid, 'SIGTERM');
  process.once('SIGINT', stop);
  const code = await new Promise((r) => child.once('exit', r));
  process.removeListener('SIGINT', stop);
  await redis.stop();
  if (!existsSync(results)) die(`${kind} run wrote no results (pytest exit ${code}); see ${log}`);
  return JSON.parse(readFileSync(results, 'utf8'));
}

function countsByFile(outcomes) {
  const table = {};
  for (const [id, { outcome }] of Object.entries(outcomes)) {
    const file = basename(id.split('::')[0]);
    table[file] ??= Object.fromEntries(OUTCOMES.map((o) => [o, 0]));
    table[file][outcome]++;
  }
  return table;
}

function markdown(runs) {
  const lines = [];
  const fmt = (c) => (c ? OUTCOMES.map((o) => c[o]).join(' / ') : '—');
  lines.push(`| file | Python worker (${OUTCOMES.join(' / ')}) | Celeriac worker (${OUTCOMES.join(' / ')}) |`, '|---|---|---|');
  const py = runs.python ? countsByFile(runs.python) : {};
  const ts = runs.celeriac ? countsByFile(runs.celeriac) : {};
  const total = (t) => Object.values(t).reduce((acc, c) => Object.fromEntries(OUTCOMES.map((o) => [o, (acc[o] ?? 0) + c[o]])), {});
  for (const file of files) lines.push(`| ${file} | ${fmt(py[file])} | ${fmt(ts[file])} |`);
  lines.push(`| **all** | ${runs.python ? fmt(total(py)) : '—'} | ${runs.celeriac ? fmt(total(ts)) : '—'} |`);
  if (runs.python && runs.celeriac) {
    const worse = Object.entries(runs.python).filter(([id, r]) => r.outcome === 'passed' && runs.celeriac[id]?.outcome !== 'passed');
    lines.push('', `Pass with Python, not with Celeriac: ${worse.length}`, '');
    for (const [id] of worse) {
      const c = runs.celeriac[id];
      lines.push(`- \`${id}\`: ${c ? `${c.outcome}: ${c.reason.replace(/\s+/g, ' ').slice(0, 240)}` : 'not run'}`);
    }
    const better = Object.entries(runs.celeriac).filter(([id, r]) => r.outcome === 'passed' && runs.python[id]?.outcome !== 'passed');
    if (better.length) {
      lines.push('', `Pass with Celeriac, not with Python: ${better.length}`, '');
      for (const [id] of better) lines.push(`- \`${id}\`: Python ${runs.python[id]?.outcome ?? 'not run'}: ${(runs.python[id]?.reason ?? '').replace(/\s+/g, ' ').slice(0, 240)}`);
    }
  }
  return lines.join('\n');
}

checkPython();
const { dir: src, cleanup } = celerySource();
const workDir = mkdtempSync(join(tmpdir(), 'celery-suite-run-'));
const runs = {};
try {
  if (opts.baseline) runs.python = JSON.parse(readFileSync(opts.baseline, 'utf8')).python;
  else if (opts.worker !== 'celeriac') runs.python = await runPytest('python', src, workDir);
  if (opts['celeriac-results']) runs.celeriac = JSON.parse(readFileSync(opts['celeriac-results'], 'utf8')).celeriac;
  else if (opts.worker !== 'python') runs.celeriac = await runPytest('celeriac', src, workDir);
} finally {
  cleanup();
}
const report = markdown(runs);
console.log(`\n${report}\n\n(logs in ${workDir})`);
if (opts.out) writeFileSync(opts.out, report + '\n');
if (opts.json) writeFileSync(opts.json, JSON.stringify(runs, null, 1) + '\n');
