/**
 * The dashboard as one framework-agnostic handler on Node's request/response:
 * the standalone server (`celeriac dashboard`), the Express router, the Fastify
 * plugin and the Nest module all call `handle()`.
 *
 * ```ts
 * const dashboard = createDashboard(app, { authorize: (req, access) => isAdmin(req) });
 * http.createServer((req, res) => dashboard.handle(req, res).then((done) => done || notFound(res)));
 * ```
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Celeriac } from '../app.js';
import { ConfigurationError } from '../errors.js';
import { SseStream } from '../web/sse.js';
import { ActionInputError, runAction, type DashboardAction } from './actions.js';
import { DASHBOARD_CSS, DASHBOARD_JS } from './assets.js';
import { DashboardModel, type DashboardModelOptions } from './dashboard-model.js';
import { apiApply, apiQueueLengths, apiRevoke, apiTaskInfo, apiTaskResult, apiTasks, apiTaskTypes, apiWorkers, type ApiReply } from './flower-api.js';
import { fragments, page, type View, type ViewContext } from './pages.js';
import { CsrfGuard, crossSite, fromBrowser, isLoopback } from './security.js';

/** What a request wants: to look (`view`: pages, live stream, read API) or to act. */
export type DashboardAccess = 'view' | DashboardAction;

/**
 * The auth hook: may this request do `access`? Called for every request (views
 * too). Answer false for 403. Throwing counts as false.
 */
export type DashboardAuthorize = (req: IncomingMessage, access: DashboardAccess) => boolean | Promise<boolean>;

/** Options of `createDashboard`. */
export interface DashboardOptions extends DashboardModelOptions {
  /** The auth hook (see `DashboardAuthorize`). Configuring it turns actions on. */
  authorize?: DashboardAuthorize;
  /**
   * Allow actions (revoke, rate limit, pool grow/shrink, shutdown, apply)?
   * Default: on when `authorize` is set, or when `bindAddress` is a loopback
   * address; off otherwise (a mounted dashboard without `authorize`, a public bind
   * without auth). `true` without `authorize` on a non-loopback bind is refused.
   */
  actions?: boolean;
  /** The address the server listens on (the standalone server sets it). */
  bindAddress?: string;
  /** Page title. Default "Celeriac". */
  title?: string;
  /** Secret of the CSRF tokens (default: random per process; set it when several processes serve one dashboard). */
  csrfSecret?: string;
  /** Mark the CSRF cookie `Secure` (behind HTTPS). Default false. */
  secureCookie?: boolean;
}

/** Where the dashboard is mounted, for one request. */
export interface HandleOptions {
  /** The URL prefix the dashboard lives under (`''` at the root, `/dashboard`); links are built on it. */
  base?: string;
  /** The path below `base` (default: from `req.url`). */
  path?: string;
  /** The request body when a framework already parsed it (Express's `req.body`, Fastify's `request.body`). */
  body?: unknown;
}

const MAX_BODY = 1 << 20;

/** A dashboard over one app's events and remote control. */
export class Dashboard {
  readonly model: DashboardModel;
  /** Are actions allowed at all (before the auth hook and CSRF checks)? */
  readonly actionsEnabled: boolean;
  /** Why they are off (shown on the page and in 403 replies). */
  readonly actionsOff: string | undefined;
  private readonly csrf: CsrfGuard;
  private readonly streams = new Set<SseStream>();
  /** The last fragments rendered per view, shared by the live streams showing the same view. */
  private readonly rendered = new Map<string, { stamp: string; parts: Record<string, string> }>();

  constructor(
    readonly app: Celeriac,
    private readonly options: DashboardOptions = {},
  ) {
    this.model = new DashboardModel(app, options);
    this.csrf = new CsrfGuard(options.csrfSecret);
    const loopback = options.bindAddress !== undefined && isLoopback(options.bindAddress);
    if (options.actions === true && !options.authorize && !loopback) {
      throw new ConfigurationError(
        `Dashboard actions without an auth hook are only allowed on a loopback bind (this one: ${options.bindAddress ?? 'mounted in another server'}): ` +
          'pass authorize: (req, access) => ... (or --basic-auth user:password), or bind to 127.0.0.1.',
      );
    }
    this.actionsEnabled = options.actions ?? (options.authorize !== undefined || loopback);
    this.actionsOff = this.actionsEnabled
      ? undefined
      : options.actions === false
        ? 'this dashboard is read-only (actions: false / --read-only).'
        : 'no auth is configured and the dashboard is not bound to a loopback address; configure an auth hook (authorize, or --basic-auth user:password).';
  }

