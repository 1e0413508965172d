/**
 * A newcomer's clone: the committed HEAD is cloned into a temporary folder that has
 * no reference shelf (the maintainers' `shared` folder) beside it, and the README's own commands are run there — the demo
 * line (npm ci + build + demo), the quick start (`npx --no-install celeriac worker`
 * + `node examples/quickstart/send.mjs`) against a real redis-server on a free
 * port, and one fixture-reading test file. Only committed work is checked.
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, renameSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { after, before, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { missing, REDIS_SERVER, startRedis, type RedisServer } from './helpers/services.ts';

const REPO = join(dirname(fileURLToPath(import.meta.url)), '..');
const noRedis = missing(REDIS_SERVER, 'the quick start needs Redis');

/** npm settings from an outer `npm test` worth keeping (where the cache and credentials are). */
const KEEP_NPM = new Set(['npm_config_cache', 'npm_config_userconfig', 'npm_config_globalconfig', 'npm_config_cafile', 'npm_config_registry']);

/**
 * The environment of a user's shell in the clone: none of the variables an outer
 * `npm test` sets (npm_config_local_prefix would point npm ci at this checkout),
 * no test-runner context, no broker URLs.
 */
function userEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (/^npm_/i.test(k) && !KEEP_NPM.has(k.toLowerCase())) continue;
    if (/^INIT_CWD$|^NODE_TEST_CONTEXT$|^CELER(IAC|Y)_/.test(k)) continue;
    env[k] = v;
  }
  // npm ci inside README lines: use the local cache first (CI machines have it warm).
  return { ...env, npm_config_prefer_offline: 'true', npm_config_audit: 'false', npm_config_fund: 'false', ...extra };
}

