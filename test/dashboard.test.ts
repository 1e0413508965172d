/**
 * The dashboard without a browser, on memory:// with an in-process worker (-E):
 * the action guards (non-loopback bind without auth, the auth hook, CSRF,
 * another site's Origin, basic auth), Flower's API shapes, canvas links,
 * escaping of task data, and the Express router and Fastify plugin mounted under
 * a prefix (the same handler behind both).
 */
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, test } from 'node:test';
// The adapters import the built @celeriac/core: so does this test, so the app is the copy they know.
import { ConfigurationError, createApp, createDashboard, startDashboardServer, Worker, type Celeriac, type Dashboard, type DashboardOptions, type TaskContext } from '@celeriac/core';
import express from 'express';
import Fastify from 'fastify';
import { dashboardRouter } from '../packages/express/src/index.ts';
import { celeriacDashboard } from '../packages/fastify/src/index.ts';
import { waitFor } from './helpers/worker-process.ts';

/** Celery 5.2's `events.state.Task._fields`: what Flower's task JSON holds. */
const CELERY_TASK_FIELDS = [
  'uuid', 'name', 'state', 'received', 'sent', 'started', 'rejected', 'succeeded', 'failed', 'retried', 'revoked', 'args', 'kwargs', 'eta', 'expires',
  'retries', 'worker', 'result', 'exception', 'timestamp', 'runtime', 'traceback', 'exchange', 'routing_key', 'clock', 'client', 'root', 'root_id',
  'parent', 'parent_id', 'children',
];

let app: Celeriac;
let worker: Worker;
const servers: { close(): Promise<void> }[] = [];