  /** Subscribe to events and read the cluster (also done on the first request). */
  start(): Promise<void> {
    return this.model.start();
  }

  /**
   * Answer a request if it is one of the dashboard's; resolves false when no route
   * matched (a mounted dashboard then passes the request on).
   */
  async handle(req: IncomingMessage, res: ServerResponse, where: HandleOptions = {}): Promise<boolean> {
    const base = (where.base ?? '').replace(/\/+$/, '');
    const url = new URL(req.url ?? '/', 'http://dashboard.invalid');
    let path = where.path ?? url.pathname;
    if (where.path === undefined && base) {
      if (path !== base && !path.startsWith(`${base}/`)) return false;
      path = path.slice(base.length);
    }
    path = path === '' ? '/' : path;
    const method = (req.method ?? 'GET').toUpperCase();
    try {
      const routed = await this.route(req, res, method, path, url.searchParams, base, where);
      return routed;
    } catch (err) {
      if (!res.headersSent) this.send(res, 500, { error: `Dashboard error: ${(err as Error).message}` });
      else if (!res.writableEnded) res.end();
      this.app.logger.error({ err }, `Dashboard request ${method} ${path} failed: ${(err as Error).message}`);
      return true;
    }
  }

  private async route(req: IncomingMessage, res: ServerResponse, method: string, path: string, q: URLSearchParams, base: string, where: HandleOptions): Promise<boolean> {
    if (method === 'GET' && path === '/static/dashboard.js') return this.asset(res, DASHBOARD_JS, 'text/javascript; charset=utf-8');
    if (method === 'GET' && path === '/favicon.ico') {
      res.statusCode = 204;
      res.end();
      return true;
    }
    if (method === 'GET' && path === '/static/dashboard.css') return this.asset(res, DASHBOARD_CSS, 'text/css; charset=utf-8');
    const seg = path.split('/').filter(Boolean).map((s) => decodeURIComponent(s));
    if (method === 'POST' && seg[0] === 'actions' && seg.length === 2) {
      const action = seg[1] as DashboardAction;
      if (!['revoke', 'rate-limit', 'pool-grow', 'pool-shrink', 'shutdown'].includes(action)) return this.send(res, 404, { error: `No such action: ${seg[1]}` });
      if (!(await this.allowAction(req, res, action, true))) return true;
      const body = await this.body(req, where);
      if (typeof body !== 'object' || body === null || Array.isArray(body)) return this.send(res, 400, { error: 'Send a JSON object.' });
      try {
        return this.send(res, 200, await runAction(this.app, action as Exclude<DashboardAction, 'apply'>, body as Record<string, unknown>));
      } catch (err) {
        if (err instanceof ActionInputError) return this.send(res, 400, { error: err.message });
        throw err;
      }
    }
    if (method === 'POST' && seg[0] === 'api' && seg[1] === 'task' && seg.length === 4 && ['async-apply', 'send-task', 'revoke'].includes(seg[2]!)) {
      const action: DashboardAction = seg[2] === 'revoke' ? 'revoke' : 'apply';
      if (!(await this.allowAction(req, res, action, false))) return true;
      await this.model.start();
      const reply = seg[2] === 'revoke' ? await apiRevoke(this.app, seg[3]!, q) : await apiApply(this.app, this.model, seg[3]!, await this.body(req, where), seg[2] === 'async-apply');
      return this.reply(res, reply);
    }
    if (method !== 'GET' && method !== 'HEAD') return false;
    const view = this.viewOf(seg, q);
    const api = seg[0] === 'api';
    if (!view && !api && !(seg[0] === 'live' && seg.length === 1)) return false;
    if (!(await this.allowed(req, 'view'))) return this.send(res, 403, { error: 'Not allowed to view the dashboard.' });
    await this.model.start();
    if (api) return this.reply(res, await this.api(seg, q));
    if (seg[0] === 'live') return this.live(req, res, this.viewOf(seg.slice(1), q, q.get('view')) ?? { kind: 'home' }, base);
    const ctx = this.context(base);
    const { token, setCookie } = this.csrf.issue(req, base || '/', this.options.secureCookie ?? false);
    const live = new URLSearchParams(q);
    live.set('view', view!.kind === 'task' ? `task/${view!.id}` : view!.kind);
    res.statusCode = 200;
    res.setHeader('Content-Type', 'text/html; charset=utf-8');
    res.setHeader('Cache-Control', 'no-store');
    res.setHeader('Content-Security-Policy', "default-src 'self'; style-src 'self'; img-src 'self' data:; frame-ancestors 'self'; form-action 'self'; base-uri 'none'");
    res.setHeader('X-Content-Type-Options', 'nosniff');
    if (setCookie) res.setHeader('Set-Cookie', setCookie);
    res.end(page(ctx, view!, { title: this.options.title ?? 'Celeriac', csrfToken: token, liveUrl: `${base}/live?${live}` }));
    return true;
  }