/** The commands in the README's ```sh blocks, comments stripped. */
function readmeCommands(readme: string): string[] {
  const out: string[] = [];
  let inSh = false;
  for (const line of readme.split('\n')) {
    if (line.startsWith('```')) inSh = !inSh && /^```(sh|bash|shell)\s*$/.test(line);
    else if (inSh && line.trim()) out.push(line.replace(/\s+#\s.*$/, '').trim());
  }
  return out;
}

function readmeCommand(readme: string, pattern: RegExp): string {
  const found = readmeCommands(readme).find((c) => pattern.test(c));
  assert.ok(found, `README.md has no sh command matching ${pattern}`);
  return found;
}

/** Run a shell command in the clone; resolve with its exit code and output. */
function sh(cwd: string, command: string, env: NodeJS.ProcessEnv, timeoutMs: number): { code: number | null; out: string } {
  const r = spawnSync('sh', ['-c', command], { cwd, env, encoding: 'utf8', timeout: timeoutMs });
  return { code: r.status, out: `${r.stdout}${r.stderr}${r.error ? `\n${r.error.message}` : ''}` };
}

/** Poll `read()` until it matches, or fail with what was seen. */
async function waitFor(read: () => string, pattern: RegExp, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!pattern.test(read())) {
    if (Date.now() > deadline) throw new Error(`${what}: no ${pattern} within ${timeoutMs} ms; output:\n${read()}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

let root = '';
let clone = '';
let readme = '';
let redis: RedisServer | undefined;
let worker: ChildProcess | undefined;

before(() => {
  root = mkdtempSync(join(tmpdir(), 'celeriac-fresh-'));
  clone = join(root, 'celeriac');
  const head = spawnSync('git', ['-C', REPO, 'rev-parse', 'HEAD'], { encoding: 'utf8' }).stdout.trim();
  assert.match(head, /^[0-9a-f]{40}$/, 'the repository has a committed HEAD');
  for (const args of [['clone', '--quiet', '--no-checkout', REPO, clone], ['-C', clone, 'checkout', '--quiet', '--detach', head]]) {
    const r = spawnSync('git', args, { encoding: 'utf8' });
    assert.equal(r.status, 0, `git ${args.join(' ')}: ${r.stderr}`);
  }
  readme = readFileSync(join(clone, 'README.md'), 'utf8');
});

/** SIGKILL what is left of the process group we started (npx and the node it runs). */
function killWorkerGroup(): void {
  if (worker?.pid === undefined) return;
  try {
    process.kill(-worker.pid, 'SIGKILL');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ESRCH') throw err; // ESRCH: nothing left
  }
}

after(async () => {
  killWorkerGroup();
  await redis?.stop();
  if (root) rmSync(root, { recursive: true, force: true });
});

// The maintainers' reference shelf sits beside their checkout; a user's clone has none.
const SHELF = ['..', 'shared'].join('/');
const SHELF_ABSOLUTE = ['', 'work', 'shared'].join('/');

test('the clone has nothing outside itself to lean on', () => {
  assert.equal(existsSync(join(root, 'shared')), false, `no ${SHELF} beside the clone`);
  const grep = spawnSync('git', ['-C', clone, 'grep', '-n', '-F', '-e', SHELF, '-e', SHELF_ABSOLUTE, '--', '.', ':!test/fresh-clone.test.ts'], { encoding: 'utf8' });
  assert.equal(grep.stdout, '', `no committed file points at ${SHELF}`);
  for (const [, target] of readme.matchAll(/\]\(([^)#]+)(?:#[^)]*)?\)/g)) {
    if (/^[a-z]+:/.test(target!)) continue; // absolute URLs
    assert.ok(!target!.startsWith('..'), `README links outside the repository: ${target}`);
    assert.ok(existsSync(join(clone, target!)), `README links to ${target}, which the clone does not have`);
  }
});

test("the README's demo line runs: npm ci links the celeriac bin, the build and the demo succeed", { timeout: 420_000 }, () => {
  const line = readmeCommand(readme, /npm run demo/);
  const demo = sh(clone, line, userEnv(), 400_000);
  assert.equal(demo.code, 0, `${line} failed:\n${demo.out}`);
  assert.match(demo.out, /add\.delay\(2, 2\)\s+id=\w+ state=SUCCESS -> 4/);
  assert.match(demo.out, /divide\(1, 0\) \(fails\)\s+id=\w+ state=FAILURE -> RangeError: division by zero/);
  // Then the Express example: one request streamed to SUCCESS, and the URL to open.
  assert.match(demo.out, /Express: POST http:\/\/127\.0\.0\.1:\d+\/long -> 202 \/tasks\/[0-9a-f-]+; SSE .*SUCCESS$/m);
  assert.match(demo.out, /Open http:\/\/127\.0\.0\.1:\d+ /);

  const version = JSON.parse(readFileSync(join(clone, 'packages/core/package.json'), 'utf8')).version as string;
  const ok = sh(clone, 'npx --no-install celeriac --version', userEnv(), 30_000);
  assert.equal(ok.code, 0, ok.out);
  assert.equal(ok.out.trim(), version);

  // Without a build the linked bin says what to do (the state right after npm ci).
  const dist = join(clone, 'packages/core/dist');
  renameSync(dist, `${dist}.off`);
  try {
    const unbuilt = sh(clone, 'npx --no-install celeriac --version', userEnv(), 30_000);
    assert.equal(unbuilt.code, 1, unbuilt.out);
    assert.match(unbuilt.out, /the CLI is not built yet .*: run npm run build/);
  } finally {
    renameSync(`${dist}.off`, dist);
  }
});

test('the tests read the Celery captures from inside the clone', { timeout: 60_000 }, () => {
  const r = sh(clone, 'node --import tsx --test test/protocol.test.ts', userEnv(), 55_000);
  assert.equal(r.code, 0, r.out);
  assert.match(r.out, /# fail 0/);
  assert.doesNotMatch(r.out, /# pass 0\b/);
});

test("the README's quick start: a worker process and send.mjs on a real redis-server", { skip: noRedis ?? false, timeout: 60_000 }, async () => {
  redis = await startRedis();
  const env = userEnv({ CELERIAC_BROKER_URL: redis.url(0), CELERIAC_RESULT_BACKEND: redis.url(1) });
  const workerLine = readmeCommand(readme, /^npx --no-install celeriac worker -A examples\/quickstart\/tasks\.mjs/);
  const sendLine = readmeCommand(readme, /^node examples\/quickstart\/send\.mjs/);

  let output = '';
  worker = spawn('sh', ['-c', `exec ${workerLine}`], { cwd: clone, env, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
  worker.stdout!.on('data', (b: Buffer) => (output += b.toString()));
  worker.stderr!.on('data', (b: Buffer) => (output += b.toString()));
  await waitFor(() => output, /ready\./, 30_000, workerLine);
  assert.match(output, /tasks\.add/, 'the banner lists the example tasks');
  assert.match(output, new RegExp(`redis://127\\.0\\.0\\.1:${redis.port}/0`), 'the worker uses the broker URL from the environment');

  const send = sh(clone, sendLine, env, 40_000);
  assert.equal(send.code, 0, `${sendLine} failed:\n${send.out}\nworker:\n${output}`);
  assert.match(send.out, /^tasks\.add\(2, 2\) -> 4$/m);
  assert.match(send.out, /^tasks\.add\(10, 5\) countdown=2s -> 15$/m);
  assert.match(send.out, /^tasks\.flaky\(7\) -> ok after 1 retry, n=7$/m);

  // The README's other commands, against the same worker (broker from the environment).
  const call = sh(clone, `npx --no-install celeriac call tasks.add --args '[2,2]' --wait`, env, 30_000);
  assert.equal(call.code, 0, call.out);
  const id = /[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/.exec(call.out)?.[0];
  assert.ok(id, `celeriac call printed no task id:\n${call.out}`);
  assert.match(call.out, /^4$/m);
  const result = sh(clone, `npx --no-install celeriac result ${id}`, env, 30_000);
  assert.equal(result.code, 0, result.out);
  assert.match(result.out, /^4$/m);
  const purge = sh(clone, 'npx --no-install celeriac purge -Q celery -f', env, 30_000);
  assert.equal(purge.code, 0, purge.out);
  assert.match(purge.out, /Purged 0 messages/);

  // Warm shutdown of the process group we started. npx may exit before the worker
  // it runs; 'close' fires once every process holding the output pipes is gone.
  const closed = new Promise<'closed'>((r) => worker!.once('close', () => r('closed')));
  process.kill(-worker.pid!, 'SIGTERM');
  let timer: NodeJS.Timeout | undefined;
  const outcome = await Promise.race([closed, new Promise<'timeout'>((r) => (timer = setTimeout(() => r('timeout'), 20_000)))]);
  clearTimeout(timer);
  assert.equal(outcome, 'closed', `the worker did not stop within 20 s of SIGTERM:\n${output}`);
});
