/**
 * One app, two adapters in one process: an Express `queuePlugin` and a Nest
 * `CeleriacModule` bind the same app on memory://. They share one embedded worker
 * (refcounted holds): closing the first leaves the worker consuming and the
 * connections open for the other; the last one to close stops the worker
 * (`workerShutdown` fires once) and closes the connections. Both orders.
 */
import 'reflect-metadata';
import type { Server } from 'node:http';
import { appUsers, Celeriac, currentTask, startEmbeddedWorker, type AsyncResult } from '@celeriac/core';
import { celeriacErrorHandler, gracefulShutdown, queuePlugin } from '@celeriac/express';
import { CeleriacModule, CeleriacWorker, TaskProducer } from '@celeriac/nest';
import { Controller, Module, Post, type INestApplication } from '@nestjs/common';
import { Test } from '@nestjs/testing';
import express from 'express';
import request from 'supertest';
import { describe, expect, test } from 'vitest';

/** An app with one task that names the request it came from. */
function sharedApp(name: string): Celeriac {
  const app = new Celeriac(name, { brokerUrl: `memory://${name}` });
  app.task('shared.ping', (from: string) => ({ from, requestId: currentTask()?.requestContext?.requestId ?? null }));
  return app;
}

/** The Express side: POST /ping sends shared.ping and answers its result. */
function expressSide(app: Celeriac): { server: Server; web: express.Express } {
  const web = express();
  web.use(queuePlugin({ app }));
  web.post('/ping', async (req, res) => {
    const sent = (await req.tasks.send('shared.ping', ['express'])) as AsyncResult<unknown>;
    res.json(await sent.get({ timeout: 5000 }));
  });
  web.use(celeriacErrorHandler());
  return { server: web.listen(0, '127.0.0.1'), web };
}

@Controller()
class PingController {
  constructor(private readonly tasks: TaskProducer) {}

  @Post('ping')
  async ping(): Promise<unknown> {
    return (await this.tasks.send('shared.ping', ['nest'])).get({ timeout: 5000 });
  }
}

/** The Nest side on the same app (CeleriacModule.forRoot({ app })). */
async function nestSide(app: Celeriac): Promise<INestApplication> {
  @Module({ imports: [CeleriacModule.forRoot({ app })], controllers: [PingController] })
  class SharedModule {}
  const moduleRef = await Test.createTestingModule({ imports: [SharedModule] }).compile();
  const nest = moduleRef.createNestApplication({ logger: false });
  await nest.init();
  return nest;
}

/** Count the app's worker shutdowns (one per stopped worker). */
function countShutdowns(app: Celeriac): { readonly count: number } {
  const seen = { count: 0 };
  app.signals.connect('workerShutdown', () => void seen.count++);
  return seen;
}

describe('Express and Nest on one app share one embedded worker', () => {
  test('Nest closes first: the worker keeps consuming for Express; Express closing last stops it and closes the connections', async () => {
    const app = sharedApp('shared-nest-first');
    const shutdowns = countShutdowns(app);
    const { server, web } = expressSide(app);
    const nest = await nestSide(app);

    expect(await request(web).post('/ping').set('X-Request-Id', 'x-1').expect(200).then((r) => r.body)).toEqual({ from: 'express', requestId: 'x-1' });
    expect(await request(nest.getHttpServer()).post('/ping').set('X-Request-Id', 'n-1').expect(201).then((r) => r.body)).toEqual({ from: 'nest', requestId: 'n-1' });

    const nestWorker = nest.get(CeleriacWorker).worker;
    const probe = (await startEmbeddedWorker(app))!;
    expect(probe.worker).toBe(nestWorker); // one worker for Express, Nest and this probe
    expect(probe.holders).toBe(3);
    expect(await probe.stop()).toBe(false);
    expect(appUsers(app)).toBe(2);

    await nest.close();
    expect(shutdowns.count).toBe(0);
    expect(appUsers(app)).toBe(1);
    // Still consuming, connections still open: Express's request completes.
    expect(await request(web).post('/ping').set('X-Request-Id', 'x-2').expect(200).then((r) => r.body)).toEqual({ from: 'express', requestId: 'x-2' });

    await gracefulShutdown(server, { timeoutMs: 1000 });
    expect(shutdowns.count).toBe(1);
    expect(appUsers(app)).toBe(0);
    const fresh = (await startEmbeddedWorker(app))!;
    expect(fresh.worker).not.toBe(nestWorker); // the old one was stopped and forgotten
    await fresh.stop();
    await app.close();
  });

  test('Express closes first: Nest keeps the worker; the Nest app closing last stops it', async () => {
    const app = sharedApp('shared-express-first');
    const shutdowns = countShutdowns(app);
    const nest = await nestSide(app);
    const { server } = expressSide(app);
    // The Express plugin takes its hold when it binds; make sure it got it before closing.
    await request(server).post('/ping').expect(200);
    const worker = nest.get(CeleriacWorker).worker!;

    await gracefulShutdown(server, { timeoutMs: 1000 });
    expect(shutdowns.count).toBe(0);
    expect(appUsers(app)).toBe(1);
    expect(await request(nest.getHttpServer()).post('/ping').set('X-Request-Id', 'n-2').expect(201).then((r) => r.body)).toEqual({ from: 'nest', requestId: 'n-2' });
    const processed = worker.stats.processed;
    expect(processed).toBeGreaterThanOrEqual(2);

    await nest.close();
    expect(shutdowns.count).toBe(1);
    expect(appUsers(app)).toBe(0);
  });
});