/** Serve `dashboard` on a loopback port (the handler at the root). */
async function serve(dashboard: Dashboard): Promise<string> {
  const server: Server = createServer((req, res) => {
    void dashboard.handle(req, res).then((done) => {
      if (!done) res.writeHead(404).end();
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  servers.push({
    close: async () => {
      await dashboard.close();
      server.closeAllConnections();
      await new Promise<void>((r) => server.close(() => r()));
    },
  });
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

/** Open a page and return what an action needs: the cookie and the token. */
async function session(pageUrl: string, headers: Record<string, string> = {}): Promise<{ cookie: string; token: string; html: string }> {
  const res = await fetch(pageUrl, { headers });
  assert.equal(res.status, 200, `GET ${pageUrl}`);
  const html = await res.text();
  const cookie = (res.headers.get('set-cookie') ?? '').split(';')[0]!;
  const token = /<meta name="csrf-token" content="([^"]+)">/.exec(html)![1]!;
  return { cookie, token, html };
}

function action(url: string, body: unknown, headers: Record<string, string>): Promise<Response> {
  return fetch(url, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: JSON.stringify(body) });
}

before(async () => {
  app = createApp('dashboard-unit', { brokerUrl: 'memory://dashboard-unit', workerHeartbeatThread: false, taskSendSentEvent: true });
  app.task('unit.add', (x: number, y: number) => x + y);
  app.task('unit.echo', (s: string) => s);
  app.task('unit.fail', () => {
    throw new TypeError('nope');
  });
  app.task('unit.parent', async function () {
    const child = await app.sendTask('unit.add', [1, 1]); // parent and root ids come from the running task
    return child.id;
  });
  worker = new Worker(app, { hostname: 'unit@dash', concurrency: 2, logLevel: 'error', sendEvents: true });
  await worker.start();
});

after(async () => {
  for (const s of servers) await s.close();
  await worker.stop();
  await app.close();
});

describe('guards', () => {
  test('a non-loopback bind without auth: actions are off (403 naming the fix), the page says so; actions: true is refused at start', async () => {
    const d = createDashboard(app, { bindAddress: '0.0.0.0' });
    assert.equal(d.actionsEnabled, false);
    const url = await serve(d);
    const { cookie, token, html } = await session(`${url}/`);
    assert.match(html, /Actions are off: no auth is configured/);
    assert.match(html, /data-action="rate-limit"/);
    const r = await action(`${url}/actions/revoke`, { id: 'abc' }, { cookie, 'x-csrf-token': token });
    assert.equal(r.status, 403);
    assert.match(((await r.json()) as { error: string }).error, /configure an auth hook/);
    assert.equal((await fetch(`${url}/api/task/revoke/abc`, { method: 'POST' })).status, 403);
    assert.throws(() => createDashboard(app, { bindAddress: '0.0.0.0', actions: true }), (e: unknown) => e instanceof ConfigurationError && /authorize/.test((e as Error).message));
    assert.equal(createDashboard(app, { bindAddress: '127.0.0.1' }).actionsEnabled, true);
    assert.equal(createDashboard(app, { bindAddress: '::1' }).actionsEnabled, true);
    assert.equal(createDashboard(app, { bindAddress: '0.0.0.0', authorize: () => true }).actionsEnabled, true);
    assert.equal(createDashboard(app, {}).actionsEnabled, false, 'mounted without a hook: off');
    assert.equal(createDashboard(app, { bindAddress: '127.0.0.1', actions: false }).actionsEnabled, false, 'read-only');
  });

  test('the auth hook decides per access: a denied view is 403, a denied action is 403 even with a good CSRF token', async () => {
    const seen: string[] = [];
    const authorize: DashboardOptions['authorize'] = (req, access) => {
      seen.push(access);
      return req.headers['x-user'] === 'admin' || (req.headers['x-user'] === 'viewer' && access === 'view');
    };
    const url = await serve(createDashboard(app, { authorize, bindAddress: '0.0.0.0' }));
    assert.equal((await fetch(`${url}/`)).status, 403);
    assert.equal((await fetch(`${url}/api/tasks`)).status, 403);
    const viewer = await session(`${url}/`, { 'x-user': 'viewer' });
    const denied = await action(`${url}/actions/revoke`, { id: 'abc' }, { cookie: viewer.cookie, 'x-csrf-token': viewer.token, 'x-user': 'viewer' });
    assert.equal(denied.status, 403);
    assert.match(((await denied.json()) as { error: string }).error, /Not allowed to revoke/);
    const noCsrf = await action(`${url}/actions/revoke`, { id: 'abc' }, { cookie: viewer.cookie, 'x-user': 'admin' });
    assert.equal(noCsrf.status, 403);
    const wrongCsrf = await action(`${url}/actions/revoke`, { id: 'abc' }, { cookie: viewer.cookie, 'x-csrf-token': viewer.token.slice(1) + 'A', 'x-user': 'admin' });
    assert.equal(wrongCsrf.status, 403);
    const ok = await action(`${url}/actions/revoke`, { id: 'abc' }, { cookie: viewer.cookie, 'x-csrf-token': viewer.token, 'x-user': 'admin' });
    assert.equal(ok.status, 200);
    assert.deepEqual(await ok.json(), { message: "Revoked 'abc'" });
    assert.ok(seen.includes('view') && seen.includes('revoke'));
    // Scripts (no Origin) use the API with the hook's auth and no token; a browser from another site is refused.
    assert.equal((await fetch(`${url}/api/task/revoke/abc`, { method: 'POST', headers: { 'x-user': 'admin' } })).status, 200);
    assert.equal((await fetch(`${url}/api/task/revoke/abc`, { method: 'POST', headers: { 'x-user': 'admin', origin: 'http://evil.example' } })).status, 403);
    assert.equal((await fetch(`${url}/api/task/revoke/abc`, { method: 'POST', headers: { 'x-user': 'admin', 'sec-fetch-site': 'cross-site' } })).status, 403);
  });

  test('bad action input is a 400 naming the fix', async () => {
    const url = await serve(createDashboard(app, { bindAddress: '127.0.0.1' }));
    const { cookie, token } = await session(`${url}/`);
    const h = { cookie, 'x-csrf-token': token };
    const cases: [string, unknown, RegExp][] = [
      ['rate-limit', { task: 'unit.add', rate: 'fast' }, /Not a rate: "fast"/],
      ['pool-grow', {}, /Name the worker/],
      ['pool-grow', { worker: 'unit@dash', n: '-2' }, /whole number/],
      ['revoke', {}, /Name the task/],
    ];
    for (const [name, body, message] of cases) {
      const r = await action(`${url}/actions/${name}`, body, h);
      assert.equal(r.status, 400, name);
      assert.match(((await r.json()) as { error: string }).error, message);
    }
    const rate = await action(`${url}/actions/rate-limit`, { task: 'unit.add', rate: '10/s' }, h);
    assert.equal(rate.status, 200);
    assert.deepEqual(((await rate.json()) as { replies: unknown }).replies, [{ 'unit@dash': { ok: 'new rate limit set successfully' } }]);
    assert.equal((await action(`${url}/actions/nope`, {}, h)).status, 404);
  });

  test('standalone server with --basic-auth: 401 without credentials, pages and actions with them', async () => {
    const server = await startDashboardServer(app, { port: 0, host: '127.0.0.1', basicAuth: ['admin:s3cret'] });
    servers.push(server);
    const res = await fetch(`${server.url}/`);
    assert.equal(res.status, 401);
    assert.match(res.headers.get('www-authenticate') ?? '', /^Basic /);
    const auth = { authorization: `Basic ${Buffer.from('admin:s3cret').toString('base64')}` };
    assert.equal((await fetch(`${server.url}/`, { headers: { authorization: `Basic ${Buffer.from('admin:wrong').toString('base64')}` } })).status, 401);
    const { cookie, token } = await session(`${server.url}/`, auth);
    assert.equal((await action(`${server.url}/actions/revoke`, { id: 'xyz' }, { ...auth, cookie, 'x-csrf-token': token })).status, 200);
  });
});

describe('data', () => {
  let url: string;
  before(async () => {
    url = await serve(createDashboard(app, { bindAddress: '127.0.0.1' }));
    await fetch(`${url}/`); // starts the event receiver
  });

  test("Flower's API: task info has Celery's Task fields; lists filter, sort and page; apply and revoke answer Flower's shapes", async () => {
    const ok = await app.sendTask('unit.add', [2, 3]);
    const bad = await app.sendTask('unit.fail');
    await ok.get({ timeout: 5_000 });
    await bad.get({ timeout: 5_000, propagate: false });
    let info: Record<string, unknown> = {};
    await waitFor(async () => {
      const r = await fetch(`${url}/api/task/info/${bad.id}`);
      info = r.status === 200 ? ((await r.json()) as Record<string, unknown>) : {};
      return info.state === 'FAILURE';
    }, 5_000, 'task-failed in the API');
    assert.deepEqual(Object.keys(info).sort(), [...CELERY_TASK_FIELDS, 'task-id'].sort());
    assert.equal(info.exception, "TypeError('nope')");
    assert.match(String(info.traceback), /TypeError: nope/);
    assert.equal(info.worker, 'unit@dash');
    assert.equal(typeof info.failed, 'number');
    const missingTask = await fetch(`${url}/api/task/info/no-such-task`);
    assert.equal(missingTask.status, 404);
    assert.equal(await missingTask.text(), "Unknown task 'no-such-task'");

    await waitFor(async () => {
      const t = (await (await fetch(`${url}/api/tasks?taskname=unit.add&state=SUCCESS`)).json()) as Record<string, { result: string }>;
      return t[ok.id]?.result === '5';
    }, 5_000, 'the success in /api/tasks');
    const failures = (await (await fetch(`${url}/api/tasks?state=FAILURE&workername=unit%40dash`)).json()) as Record<string, { state: string }>;
    assert.ok(Object.values(failures).length >= 1 && Object.values(failures).every((t) => t.state === 'FAILURE'));
    const page1 = Object.keys((await (await fetch(`${url}/api/tasks?limit=1&sort_by=-received`)).json()) as object);
    const page2 = Object.keys((await (await fetch(`${url}/api/tasks?limit=1&offset=1&sort_by=-received`)).json()) as object);
    assert.equal(page1.length, 1);
    assert.notEqual(page1[0], page2[0]);
    assert.equal((await fetch(`${url}/api/tasks?sort_by=bogus`)).status, 400);
    const searched = (await (await fetch(`${url}/api/tasks?search=nope`)).json()) as Record<string, unknown>;
    assert.ok(bad.id in searched && !(ok.id in searched));
    assert.deepEqual(((await (await fetch(`${url}/api/task/types`)).json()) as { 'task-types': string[] })['task-types'].filter((n) => n.startsWith('unit.')).sort(), ['unit.add', 'unit.fail']);

    const applied = await fetch(`${url}/api/task/async-apply/unit.add`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ args: [40, 2] }) });
    assert.equal(applied.status, 200);
    const body = (await applied.json()) as { 'task-id': string; state: string };
    assert.deepEqual(Object.keys(body).sort(), ['state', 'task-id']);
    assert.equal(await app.AsyncResult(body['task-id']).get({ timeout: 5_000 }), 42);
    const unknown = await fetch(`${url}/api/task/async-apply/no.such.task`, { method: 'POST' });
    assert.equal(unknown.status, 404);
    assert.equal(await unknown.text(), "Unknown task 'no.such.task'");
    const badArgs = await fetch(`${url}/api/task/async-apply/unit.add`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ args: 'x' }) });
    assert.equal(badArgs.status, 400);
    assert.equal(await badArgs.text(), 'args must be an array');
    const revoked = await fetch(`${url}/api/task/revoke/${ok.id}?terminate=true`, { method: 'POST' });
    assert.deepEqual(await revoked.json(), { message: `Revoked '${ok.id}'` });
    const workers = (await (await fetch(`${url}/api/workers?refresh=1`)).json()) as Record<string, Record<string, unknown>>;
    assert.deepEqual(Object.keys(workers['unit@dash']!).sort(), ['active', 'active_queues', 'conf', 'registered', 'reserved', 'revoked', 'scheduled', 'stats', 'timestamp']);
    assert.deepEqual(await (await fetch(`${url}/api/workers?status=1`)).json(), { 'unit@dash': true });
    const queues = (await (await fetch(`${url}/api/queues/length`)).json()) as { active_queues: { name: string; messages: number }[] };
    assert.deepEqual(queues.active_queues.find((q) => q.name === 'celery'), { name: 'celery', messages: 0 });
    const result = (await (await fetch(`${url}/api/task/result/${bad.id}`)).json()) as Record<string, unknown>;
    assert.equal(result.state, 'FAILURE');
    assert.equal(result['task-id'], bad.id);
  });

  test("a task's page links its parent and children (canvas), and task data is escaped", async () => {
    const parent = await app.sendTask('unit.parent');
    const childId = (await parent.get({ timeout: 5_000 })) as string;
    await waitFor(async () => ((await (await fetch(`${url}/api/task/info/${childId}`)).json().catch(() => ({}))) as { state?: string }).state === 'SUCCESS', 5_000, 'child done');
    const info = (await (await fetch(`${url}/api/task/info/${parent.id}`)).json()) as { children: string[] };
    assert.deepEqual(info.children, [childId]);
    const parentPage = await (await fetch(`${url}/task/${parent.id}`)).text();
    assert.match(parentPage, new RegExp(`<dd class="children"><a href="/task/${childId}">${childId}</a>`));
    const childPage = await (await fetch(`${url}/task/${childId}`)).text();
    assert.match(childPage, new RegExp(`<dd class="parent"><a href="/task/${parent.id}">`));

    const evil = await app.sendTask('unit.echo', ['<script>alert(1)</script>']);
    await evil.get({ timeout: 5_000 });
    await waitFor(async () => ((await (await fetch(`${url}/api/task/info/${evil.id}`)).json().catch(() => ({}))) as { state?: string }).state === 'SUCCESS', 5_000, 'echo done');
    const evilPage = await (await fetch(`${url}/task/${evil.id}`)).text();
    assert.ok(!evilPage.includes('<script>alert(1)'), 'no raw script tag from task data');
    assert.match(evilPage, /&lt;script&gt;alert\(1\)&lt;\/script&gt;/);
  });

  test('the live stream sends the view\'s fragments, then only what changed', async () => {
    const ac = new AbortController();
    const res = await fetch(`${url}/live?view=home`, { signal: ac.signal });
    assert.equal(res.headers.get('content-type'), 'text/event-stream; charset=utf-8');
    const reader = res.body!.getReader();
    let text = '';
    const next = async (pattern: RegExp) => {
      while (!pattern.test(text)) text += new TextDecoder().decode((await reader.read()).value);
    };
    await next(/event: fragments\ndata: .*\n\n/);
    const first = JSON.parse(/event: fragments\ndata: (.*)\n\n/.exec(text)![1]!) as Record<string, string>;
    assert.deepEqual(Object.keys(first).sort(), ['chart', 'queues', 'summary', 'tasks', 'workers']);
    text = '';
    const r = await app.sendTask('unit.add', [7, 7]);
    await r.get({ timeout: 5_000 });
    await next(new RegExp(`event: fragments\\ndata: .*${r.id}.*\\n\\n`));
    ac.abort();
  });
});

