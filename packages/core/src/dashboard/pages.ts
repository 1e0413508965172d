/**
 * The dashboard's server-rendered views. Each view is a set of fragments, by
 * element id; a page renders them in place, and the live stream re-sends the
 * ones that changed (the page's small script swaps them in), so the page and its
 * live updates come from the same code.
 */
import type { TaskInfo, WorkerInfo } from '../events/event-state.js';
import { rateChart } from './chart.js';
import type { DashboardModel } from './dashboard-model.js';
import { html, raw, type Html } from './html.js';

/** What every view is rendered with. */
export interface ViewContext {
  model: DashboardModel;
  /** URL prefix of the dashboard's links (`''` at the root, `/dashboard` when mounted there). */
  base: string;
  /** Are the action buttons live (else shown disabled with the reason)? */
  actions: boolean;
  /** Why actions are off, for the page. */
  actionsOff?: string;
}

/** Filters of the task list (query parameters). */
export interface TaskFilter {
  state?: string;
  name?: string;
  worker?: string;
  /** Search by id (a prefix or part of it). */
  q?: string;
  limit?: number;
}

/** The views: the overview, the task list, one task. */
export type View = { kind: 'home' } | { kind: 'tasks'; filter: TaskFilter } | { kind: 'task'; id: string };

const STATES = ['PENDING', 'RECEIVED', 'STARTED', 'RETRY', 'SUCCESS', 'FAILURE', 'REVOKED', 'REJECTED'];

const time = (s: number | undefined) => (s === undefined ? '' : new Date(s * 1000).toISOString().slice(11, 23));
const ago = (s: number) => {
  const d = Math.max(0, Date.now() / 1000 - s);
  return d < 90 ? `${d.toFixed(0)} s ago` : `${(d / 60).toFixed(0)} min ago`;
};

function qs(base: string, path: string, params: Record<string, string | undefined>): string {
  const p = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v) p.set(k, v);
  const s = p.toString();
  return `${base}${path}${s ? `?${s}` : ''}`;
}

function badge(state: string): Html {
  return html`<span class="state state-${state.toLowerCase()}">${state}</span>`;
}

function actionButton(ctx: ViewContext, label: string, action: string, data: Record<string, string>, confirm?: string): Html {
  const attrs = Object.entries(data).map(([k, v]) => html` data-${k}="${v}"`);
  const off = ctx.actions ? '' : html` disabled title="${ctx.actionsOff ?? 'actions are off'}"`;
  return html`<button type="button" data-action="${action}"${attrs}${confirm ? html` data-confirm="${confirm}"` : ''}${off}>${label}</button>`;
}

/** Counts by state, each a link to the filtered list. */
function summary(ctx: ViewContext): Html {
  const counts = ctx.model.countsByState();
  const total = Object.values(counts).reduce((a, b) => a + b, 0);
  const workers = [...ctx.model.state.workers.values()];
  const online = workers.filter((w) => ctx.model.state.alive(w)).length;
  return html`<div class="counts"><a class="count" data-state="ALL" href="${ctx.base}/tasks">tasks <b>${total}</b></a>${STATES.filter((s) => counts[s] !== undefined || ['SUCCESS', 'FAILURE'].includes(s)).map(
    (s) => html`<a class="count" data-state="${s}" href="${qs(ctx.base, '/tasks', { state: s })}">${badge(s)} <b>${counts[s] ?? 0}</b></a>`,
  )}<span class="count" data-state="WORKERS">workers online <b>${online}</b>/${workers.length}</span></div>`;
}

function workerRow(ctx: ViewContext, w: WorkerInfo): Html {
  const alive = ctx.model.state.alive(w);
  const software = w.swIdent ? `${w.swIdent} ${w.swVer ?? ''}`.trim() : '';
  return html`<tr data-worker="${w.hostname}"><td><a href="${qs(ctx.base, '/tasks', { worker: w.hostname })}">${w.hostname}</a></td><td>${alive ? html`<span class="online">online</span>` : html`<span class="offline">offline</span>`}</td><td>${software}</td><td class="num" data-field="active">${w.active}</td><td class="num" data-field="processed">${w.processed}</td><td>${w.loadavg.map((l) => l.toFixed(2)).join(' ')}</td><td>${w.lastHeartbeat ? ago(w.lastHeartbeat) : ''}</td><td class="actions">${
    alive
      ? [
          actionButton(ctx, 'pool +1', 'pool-grow', { worker: w.hostname, n: '1' }),
          actionButton(ctx, 'pool −1', 'pool-shrink', { worker: w.hostname, n: '1' }),
          actionButton(ctx, 'shut down', 'shutdown', { worker: w.hostname }, `Shut down ${w.hostname}?`),
        ]
      : ''
  }</td></tr>`;
}

function workersTable(ctx: ViewContext): Html {
  const workers = [...ctx.model.state.workers.values()].sort((a, b) => a.hostname.localeCompare(b.hostname));
  if (workers.length === 0) return html`<p class="empty">No worker has sent an event yet (start workers with events on: <code>celeriac worker -E</code>, <code>celery worker -E</code>).</p>`;
  return html`<table><thead><tr><th>Worker</th><th>Status</th><th>Software</th><th>Active</th><th>Processed</th><th>Load</th><th>Heartbeat</th><th></th></tr></thead><tbody>${workers.map((w) => workerRow(ctx, w))}</tbody></table>`;
}

