/**
 * @celeriac/nest on a real Redis with a separate worker process: the web app
 * (worker: false) sends, a Nest application context (`worker-main.ts`, compiled
 * with tsc) consumes. Also: HTTP 503 with JSON when the broker is down.
 */
import 'reflect-metadata';
import type { INestApplication } from '@nestjs/common';
import { Test } from '@nestjs/testing';
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { CeleriacWorker } from '@celeriac/nest';
import { freePort, missing, REDIS_SERVER, startRedis, type RedisServer } from '../helpers/services.js';
import { AppModule } from './fixtures/app.module.js';
import { compileFixtures, startChild, type Child } from './helpers.js';

const skip = missing(REDIS_SERVER, 'apt-get install redis-server');

describe.skipIf(skip !== null)('CeleriacModule on Redis with a separate Nest worker process', () => {
  let redis: RedisServer;
  let worker: Child;
  let api: INestApplication;

  beforeAll(async () => {
    redis = await startRedis();
    const out = compileFixtures();
    worker = startChild(process.execPath, [`${out}/worker-main.js`], { env: { CELERY_BROKER_URL: redis.url(0), CELERY_RESULT_BACKEND: redis.url(1) } });
    await worker.waitFor(/nest worker ready/);
    const moduleRef = await Test.createTestingModule({
      imports: [AppModule.register({ name: 'nest-redis-api', config: { celeriac: { broker_url: redis.url(0), result_backend: redis.url(1) } }, worker: false })],
    }).compile();
    api = moduleRef.createNestApplication({ logger: false });
    await api.init();
  });

  afterAll(async () => {
    await api?.close();
    const stopping = Date.now();
    const exit = await worker?.stop();
    const stopMs = Date.now() - stopping;
    await redis?.stop();
    // enableShutdownHooks(): SIGTERM runs the hooks (drain, close), then Nest re-raises SIGTERM. SIGKILL would mean it hung.
    expect(exit, worker?.output()).toEqual({ code: null, signal: 'SIGTERM' });
    console.log(`nest worker process stopped in ${stopMs} ms`);
  });

  test('the web process does not consume; the worker process runs the task on its own DI-built provider', async () => {
    expect(api.get(CeleriacWorker).worker).toBeNull();
    const sent = await request(api.getHttpServer()).post('/mul').send({ x: 7, y: 8 }).set('X-Request-Id', 'redis-req-1').expect(201);
    const res = await request(api.getHttpServer()).get(`/results/${sent.body.id}`).expect(200);
    expect(res.body.state).toBe('SUCCESS');
    expect(res.body.result.product).toBe(56);
    // The worker's AuditService (its label carries the worker's pid), not the API's.
    expect(res.body.result.audit).toBe(`audit-${worker.child.pid}`);
  });

  test('request id and trace context travel through Redis into the worker', async () => {
    const traceparent = '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01';
    const sent = await request(api.getHttpServer()).post('/whoami').set('X-Request-Id', 'redis-req-2').set('traceparent', traceparent).expect(201);
    const res = await request(api.getHttpServer()).get(`/results/${sent.body.id}`).expect(200);
    expect(res.body.result).toEqual({ requestId: 'redis-req-2', traceparent, taskId: sent.body.id });
  });

  test('a request-scoped provider in the worker process gets the run as TASK_REF', async () => {
    const sent = await request(api.getHttpServer()).post('/reports').send({ title: 'q3' }).expect(201);
    const res = await request(api.getHttpServer()).get(`/results/${sent.body.id}`).expect(200);
    expect(res.body.result).toMatchObject({ title: 'q3', injectedTaskId: sent.body.id, audit: `audit-${worker.child.pid}` });
  });
});

describe.skipIf(skip !== null)('broker down', () => {
  test('a route that sends answers 503 with a JSON body, quickly (the publish retry policy, not a hang)', async () => {
    const port = await freePort(); // nothing listens there
    const moduleRef = await Test.createTestingModule({
      imports: [
        AppModule.register({
          name: 'nest-down',
          config: { brokerUrl: `redis://127.0.0.1:${port}/0`, resultBackend: `redis://127.0.0.1:${port}/1`, taskPublishRetryPolicy: { maxRetries: 1, intervalStart: 0, intervalStep: 0.1, intervalMax: 0.1 } },
          worker: false,
        }),
      ],
    }).compile();
    const app = moduleRef.createNestApplication({ logger: false });
    await app.init();
    try {
      const res = await request(app.getHttpServer()).post('/mul').send({ x: 1, y: 2 }).expect(503);
      expect(res.headers['content-type']).toMatch(/application\/json/);
      expect(res.body).toMatchObject({ statusCode: 503, code: 'CELERIAC_BROKER_UNAVAILABLE', error: 'Service Unavailable' });
    } finally {
      await app.close();
    }
  });
});
