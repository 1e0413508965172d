/**
 * The dashboard in a real browser: Debian's chromium, headless, driven by
 * playwright-core (no downloaded browser), against `celeriac dashboard` run
 * through the CLI on a test redis-server, while a Celeriac worker (-E) runs 200
 * tasks (some fail, some retry) and a Python Celery 5.2 worker (-E) runs its own.
 * The page must show them (counts by state, both workers, queue depths, the
 * chart's totals, a failed task's traceback), a revoke click must revoke a queued
 * task (its worker reports REVOKED and never runs it), and forged actions are
 * refused. Screenshots go to .test-tmp/dashboard/ (paths printed).
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { chromium, type Browser, type Page } from 'playwright-core';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createApp, createDashboard, type Celeriac } from '../packages/core/src/index.ts';
import { CLI_MAIN, interopEnv, pythonCeleryMissing, REPO_ROOT, redisClient, startCeleriacWorker, startPythonWorker, type InteropEnv, type PeerProcess } from './helpers/python-celery.ts';
import { missing, REDIS_SERVER, startRedis, stopChild, type RedisServer } from './helpers/services.ts';
import { waitFor } from './helpers/worker-process.ts';

const CHROMIUM = '/usr/bin/chromium';
const ARTIFACTS = join(REPO_ROOT, '.test-tmp', 'dashboard');
const skip = missing(REDIS_SERVER, 'apt-get install redis-server') ?? missing(CHROMIUM, 'apt-get install chromium') ?? pythonCeleryMissing();

/** `celeriac dashboard` in its own process; resolves with its URL once it listens. */
async function startDashboardCli(env: InteropEnv, args: string[] = []): Promise<{ url: string; child: ChildProcess; output: () => string }> {
  const child = spawn(process.execPath, ['--import', 'tsx', CLI_MAIN, '-b', env.INTEROP_BROKER_URL, '--result-backend', env.INTEROP_BACKEND_URL, 'dashboard', '--port', '0', ...args], {
    cwd: REPO_ROOT,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout!.on('data', (c: Buffer) => (out += c.toString()));
  child.stderr!.on('data', (c: Buffer) => (out += c.toString()));
  await waitFor(() => /-> celeriac dashboard: (http:\/\/\S+?)\/ /.test(out) || child.exitCode !== null, 30_000, 'celeriac dashboard to listen');
  const m = /-> celeriac dashboard: (http:\/\/\S+?)\/ /.exec(out);
  if (!m) throw new Error(`celeriac dashboard did not start:\n${out}`);
  return { url: m[1]!, child, output: () => out };
}

async function shot(page: Page, name: string): Promise<string> {
  const path = join(ARTIFACTS, `${name}.png`);
  await page.screenshot({ path, fullPage: true });
  console.log(`# screenshot: ${path}`);
  return path;
}

/** The number a state's count shows on the page's summary. */
async function countOf(page: Page, state: string): Promise<number> {
  const el = page.locator(`#summary .count[data-state="${state}"] b`);
  return (await el.count()) === 0 ? 0 : Number(await el.first().textContent());
}

describe('dashboard in headless chromium, with a Celeriac and a Python worker on Redis', { skip: skip ?? false }, () => {
  let redis: RedisServer | undefined;
  let env: InteropEnv;
  let app: Celeriac;
  let tsWorker: PeerProcess | undefined;
  let heldWorker: PeerProcess | undefined;
  let pyWorker: PeerProcess | undefined;
  let dashboard: { url: string; child: ChildProcess; output: () => string } | undefined;
  let browser: Browser | undefined;
  let page: Page;
  const ids = { add: [] as string[], fail: [] as string[], flaky: [] as string[], py: [] as string[], pyFail: '', held: '' };

  before(async () => {
    if (skip) return;
    mkdirSync(ARTIFACTS, { recursive: true });
    redis = await startRedis();
    env = interopEnv(redis);
    // The producer sends task-sent events, so queued tasks show as PENDING before any worker has them.
    app = createApp('dashboard-producer', { brokerUrl: env.INTEROP_BROKER_URL, resultBackend: env.INTEROP_BACKEND_URL, taskSendSentEvent: true });
    [dashboard, pyWorker] = await Promise.all([
      startDashboardCli(env),
      startPythonWorker({ env, hostname: 'py@dash', queues: ['py'], pool: 'prefork', concurrency: 1, heartbeat: true, extraArgs: ['-E'] }),
    ]);
    tsWorker = await startCeleriacWorker({ app: 'test/apps/dashboard-app.ts', env, hostname: 'ts@dash', concurrency: 4, extraArgs: ['-E'] });
    browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: ['--no-sandbox'] });
    page = await browser.newPage({ viewport: { width: 1400, height: 1000 } });
    page.on('dialog', (d) => void d.accept());
  });

  after(async () => {
    await browser?.close();
    await app?.close();
    if (dashboard) await stopChild(dashboard.child, 5_000);
    await Promise.all([tsWorker?.stop(), heldWorker?.stop(), pyWorker?.stop()]);
    await redis?.stop();
  });

  test('the live page shows 200 tasks (some failed, some retried) and the Python worker\'s, by state, with both workers online', async () => {
    await page.goto(`${dashboard!.url}/`);
    await waitFor(async () => (await page.locator('#live').getAttribute('class')) === 'live on', 10_000, 'the live stream to open');
    const sends: Promise<{ id: string }>[] = [];
    for (let i = 0; i < 200; i++) {
      if (i % 10 === 3) sends.push(app.sendTask('dash.fail', [i]));
      else if (i % 10 === 7) sends.push(app.sendTask('dash.flaky', [i]));
      else sends.push(app.sendTask('dash.add', [i, 1]));
    }
    const sent = await Promise.all(sends);
    sent.forEach((r, i) => (i % 10 === 3 ? ids.fail : i % 10 === 7 ? ids.flaky : ids.add).push(r.id));
    for (let i = 0; i < 5; i++) ids.py.push((await app.sendTask('tasks.add', [i, i], {}, { queue: 'py' })).id);
    ids.pyFail = (await app.sendTask('tasks.fail', [], {}, { queue: 'py' })).id;
    ids.held = (await app.sendTask('dash.add', [1000, 1], {}, { queue: 'held' })).id;

    // Every count is read from the page itself, as the live stream updated it (no reload).
    await waitFor(async () => (await countOf(page, 'SUCCESS')) === 160 + 20 + 5 && (await countOf(page, 'FAILURE')) === 20 + 1, 60_000, 'the page to count 185 SUCCESS and 21 FAILURE');
    assert.equal(await countOf(page, 'PENDING'), 1, 'the held task waits, PENDING');
    assert.equal(await countOf(page, 'ALL'), 207);
    assert.ok(Number(await page.getAttribute('body', 'data-live-updates')) > 0, 'updates came over the live stream');
    for (const w of ['ts@dash', 'py@dash']) {
      await waitFor(async () => (await page.locator(`#workers tr[data-worker="${w}"] .online`).count()) === 1, 10_000, `${w} online on the page`);
    }
    await waitFor(async () => Number(await page.locator('#workers tr[data-worker="ts@dash"] [data-field="processed"]').textContent()) >= 200, 15_000, 'ts@dash processed ≥ 200 (heartbeat)');
    await waitFor(async () => Number(await page.locator('#workers tr[data-worker="py@dash"] [data-field="processed"]').textContent()) >= 6, 15_000, 'py@dash processed 6');
    assert.match((await page.locator('#workers tr[data-worker="py@dash"]').textContent()) ?? '', /py-celery 5\.2/);
    await waitFor(async () => (await page.locator('#queues tr[data-queue="held"] td.num').textContent()) === '1', 10_000, 'queue "held" shows 1 message');
    await waitFor(async () => (await page.locator('#queues tr[data-queue="celery"] td.num').textContent()) === '0', 10_000, 'queue "celery" shows 0 (all run)');
    assert.equal(await page.locator('#chart [data-total="failed"]').textContent(), '21');
    assert.equal(await page.locator('#chart [data-total="succeeded"]').textContent(), '185');
    await shot(page, 'overview');
  });

  test('the task list filters by state, name and worker, and searches by id', async () => {
    await page.goto(`${dashboard!.url}/tasks?state=FAILURE`);
    assert.equal(await page.locator('#tasks tr[data-task]').count(), 21);
    assert.equal(await page.locator('#tasks tr[data-task][data-state="FAILURE"]').count(), 21);
    await page.goto(`${dashboard!.url}/tasks?name=dash.flaky`);
    assert.equal(await page.locator('#tasks tr[data-task]').count(), 20);
    await page.goto(`${dashboard!.url}/tasks?worker=py%40dash`);
    assert.equal(await page.locator('#tasks tr[data-task]').count(), 6);
    await page.goto(`${dashboard!.url}/tasks`);
    await page.fill('input[name="q"]', ids.fail[0]!.slice(0, 13));
    await page.click('form.filters button[type="submit"]');
    await page.waitForURL(/q=/);
    assert.deepEqual(await page.locator('#tasks tr[data-task]').evaluateAll((rows) => rows.map((r) => r.getAttribute('data-task'))), [ids.fail[0]]);
    await shot(page, 'tasks-search');
  });

  test('a failed task\'s page shows its traceback (Celeriac and Python), a retried one its retry in the timeline', async () => {
    await page.goto(`${dashboard!.url}/tasks?state=FAILURE&name=dash.fail`);
    await page.locator(`#tasks a.task-link:text-is("${ids.fail[0]}")`).click();
    await page.waitForURL(new RegExp(`/task/${ids.fail[0]}$`));
    assert.match((await page.locator('pre.exception').textContent()) ?? '', /DashboardBoom\('boom 3'\)/);
    assert.match((await page.locator('pre.traceback').textContent()) ?? '', /DashboardBoom: boom 3/);
    assert.equal(await page.locator('.args').first().textContent(), '(3,)');
    await shot(page, 'task-failed');

    await page.goto(`${dashboard!.url}/task/${ids.pyFail}`);
    assert.match((await page.locator('pre.traceback').textContent()) ?? '', /Traceback \(most recent call last\)[\s\S]*ValueError: \('bad', 7\)/);

    await page.goto(`${dashboard!.url}/task/${ids.flaky[0]}`);
    const events = await page.locator('table.timeline tr[data-event]').evaluateAll((rows) => rows.map((r) => r.getAttribute('data-event')));
    assert.ok(events.includes('task-retried') && events.at(-1) === 'task-succeeded', `timeline: ${events.join(', ')}`);
    assert.equal(await page.locator('[data-field="retries"]').textContent(), '1');
  });

  test('a revoke click revokes the queued task: the worker that later reads it reports REVOKED and never runs it', async () => {
    await page.goto(`${dashboard!.url}/task/${ids.held}`);
    assert.equal(await page.locator('#task .state').first().textContent(), 'PENDING');
    await page.locator('button[data-action="revoke"]:not([data-terminate])').click();
    await waitFor(async () => ((await page.locator('#flash').textContent()) ?? '').includes(`Revoked '${ids.held}'`), 10_000, 'the revoke confirmation');
    // Only now a worker consumes the queue: it learns the revoke from the broker at start-up.
    heldWorker = await startCeleriacWorker({ app: 'test/apps/dashboard-app.ts', env, hostname: 'held@dash', queues: ['held'], extraArgs: ['-E'] });
    await waitFor(async () => (await page.locator('#task .state').first().textContent()) === 'REVOKED', 20_000, 'the page (live) to show REVOKED');
    const timeline = await page.locator('table.timeline tr[data-event]').evaluateAll((rows) => rows.map((r) => r.getAttribute('data-event')));
    assert.deepEqual(timeline, ['task-sent', 'task-revoked']);
    assert.equal(await app.AsyncResult(ids.held).state, 'REVOKED');
    const record = redisClient(env.INTEROP_RECORD_URL);
    try {
      const ran = await record.lrange('dash:ran', 0, -1);
      assert.ok(!ran.includes(ids.held), 'the revoked task never ran');
      assert.ok(ran.includes(ids.add[0]!), 'the record works');
    } finally {
      record.disconnect();
    }
    await shot(page, 'task-revoked');
  });

  test('the rate-limit form, pool +1 and shut down act on the workers through the page (Python obeys too)', async () => {
    const url = dashboard!.url;
    await page.goto(`${url}/`);
    await page.fill('form.rate-limit input[name="task"]', 'tasks.add');
    await page.fill('form.rate-limit input[name="rate"]', '50/s');
    await page.fill('form.rate-limit input[name="worker"]', 'py@dash');
    await page.click('form.rate-limit button[type="submit"]');
    await waitFor(async () => /Rate limit of tasks\.add set to 50\/s \(1 worker answered\)/.test((await page.locator('#flash').textContent()) ?? ''), 10_000, 'the rate-limit reply');

    const processes = async () => {
      const workers = (await (await fetch(`${url}/api/workers?refresh=1&workername=py%40dash`)).json()) as Record<string, { stats?: { pool?: { processes?: number[] } } }>;
      return workers['py@dash']?.stats?.pool?.processes?.length ?? 0;
    };
    assert.equal(await processes(), 1);
    await page.locator('#workers tr[data-worker="py@dash"] button[data-action="pool-grow"]').click();
    await waitFor(async () => /pool_grow 1 sent to py@dash/.test((await page.locator('#flash').textContent()) ?? ''), 10_000, 'the pool_grow reply');
    await waitFor(async () => (await processes()) === 2, 15_000, "Python's prefork pool to have 2 processes");

    await page.locator('#workers tr[data-worker="held@dash"] button[data-action="shutdown"]').click();
    await waitFor(async () => /Shutdown sent to held@dash/.test((await page.locator('#flash').textContent()) ?? ''), 10_000, 'the shutdown reply');
    await waitFor(() => heldWorker!.child.exitCode !== null || heldWorker!.child.signalCode !== null, 20_000, `held@dash to exit after the shutdown click:\n${heldWorker!.output().slice(-1500)}`);
    await waitFor(async () => (await page.locator('#workers tr[data-worker="held@dash"] .offline').count()) === 1, 10_000, 'held@dash offline on the page');
    await shot(page, 'overview-after-actions');
  });

  test('actions without the CSRF token, or from another site, are refused with 403; the API answers in Flower\'s shapes', async () => {
    const url = dashboard!.url;
    const noToken = await fetch(`${url}/actions/revoke`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ id: ids.add[1] }) });
    assert.equal(noToken.status, 403);
    assert.match(((await noToken.json()) as { error: string }).error, /CSRF/);
    const forged = await fetch(`${url}/api/task/revoke/${ids.add[1]}`, { method: 'POST', headers: { origin: 'http://evil.example' } });
    assert.equal(forged.status, 403);
    // The page's own token from another origin is refused too.
    const token = await page.getAttribute('meta[name="csrf-token"]', 'content');
    const cookies = await page.context().cookies();
    const cookie = cookies.map((c) => `${c.name}=${c.value}`).join('; ');
    const crossSite = await fetch(`${url}/actions/revoke`, { method: 'POST', headers: { 'content-type': 'application/json', 'x-csrf-token': token!, cookie, origin: 'http://evil.example' }, body: JSON.stringify({ id: ids.add[1] }) });
    assert.equal(crossSite.status, 403);
    const withToken = await fetch(`${url}/actions/revoke`, { method: 'POST', headers: { 'content-type': 'application/json', 'x-csrf-token': token!, cookie }, body: JSON.stringify({ id: ids.add[1] }) });
    assert.equal(withToken.status, 200);

    const info = (await (await fetch(`${url}/api/task/info/${ids.fail[0]}`)).json()) as Record<string, unknown>;
    assert.equal(info.state, 'FAILURE');
    assert.equal(info.worker, 'ts@dash');
    assert.equal(info['task-id'], ids.fail[0]);
    assert.match(String(info.traceback), /DashboardBoom/);
    const tasks = (await (await fetch(`${url}/api/tasks?state=FAILURE&workername=py%40dash`)).json()) as Record<string, { name: string }>;
    assert.deepEqual(Object.keys(tasks), [ids.pyFail]);
    // refresh=1 asks again (Flower's meaning); each inspect waits 1 s, which a loaded machine may miss once.
    let workers: Record<string, { registered?: string[] }> = {};
    await waitFor(async () => {
      workers = (await (await fetch(`${url}/api/workers?refresh=1`)).json()) as typeof workers;
      return workers['py@dash']?.registered?.includes('tasks.fail') === true && workers['ts@dash']?.registered?.includes('dash.flaky') === true;
    }, 20_000, 'both workers (Python and Celeriac) to answer inspect registered').catch((err: Error) => {
      throw new Error(`${err.message}: ${JSON.stringify(Object.fromEntries(Object.entries(workers).map(([k, v]) => [k, v.registered])))}`);
    });
    const applied = (await (await fetch(`${url}/api/task/async-apply/dash.add`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ args: [20, 22] }) })).json()) as { 'task-id': string; state: string };
    assert.equal(await app.AsyncResult(applied['task-id']).get({ timeout: 10_000 }), 42);
    // A Python task this process does not register: known from the worker's `registered` ("tasks.add [rate_limit=50/s]" after the form above).
    const pyApplied = await fetch(`${url}/api/task/async-apply/tasks.add`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ args: [2, 3], queue: 'py' }) });
    assert.equal(pyApplied.status, 200);
    assert.equal(await app.AsyncResult(((await pyApplied.json()) as { 'task-id': string })['task-id']).get({ timeout: 10_000 }), 5);
  });

  test('bound to a non-loopback address without auth: the page shows actions off, its buttons are disabled, and a request with the token gets 403', async () => {
    // The rule is the dashboard's own (bindAddress); the test still listens on 127.0.0.1 only.
    const readOnly = createDashboard(app, { bindAddress: '0.0.0.0' });
    const server = createServer((req, res) => void readOnly.handle(req, res).then((done) => done || res.writeHead(404).end()));
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    try {
      const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
      await page.goto(`${url}/`);
      assert.match((await page.locator('.notice').textContent()) ?? '', /Actions are off: no auth is configured and the dashboard is not bound to a loopback address/);
      await waitFor(async () => (await page.locator('#workers tr[data-worker="ts@dash"]').count()) === 1, 10_000, 'workers listed');
      const buttons = page.locator('#workers button[data-action]');
      assert.ok((await buttons.count()) > 0);
      assert.deepEqual([...new Set(await buttons.evaluateAll((bs) => bs.map((b) => (b as HTMLButtonElement).disabled)))], [true]);
      assert.equal(await page.locator('form.rate-limit button[type="submit"]').isDisabled(), true);
      const token = await page.getAttribute('meta[name="csrf-token"]', 'content');
      const status = await page.evaluate(
        async ([t, id]) => (await fetch('/actions/revoke', { method: 'POST', headers: { 'content-type': 'application/json', 'x-csrf-token': t! }, body: JSON.stringify({ id }) })).status,
        [token, ids.add[2]] as const,
      );
      assert.equal(status, 403, 'even from the page itself, with its token');
      await shot(page, 'read-only');
    } finally {
      await readOnly.close();
      server.closeAllConnections();
      await new Promise<void>((r) => server.close(() => r()));
    }
  });
});