function queuesTable(ctx: ViewContext): Html {
  const queues = [...ctx.model.queueDepths.entries()].sort((a, b) => a[0].localeCompare(b[0]));
  if (queues.length === 0) return html`<p class="empty">No queue read yet.</p>`;
  return html`<table><thead><tr><th>Queue</th><th>Messages waiting</th></tr></thead><tbody>${queues.map(([name, n]) => html`<tr data-queue="${name}"><td>${name}</td><td class="num">${n}</td></tr>`)}</tbody></table>`;
}

function taskRow(ctx: ViewContext, t: TaskInfo): Html {
  const when = t.received ?? t.sent ?? t.events[0]?.timestamp;
  const revocable = ['PENDING', 'RECEIVED', 'STARTED', 'RETRY'].includes(t.state);
  return html`<tr data-task="${t.uuid}" data-state="${t.state}"><td><a class="task-link" href="${ctx.base}/task/${encodeURIComponent(t.uuid)}">${t.uuid}</a></td><td>${t.name ?? ''}</td><td>${badge(t.state)}</td><td class="args">${t.args ?? ''}${t.kwargs && t.kwargs !== '{}' ? ` ${t.kwargs}` : ''}</td><td>${t.worker ?? ''}</td><td>${time(when)}</td><td class="num">${t.runtime !== undefined ? t.runtime.toFixed(3) : ''}</td><td class="num">${t.retries ?? ''}</td><td>${revocable ? actionButton(ctx, 'revoke', 'revoke', { id: t.uuid }) : ''}</td></tr>`;
}

function filterTasks(ctx: ViewContext, f: TaskFilter): TaskInfo[] {
  const limit = f.limit ?? 200;
  const q = f.q?.trim().toLowerCase();
  const out: TaskInfo[] = [];
  for (const t of ctx.model.state.taskList({ state: f.state, name: f.name, worker: f.worker })) {
    if (q && !t.uuid.toLowerCase().includes(q)) continue;
    out.push(t);
    if (out.length >= limit) break;
  }
  return out;
}

function tasksTable(ctx: ViewContext, f: TaskFilter): Html {
  const tasks = filterTasks(ctx, f);
  if (tasks.length === 0) return html`<p class="empty">No task matches.</p>`;
  return html`<table class="tasks"><thead><tr><th>Task id</th><th>Name</th><th>State</th><th>Arguments</th><th>Worker</th><th>Received (UTC)</th><th>Runtime s</th><th>Retries</th><th></th></tr></thead><tbody>${tasks.map((t) => taskRow(ctx, t))}</tbody></table><p class="shown">${tasks.length} shown, newest first</p>`;
}

function filterForm(ctx: ViewContext, f: TaskFilter): Html {
  const options = (values: string[], selected: string | undefined) =>
    [html`<option value="">all</option>`, ...values.map((v) => html`<option value="${v}"${v === selected ? raw(' selected') : ''}>${v}</option>`)];
  const workers = [...ctx.model.state.workers.keys()].sort();
  return html`<form class="filters" method="get" action="${ctx.base}/tasks"><label>State <select name="state">${options(STATES, f.state)}</select></label><label>Name <select name="name">${options(ctx.model.taskNames(), f.name)}</select></label><label>Worker <select name="worker">${options(workers, f.worker)}</select></label><label>Task id <input name="q" value="${f.q ?? ''}" placeholder="search by id" size="38"></label><button type="submit">Filter</button></form>`;
}

function link(ctx: ViewContext, id: string | null | undefined): Html {
  return id ? html`<a href="${ctx.base}/task/${encodeURIComponent(id)}">${id}</a>` : html`—`;
}

