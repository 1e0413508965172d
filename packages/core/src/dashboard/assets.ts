/**
 * The dashboard's static assets, served from memory (no build step, no files to
 * install): the stylesheet, and the page script that keeps the page live (SSE
 * fragments swapped in by id) and posts actions with the CSRF token.
 */

/** `GET <base>/static/dashboard.js`. */
export const DASHBOARD_JS = `'use strict';
(function () {
  var meta = function (n) { var m = document.querySelector('meta[name="' + n + '"]'); return m ? m.getAttribute('content') : ''; };
  var base = meta('celeriac-base'), token = meta('csrf-token'), live = meta('celeriac-live');
  var dot = document.getElementById('live');
  var flash = function (text, ok) {
    var el = document.getElementById('flash');
    if (!el) return;
    el.textContent = text;
    el.className = ok ? 'flash ok' : 'flash bad';
  };
  if (live && window.EventSource) {
    var es = new EventSource(live);
    es.addEventListener('open', function () { if (dot) dot.className = 'live on'; });
    es.addEventListener('error', function () { if (dot) dot.className = 'live off'; });
    es.addEventListener('fragments', function (ev) {
      var parts = JSON.parse(ev.data);
      for (var id in parts) { var el = document.getElementById(id); if (el) el.innerHTML = parts[id]; }
      document.body.setAttribute('data-live-updates', String(Number(document.body.getAttribute('data-live-updates') || 0) + 1));
    });
  }
  var post = function (action, body) {
    return fetch(base + '/actions/' + action, {
      method: 'POST', credentials: 'same-origin',
      headers: { 'content-type': 'application/json', 'x-csrf-token': token },
      body: JSON.stringify(body)
    }).then(function (r) {
      return r.json().catch(function () { return {}; }).then(function (j) {
        flash((j && (j.message || j.error)) || (r.status + ' ' + r.statusText), r.ok);
      });
    }, function (e) { flash(String(e), false); });
  };
  document.addEventListener('click', function (ev) {
    var b = ev.target && ev.target.closest ? ev.target.closest('button[data-action]') : null;
    if (!b) return;
    ev.preventDefault();
    if (b.dataset.confirm && !window.confirm(b.dataset.confirm)) return;
    var body = {};
    for (var k in b.dataset) if (k !== 'action' && k !== 'confirm') body[k] = b.dataset[k];
    if (body.terminate) body.terminate = body.terminate === 'true';
    post(b.dataset.action, body);
  });
  document.addEventListener('submit', function (ev) {
    var f = ev.target;
    if (!f || !f.dataset || !f.dataset.action) return;
    ev.preventDefault();
    var body = {};
    new FormData(f).forEach(function (v, k) { body[k] = String(v); });
    post(f.dataset.action, body);
  });
})();
`;

/** `GET <base>/static/dashboard.css`. */
export const DASHBOARD_CSS = `:root { --ok: #2e8540; --bad: #c62828; --warn: #ef6c00; --muted: #666; --line: #ddd; }
* { box-sizing: border-box; }
body { margin: 0; font: 14px/1.4 system-ui, -apple-system, Segoe UI, Roboto, sans-serif; color: #222; background: #fafafa; }
nav { display: flex; gap: 1.2em; align-items: center; padding: .6em 1.2em; background: #24323f; }
nav a { color: #e8eef3; text-decoration: none; }
nav .brand { font-weight: 700; color: #9fe870; }
.live { margin-left: auto; color: #888; } .live.on { color: #9fe870; } .live.off { color: var(--bad); }
main { padding: 1em 1.2em; max-width: 1400px; }
section { background: #fff; border: 1px solid var(--line); border-radius: 6px; padding: .4em 1em 1em; margin: 1em 0; }
h2 { font-size: 1.1em; } h2 .more { font-size: .8em; font-weight: 400; margin-left: .5em; }
table { border-collapse: collapse; width: 100%; }
th, td { text-align: left; padding: .3em .5em; border-bottom: 1px solid var(--line); vertical-align: top; }
th { font-weight: 600; color: #444; background: #f3f5f7; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
td.args { max-width: 22em; overflow: hidden; text-overflow: ellipsis; white-space: nowrap; font-family: ui-monospace, monospace; font-size: .9em; }
a.task-link { font-family: ui-monospace, monospace; font-size: .9em; }
.counts { display: flex; flex-wrap: wrap; gap: .6em; }
.count { background: #fff; border: 1px solid var(--line); border-radius: 6px; padding: .4em .8em; text-decoration: none; color: inherit; }
.state { display: inline-block; padding: 0 .45em; border-radius: 3px; font-size: .8em; font-weight: 600; color: #fff; background: #78909c; }
.state-success { background: var(--ok); } .state-failure { background: var(--bad); } .state-retry { background: var(--warn); }
.state-started { background: #1565c0; } .state-received { background: #5c6bc0; } .state-revoked, .state-rejected { background: #6a1b9a; }
.online { color: var(--ok); font-weight: 600; } .offline { color: var(--bad); }
.chart { width: 100%; max-width: 900px; height: auto; background: #fcfcfc; border: 1px solid var(--line); }
.chart .ok, .chart-legend .ok { fill: var(--ok); color: var(--ok); } .chart .bad, .chart-legend .bad { fill: var(--bad); color: var(--bad); } .chart .axis { stroke: #999; }
pre { background: #f6f8fa; border: 1px solid var(--line); padding: .6em; overflow: auto; max-height: 28em; }
pre.traceback, pre.exception { border-color: #f3c0c0; background: #fff6f6; }
dl.fields { display: grid; grid-template-columns: 8em 1fr; gap: .2em 1em; } dl.fields dt { color: var(--muted); }
.filters, .rate-limit { display: flex; flex-wrap: wrap; gap: .8em; align-items: end; margin: .8em 0; }
button { cursor: pointer; padding: .2em .6em; border: 1px solid #9aa5b1; border-radius: 4px; background: #fff; }
button:disabled { cursor: not-allowed; opacity: .5; }
.flash { padding: .5em .8em; border-radius: 4px; margin: .5em 0; } .flash.ok { background: #e7f5ea; } .flash.bad { background: #fdecea; }
.notice { background: #fff8e1; border: 1px solid #ffe082; padding: .5em .8em; border-radius: 4px; }
.empty, .shown { color: var(--muted); }
`;
