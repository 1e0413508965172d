/**
 * CeleriacDashboardModule: the dashboard mounted at /dashboard of a Nest app, on
 * @nestjs/platform-express and @nestjs/platform-fastify (memory://, in-process
 * worker): pages with the mount path in their links, Flower's API, an action with
 * the page's CSRF token, refused without it and when the auth hook says no.
 */
import 'reflect-metadata';
import { CeleriacDashboardModule } from '@celeriac/nest';
import { Module, type INestApplication } from '@nestjs/common';
import { FastifyAdapter } from '@nestjs/platform-fastify';
import { Test } from '@nestjs/testing';
import { afterEach, describe, expect, test } from 'vitest';
import { AppModule } from './fixtures/app.module.js';

let app: INestApplication | undefined;
afterEach(async () => {
  await app?.close();
  app = undefined;
});

const platforms = { express: () => undefined, fastify: () => new FastifyAdapter() } as const;

async function start(platform: keyof typeof platforms): Promise<string> {
  @Module({
    imports: [
      AppModule.register({ name: `nest-dashboard-${platform}` }),
      CeleriacDashboardModule.forRoot({ path: '/dashboard', authorize: (req) => req.headers['x-user'] === 'admin' }),
    ],
  })
  class DashboardTestModule {}
  const moduleRef = await Test.createTestingModule({ imports: [DashboardTestModule] }).compile();
  const adapter = platforms[platform]();
  app = adapter ? moduleRef.createNestApplication(adapter, { logger: false }) : moduleRef.createNestApplication({ logger: false });
  await app.listen(0, '127.0.0.1');
  return (await app.getUrl()).replace('[::1]', '127.0.0.1');
}

for (const platform of ['express', 'fastify'] as const) {
  describe(`CeleriacDashboardModule on platform-${platform}`, () => {
    test('pages, API and a CSRF-guarded action under /dashboard; the host app\'s routes still answer', async () => {
      const base = await start(platform);
      const h = { 'x-user': 'admin' };
      expect((await fetch(`${base}/dashboard`)).status).toBe(403);
      const page = await fetch(`${base}/dashboard/`, { headers: h });
      expect(page.status).toBe(200);
      const html = await page.text();
      expect(html).toContain('<meta name="celeriac-base" content="/dashboard">');
      const token = /<meta name="csrf-token" content="([^"]+)">/.exec(html)![1]!;
      const cookie = (page.headers.get('set-cookie') ?? '').split(';')[0]!;
      const post = (headers: Record<string, string>) =>
        fetch(`${base}/dashboard/actions/revoke`, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: JSON.stringify({ id: `nest-${platform}` }) });
      expect((await post({ ...h, cookie })).status).toBe(403);
      const ok = await post({ ...h, cookie, 'x-csrf-token': token });
      expect(ok.status).toBe(200);
      expect(await ok.json()).toEqual({ message: `Revoked 'nest-${platform}'` });
      const api = await fetch(`${base}/dashboard/api/tasks`, { headers: h });
      expect(api.status).toBe(200);
      expect(typeof (await api.json())).toBe('object');
      expect((await fetch(`${base}/dashboard/static/dashboard.js`, { headers: h })).headers.get('content-type')).toContain('javascript');
      const mul = await fetch(`${base}/mul`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ x: 2, y: 3 }) });
      expect(mul.status).toBeLessThan(300);
    });
  });
}