describe('mounted in a host app under a prefix', () => {
  test('Express: dashboardRouter() behind express.json() and the host\'s auth; links, live URL and actions use the mount path', async () => {
    const web = express();
    web.use(express.json());
    web.use('/ops/dashboard', (req, res, next) => (req.headers['x-user'] ? next() : res.status(401).end()), dashboardRouter({ app, authorize: (req) => req.headers['x-user'] === 'admin' }));
    web.get('/other', (_req, res) => res.send('host route'));
    const server = web.listen(0, '127.0.0.1');
    await new Promise((r) => server.once('listening', r));
    servers.push({ close: () => new Promise<void>((r) => { server.closeAllConnections(); server.close(() => r()); }) });
    const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    assert.equal((await fetch(`${base}/ops/dashboard/`)).status, 401, "the host's auth runs first");
    const h = { 'x-user': 'admin' };
    const { cookie, token, html } = await session(`${base}/ops/dashboard/`, h);
    assert.match(html, /<meta name="celeriac-base" content="\/ops\/dashboard">/);
    assert.match(html, /<meta name="celeriac-live" content="\/ops\/dashboard\/live\?view=home">/);
    assert.match(html, /href="\/ops\/dashboard\/static\/dashboard.css"/);
    assert.equal((await fetch(`${base}/ops/dashboard/static/dashboard.js`, { headers: h })).status, 200);
    const r = await action(`${base}/ops/dashboard/actions/revoke`, { id: 'mounted-1' }, { ...h, cookie, 'x-csrf-token': token });
    assert.equal(r.status, 200, 'the body parsed by express.json() reaches the handler');
    assert.deepEqual(await r.json(), { message: "Revoked 'mounted-1'" });
    assert.equal((await action(`${base}/ops/dashboard/actions/revoke`, { id: 'x' }, { 'x-user': 'viewer', cookie, 'x-csrf-token': token })).status, 403);
    assert.equal(await (await fetch(`${base}/other`)).text(), 'host route');
    assert.equal((await fetch(`${base}/ops/dashboard/nothing-here`, { headers: h })).status, 404);
  });

  test('Fastify: the celeriacDashboard plugin under a prefix, form and JSON bodies', async () => {
    const fastify = Fastify();
    await fastify.register(celeriacDashboard, { prefix: '/dash', app, authorize: (request) => request.headers['x-user'] === 'admin' });
    await fastify.listen({ port: 0, host: '127.0.0.1' });
    servers.push({ close: () => fastify.close() });
    const base = `http://127.0.0.1:${(fastify.server.address() as AddressInfo).port}`;
    const h = { 'x-user': 'admin' };
    const { cookie, token, html } = await session(`${base}/dash`, h);
    assert.match(html, /<meta name="celeriac-base" content="\/dash">/);
    const r = await action(`${base}/dash/actions/revoke`, { id: 'fastify-1' }, { ...h, cookie, 'x-csrf-token': token });
    assert.deepEqual(await r.json(), { message: "Revoked 'fastify-1'" });
    const form = await fetch(`${base}/dash/actions/revoke`, { method: 'POST', headers: { ...h, cookie, 'x-csrf-token': token, 'content-type': 'application/x-www-form-urlencoded' }, body: 'id=fastify-2' });
    assert.deepEqual(await form.json(), { message: "Revoked 'fastify-2'" });
    assert.equal((await fetch(`${base}/dash/api/tasks`)).status, 403);
    assert.equal((await fetch(`${base}/dash/api/tasks`, { headers: h })).status, 200);
    assert.equal((await action(`${base}/dash/actions/revoke`, { id: 'x' }, { ...h, cookie })).status, 403);
  });
});
