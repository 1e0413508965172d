/**
 * CeleriacStatusModule: GET /tasks/:id and the @Sse() route GET /tasks/:id/events,
 * on @nestjs/platform-express and @nestjs/platform-fastify (memory://, in-process worker).
 */
import 'reflect-metadata';
import { CeleriacStatusModule, type CeleriacStatusOptions } from '@celeriac/nest';
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

async function start(platform: keyof typeof platforms, status: CeleriacStatusOptions = {}): Promise<string> {
  @Module({ imports: [AppModule.register({ name: `nest-status-${platform}` }), CeleriacStatusModule.forRoot(status)] })
  class StatusTestModule {}
  const moduleRef = await Test.createTestingModule({ imports: [StatusTestModule] }).compile();
  const adapter = platforms[platform]();
  app = adapter ? moduleRef.createNestApplication(adapter, { logger: false }) : moduleRef.createNestApplication({ logger: false });
  await app.listen(0, '127.0.0.1');
  return (await app.getUrl()).replace('[::1]', '127.0.0.1');
}

const post = async (base: string, path: string, body: unknown = {}) =>
  (await (await fetch(`${base}${path}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) })).json()) as { id: string };

/** Parse an SSE body into events. */
function parseSse(text: string): { event: string; id?: string; data: unknown }[] {
  return text
    .split('\n\n')
    .filter((block) => block.trim() !== '' && !block.startsWith(':'))
    .map((block) => {
      const fields: Record<string, string> = {};
      for (const line of block.split('\n')) {
        const i = line.indexOf(':');
        if (i > 0) fields[line.slice(0, i)] = (fields[line.slice(0, i)] ? fields[line.slice(0, i)] + '\n' : '') + line.slice(i + 1).trimStart();
      }
      return { event: fields.event ?? 'message', id: fields.id, data: fields.data ? JSON.parse(fields.data) : undefined };
    });
}

for (const platform of ['express', 'fastify'] as const) {
  describe(`CeleriacStatusModule on platform-${platform}`, () => {
    test('GET /tasks/:id: PENDING for an unknown id, then SUCCESS with the result', async () => {
      const base = await start(platform);
      const unknown = await fetch(`${base}/tasks/0b0e5b4c-0000-4000-8000-000000000000`);
      expect(unknown.status).toBe(200);
      expect(await unknown.json()).toMatchObject({ state: 'PENDING', ready: false });
      const { id } = await post(base, '/mul', { x: 4, y: 5 });
      let status: { state: string; result?: { product: number } } = { state: 'PENDING' };
      for (let i = 0; i < 200 && status.state !== 'SUCCESS'; i++) {
        status = (await (await fetch(`${base}/tasks/${id}`)).json()) as typeof status;
        if (status.state !== 'SUCCESS') await new Promise((r) => setTimeout(r, 20));
      }
      expect(status).toMatchObject({ taskId: id, state: 'SUCCESS', ready: true, result: { product: 20 } });
    });

    test('GET /tasks/:id/events streams every progress change, then the result, then an end event', async () => {
      const base = await start(platform);
      const { id } = await post(base, '/count', { to: 3, stepMs: 50 });
      const res = await fetch(`${base}/tasks/${id}/events`);
      expect(res.status).toBe(200);
      expect(res.headers.get('content-type')).toMatch(/^text\/event-stream/);
      expect(res.headers.get('x-accel-buffering')).toBe('no');
      const events = parseSse(await res.text()); // the stream ends by itself after the final state
      const data = events.filter((e) => e.event === 'message').map((e) => e.data as { state: string; progress?: { current: number } });
      const progress = data.filter((d) => d.state === 'PROGRESS').map((d) => d.progress!.current);
      expect(progress).toEqual([...new Set(progress)].sort()); // in order, each once
      expect(progress.at(-1)).toBe(3);
      expect(data.at(-1)).toMatchObject({ state: 'SUCCESS', result: { counted: 3 } });
      expect(events.at(-1)).toMatchObject({ event: 'end', data: { taskId: id, state: 'SUCCESS' } });
    });

    test('heartbeats: ping events while a task runs, before its final state', async () => {
      const base = await start(platform, { heartbeatMs: 20 });
      const { id } = await post(base, '/count', { to: 3, stepMs: 200 });
      const events = parseSse(await (await fetch(`${base}/tasks/${id}/events`)).text());
      const firstPing = events.findIndex((e) => e.event === 'ping');
      const success = events.findIndex((e) => e.event === 'message' && (e.data as { state: string }).state === 'SUCCESS');
      expect(firstPing).toBeGreaterThanOrEqual(0);
      expect(firstPing).toBeLessThan(success);
      expect(events.at(-1)).toMatchObject({ event: 'end', data: { taskId: id, state: 'SUCCESS' } });
    });

    test('a failed task: error type and message, no traceback unless enabled', async () => {
      const base = await start(platform);
      const { id } = await post(base, '/fail');
      const res = await fetch(`${base}/tasks/${id}/events`);
      const events = parseSse(await res.text());
      const final = events.filter((e) => e.event === 'message').at(-1)!.data as { state: string; error: Record<string, unknown> };
      expect(final.state).toBe('FAILURE');
      expect(final.error).toMatchObject({ type: 'RangeError', message: 'out of range on purpose' });
      expect(final.error.traceback).toBeUndefined();
    });

    test('authorize: false answers 403 on both routes; a malformed id is 404', async () => {
      const base = await start(platform, { authorize: (_req, taskId) => taskId.startsWith('mine-') });
      expect((await fetch(`${base}/tasks/theirs-1`)).status).toBe(403);
      expect((await fetch(`${base}/tasks/theirs-1/events`)).status).toBe(403);
      expect((await fetch(`${base}/tasks/mine-1`)).status).toBe(200);
      expect((await fetch(`${base}/tasks/bad%20id`)).status).toBe(404);
    });
  });
}