function taskDetail(ctx: ViewContext, id: string): Html {
  const found = ctx.model.task(id);
  if (!found) return html`<p class="empty">No event about task <code>${id}</code> yet: it may not have been sent, or was sent without events (<code>taskSendSentEvent</code>, worker <code>-E</code>).</p><p>${actionButton(ctx, 'Revoke', 'revoke', { id })}</p>`;
  const { task: t, children } = found;
  // Events arrive in batches from several nodes (the producer's task-sent may come last): show them by time.
  const timeline = [...t.events].sort((a, b) => a.timestamp - b.timestamp);
  const first = timeline[0]?.timestamp ?? 0;
  const revocable = !['SUCCESS', 'FAILURE', 'REVOKED', 'REJECTED'].includes(t.state);
  return html`<h2><span class="task-name">${t.name ?? '(unknown name)'}</span> ${badge(t.state)}</h2>
<dl class="fields">
<dt>Id</dt><dd><code>${t.uuid}</code></dd>
<dt>Worker</dt><dd>${t.worker ?? '—'}</dd>
<dt>Args</dt><dd><code class="args">${t.args ?? '—'}</code></dd>
<dt>Kwargs</dt><dd><code class="kwargs">${t.kwargs ?? '—'}</code></dd>
<dt>Retries</dt><dd data-field="retries">${t.retries ?? 0}</dd>
${t.eta ? html`<dt>ETA</dt><dd>${t.eta}</dd>` : ''}${t.expires ? html`<dt>Expires</dt><dd>${t.expires}</dd>` : ''}
<dt>Runtime</dt><dd>${t.runtime !== undefined ? `${t.runtime.toFixed(4)} s` : '—'}</dd>
<dt>Parent</dt><dd class="parent">${link(ctx, t.parentId)}</dd>
<dt>Root</dt><dd class="root">${link(ctx, t.rootId)}</dd>
<dt>Children</dt><dd class="children">${children.length === 0 ? '—' : children.map((c) => html`${link(ctx, c)} `)}</dd>
</dl>
${t.state === 'SUCCESS' ? html`<h3>Result</h3><pre class="result">${t.result ?? ''}</pre>` : ''}
${t.exception ? html`<h3>Exception</h3><pre class="exception">${t.exception}</pre>` : ''}
${t.traceback ? html`<h3>Traceback</h3><pre class="traceback">${t.traceback}</pre>` : ''}
<h3>Timeline</h3>
<table class="timeline"><thead><tr><th>Event</th><th>Time (UTC)</th><th>+s</th><th>From</th></tr></thead><tbody>${timeline.map(
    (e) => html`<tr data-event="${e.type}"><td>${e.type}</td><td>${time(e.timestamp)}</td><td class="num">${(e.timestamp - first).toFixed(3)}</td><td>${e.hostname}</td></tr>`,
  )}</tbody></table>
<p class="task-actions">${revocable ? [actionButton(ctx, 'Revoke', 'revoke', { id: t.uuid }, `Revoke ${t.uuid}?`), ' ', actionButton(ctx, 'Terminate', 'revoke', { id: t.uuid, terminate: 'true' }, `Terminate ${t.uuid}?`)] : ''}</p>`;
}

function rateLimitForm(ctx: ViewContext): Html {
  const names = ctx.model.taskNames();
  return html`<form class="rate-limit" data-action="rate-limit"><label>Task <input name="task" list="task-names" required placeholder="tasks.add"></label><datalist id="task-names">${names.map((n) => html`<option value="${n}">`)}</datalist><label>Rate <input name="rate" placeholder="10/s (empty: none)" size="14"></label><label>Worker <input name="worker" placeholder="all" size="18"></label><button type="submit"${ctx.actions ? '' : raw(' disabled')}>Set rate limit</button></form>`;
}

/** The fragments of a view, by element id. */
export function fragments(ctx: ViewContext, view: View): Record<string, Html> {
  switch (view.kind) {
    case 'home':
      return {
        summary: summary(ctx),
        chart: rateChart(ctx.model.series.window(), ctx.model.series.bucketSeconds),
        workers: workersTable(ctx),
        queues: queuesTable(ctx),
        tasks: tasksTable(ctx, { limit: 25 }),
      };
    case 'tasks':
      return { summary: summary(ctx), tasks: tasksTable(ctx, view.filter) };
    case 'task':
      return { task: taskDetail(ctx, view.id) };
  }
}

/** The whole page of a view. */
export function page(ctx: ViewContext, view: View, meta: { title: string; csrfToken: string; liveUrl: string }): string {
  const f = fragments(ctx, view);
  const box = (id: string, tag = 'div') => raw(`<${tag} id="${id}">${f[id]!.text}</${tag}>`);
  const nav = html`<nav><a href="${ctx.base}/" class="brand">${meta.title}</a><a href="${ctx.base}/">Overview</a><a href="${ctx.base}/tasks">Tasks</a><a href="${ctx.base}/api/workers">API</a><span id="live" class="live" title="live updates">●</span></nav>`;
  const off = ctx.actions ? '' : html`<p class="notice">Actions are off: ${ctx.actionsOff ?? ''}</p>`;
  let body: Html;
  if (view.kind === 'home') {
    body = html`${box('summary')}<section><h2>Throughput</h2>${box('chart')}</section><section><h2>Workers</h2>${box('workers')}${rateLimitForm(ctx)}</section><section><h2>Queues</h2>${box('queues')}</section><section><h2>Recent tasks <a class="more" href="${ctx.base}/tasks">all</a></h2>${box('tasks')}</section>`;
  } else if (view.kind === 'tasks') {
    body = html`${box('summary')}<section><h2>Tasks</h2>${filterForm(ctx, view.filter)}${box('tasks')}</section>`;
  } else {
    body = html`<section>${box('task')}</section>`;
  }
  return html`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>${meta.title}</title>
<meta name="csrf-token" content="${meta.csrfToken}"><meta name="celeriac-base" content="${ctx.base}"><meta name="celeriac-live" content="${meta.liveUrl}">
<link rel="stylesheet" href="${ctx.base}/static/dashboard.css"><script src="${ctx.base}/static/dashboard.js" defer></script></head>
<body>${nav}<main><div id="flash" role="status"></div>${off}${body}</main></body></html>`.text;
}