  /** The page view for a path (`[]`, `['tasks']`, `['task', id]`); `kind` from the live stream's `view=` parameter. */
  private viewOf(seg: string[], q: URLSearchParams, kind?: string | null): View | undefined {
    const parts = kind ? kind.split('/') : seg;
    if (parts.length === 0 || (parts.length === 1 && parts[0] === 'home')) return { kind: 'home' };
    if (parts.length === 1 && parts[0] === 'tasks') {
      const get = (k: string) => q.get(k) || undefined;
      return { kind: 'tasks', filter: { state: get('state'), name: get('name'), worker: get('worker'), q: get('q'), limit: Number(q.get('limit')) || undefined } };
    }
    if (parts.length === 2 && parts[0] === 'task') return { kind: 'task', id: parts[1]! };
    return undefined;
  }

  private async api(seg: string[], q: URLSearchParams): Promise<ApiReply> {
    const p = seg.slice(1).join('/');
    if (p === 'workers') return apiWorkers(this.model, q);
    if (p === 'tasks') return apiTasks(this.model, q);
    if (p === 'task/types') return apiTaskTypes(this.model);
    if (p === 'queues/length') return apiQueueLengths(this.model);
    if (seg[1] === 'task' && seg[2] === 'info' && seg.length === 4) return apiTaskInfo(this.model, seg[3]!);
    if (seg[1] === 'task' && seg[2] === 'result' && seg.length === 4) return apiTaskResult(this.app, seg[3]!, q);
    return { status: 404, text: `No such API: /api/${p}` };
  }

  private context(base: string): ViewContext {
    return { model: this.model, base, actions: this.actionsEnabled, actionsOff: this.actionsOff };
  }

  /** Stream the view's fragments as they change (`event: fragments`, a JSON object id → HTML). */
  private live(req: IncomingMessage, res: ServerResponse, view: View, base: string): boolean {
    const stream = new SseStream(res, { retryMs: 2_000 });
    this.streams.add(stream);
    const ctx = this.context(base);
    const last = new Map<string, string>();
    const push = () => {
      const changed: Record<string, string> = {};
      for (const [id, text] of Object.entries(this.render(ctx, view))) {
        if (last.get(id) !== text) changed[id] = text;
        last.set(id, text);
      }
      if (Object.keys(changed).length > 0) stream.send(changed, 'fragments');
    };
    push();
    const unwatch = this.model.watch();
    this.model.on('change', push);
    // "x s ago" and online/offline move with time too.
    const tick = setInterval(push, 5_000);
    tick.unref();
    stream.signal.addEventListener('abort', () => {
      clearInterval(tick);
      this.model.off('change', push);
      unwatch();
      this.streams.delete(stream);
    });
    return true;
  }

