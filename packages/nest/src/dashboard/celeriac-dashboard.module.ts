/**
 * `CeleriacDashboardModule`: the Celeriac dashboard (live pages, Flower's JSON
 * API, guarded actions) mounted at a path of a Nest app, on Express or Fastify,
 * behind the app's own guards/middleware:
 *
 * ```ts
 * imports: [CeleriacModule.forRoot({ config }), CeleriacDashboardModule.forRoot({ path: '/dashboard', authorize: (req) => isAdmin(req) })]
 * ```
 *
 * A thin wrapper: a middleware on the path hands each request to `Dashboard.handle`.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { createDashboard, currentApp, type Celeriac, type Dashboard, type DashboardOptions } from '@celeriac/core';
import { Inject, Module, RequestMethod, type DynamicModule, type MiddlewareConsumer, type NestModule, type OnModuleDestroy } from '@nestjs/common';
import { CELERIAC_APP } from '../tokens.js';

/** Options of `CeleriacDashboardModule.forRoot`. */
export interface CeleriacDashboardOptions extends DashboardOptions {
  /** Where the dashboard lives. Default `/dashboard`. */
  path?: string;
  /** The app shown. Default: `CeleriacModule`'s, else the process's app. */
  app?: Celeriac;
}

/** Injection token of the module's options. */
export const CELERIAC_DASHBOARD_OPTIONS = Symbol.for('celeriac.nest.dashboard-options');

/** The dashboard handler, injectable (`@Inject(CELERIAC_DASHBOARD) dashboard: Dashboard`). */
export const CELERIAC_DASHBOARD = Symbol.for('celeriac.nest.dashboard');

@Module({})
export class CeleriacDashboardModule implements NestModule, OnModuleDestroy {
  private readonly base: string;

  constructor(
    @Inject(CELERIAC_DASHBOARD) private readonly dashboard: Dashboard,
    @Inject(CELERIAC_DASHBOARD_OPTIONS) options: CeleriacDashboardOptions,
  ) {
    this.base = `/${(options.path ?? '/dashboard').replace(/^\/+|\/+$/g, '')}`;
  }

  /** The module with its options. */
  static forRoot(options: CeleriacDashboardOptions = {}): DynamicModule {
    return {
      module: CeleriacDashboardModule,
      providers: [
        { provide: CELERIAC_DASHBOARD_OPTIONS, useValue: options },
        {
          provide: CELERIAC_DASHBOARD,
          inject: [CELERIAC_DASHBOARD_OPTIONS, { token: CELERIAC_APP, optional: true }],
          useFactory: (o: CeleriacDashboardOptions, injected?: Celeriac) => {
            const app = o.app ?? injected ?? currentApp();
            if (!app) throw new Error('CeleriacDashboardModule: no Celeriac app: import CeleriacModule.forRoot(...) or pass { app }.');
            const { path: _path, app: _app, ...rest } = o;
            return createDashboard(app, rest);
          },
        },
      ],
      exports: [CELERIAC_DASHBOARD],
    };
  }

  configure(consumer: MiddlewareConsumer): void {
    const base = this.base;
    const dashboard = this.dashboard;
    const middleware = (req: IncomingMessage & { originalUrl?: string; body?: unknown }, res: ServerResponse, next: (err?: unknown) => void) => {
      const pathname = new URL(req.originalUrl ?? req.url ?? '/', 'http://nest.invalid').pathname;
      if (pathname !== base && !pathname.startsWith(`${base}/`)) return next();
      dashboard.handle(req, res, { base, path: pathname.slice(base.length) || '/', body: req.body }).then((handled) => {
        if (!handled) next();
      }, next);
    };
    consumer.apply(middleware).forRoutes({ path: base, method: RequestMethod.ALL }, { path: `${base}/{*rest}`, method: RequestMethod.ALL });
  }

  async onModuleDestroy(): Promise<void> {
    await this.dashboard.close();
  }
}