  /**
   * The view's fragments, rendered once per model change (and per second, for the
   * "seconds ago" cells) however many streams show it.
   */
  private render(ctx: ViewContext, view: View): Record<string, string> {
    const key = `${ctx.base}|${JSON.stringify(view)}`;
    const stamp = `${this.model.version}|${Math.floor(Date.now() / 1000)}`;
    const cached = this.rendered.get(key);
    if (cached?.stamp === stamp) return cached.parts;
    const parts: Record<string, string> = {};
    for (const [id, h] of Object.entries(fragments(ctx, view))) parts[id] = h.text;
    if (this.rendered.size >= 200) this.rendered.clear();
    this.rendered.set(key, { stamp, parts });
    return parts;
  }

  private async allowed(req: IncomingMessage, access: DashboardAccess): Promise<boolean> {
    if (!this.options.authorize) return true;
    try {
      return (await this.options.authorize(req, access)) === true;
    } catch (err) {
      this.app.logger.warn({ err }, `Dashboard auth hook threw for ${access}; refused: ${(err as Error).message}`);
      return false;
    }
  }

  /**
   * May this request act? Actions on, the auth hook agrees, and no forgery: a
   * request from another site is refused; the page's actions (`csrfAlways`)
   * need the CSRF token; API actions need it only from a browser (scripts send
   * no Origin). Answers 403 itself and returns false.
   */
  private async allowAction(req: IncomingMessage, res: ServerResponse, action: DashboardAction, csrfAlways: boolean): Promise<boolean> {
    let why: string | undefined;
    if (!this.actionsEnabled) why = `Actions are off: ${this.actionsOff}`;
    else if (!(await this.allowed(req, action))) why = `Not allowed to ${action}.`;
    else if (crossSite(req)) why = 'Refused: the request came from another site.';
    else if ((csrfAlways || fromBrowser(req)) && !this.csrf.verify(req)) why = 'Refused: missing or wrong CSRF token (reload the page).';
    if (why === undefined) return true;
    this.send(res, 403, { error: why });
    return false;
  }

  private async body(req: IncomingMessage, where: HandleOptions): Promise<unknown> {
    let raw: unknown = where.body;
    if (raw === undefined) {
      if (req.readableEnded) return undefined;
      const chunks: Buffer[] = [];
      let size = 0;
      for await (const chunk of req) {
        size += (chunk as Buffer).length;
        if (size > MAX_BODY) throw new Error('request body over 1 MiB');
        chunks.push(chunk as Buffer);
      }
      raw = Buffer.concat(chunks).toString('utf8');
    }
    if (Buffer.isBuffer(raw)) raw = raw.toString('utf8');
    if (typeof raw !== 'string') return raw;
    if (raw.trim() === '') return undefined;
    const type = String(req.headers['content-type'] ?? '');
    if (type.includes('application/x-www-form-urlencoded')) return Object.fromEntries(new URLSearchParams(raw));
    try {
      return JSON.parse(raw);
    } catch {
      return raw;
    }
  }

  private asset(res: ServerResponse, text: string, type: string): boolean {
    res.statusCode = 200;
    res.setHeader('Content-Type', type);
    res.setHeader('Cache-Control', 'public, max-age=300');
    res.setHeader('X-Content-Type-Options', 'nosniff');
    res.end(text);
    return true;
  }

  private reply(res: ServerResponse, reply: ApiReply): boolean {
    if (reply.text !== undefined) {
      res.statusCode = reply.status;
      res.setHeader('Content-Type', 'text/plain; charset=utf-8');
      res.end(reply.text);
      return true;
    }
    return this.send(res, reply.status, reply.json);
  }

  private send(res: ServerResponse, status: number, json: unknown): boolean {
    res.statusCode = status;
    res.setHeader('Content-Type', 'application/json; charset=utf-8');
    res.setHeader('Cache-Control', 'no-store');
    res.end(JSON.stringify(json));
    return true;
  }

  /** End the live streams and stop listening to events (the app stays open). */
  async close(): Promise<void> {
    for (const s of [...this.streams]) s.close();
    await this.model.close();
  }
}

/** A dashboard for `app` (see `DashboardOptions` for auth and actions). */
export function createDashboard(app: Celeriac, options: DashboardOptions = {}): Dashboard {
  return new Dashboard(app, options);
}
