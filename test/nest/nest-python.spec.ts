/**
 * A Nest route sends a task only Python defines, by name (TaskProducer.send), to a
 * real Python Celery 5.2 worker on Redis; the request id and trace context of the
 * HTTP request reach the Python task as headers.
 */
import 'reflect-metadata';
import type { INestApplication } from '@nestjs/common';
import { Test } from '@nestjs/testing';
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { interopEnv, pythonCeleryMissing, startPythonWorker, type PeerProcess } from '../helpers/python-celery.js';
import { missing, REDIS_SERVER, startRedis, type RedisServer } from '../helpers/services.js';
import { AppModule } from './fixtures/app.module.js';

const skip = missing(REDIS_SERVER, 'apt-get install redis-server') ?? pythonCeleryMissing();

describe.skipIf(skip !== null)('Nest → Python Celery 5.2 worker', () => {
  let redis: RedisServer;
  let python: PeerProcess;
  let api: INestApplication;

  beforeAll(async () => {
    redis = await startRedis();
    const env = interopEnv(redis);
    python = await startPythonWorker({ env });
    const moduleRef = await Test.createTestingModule({
      imports: [AppModule.register({ name: 'nest-python', config: { CELERY_BROKER_URL: env.INTEROP_BROKER_URL, CELERY_RESULT_BACKEND: env.INTEROP_BACKEND_URL }, worker: false })],
    }).compile();
    api = moduleRef.createNestApplication({ logger: false });
    await api.init();
  });

  afterAll(async () => {
    await api?.close();
    await python?.stop();
    await redis?.stop();
  });

  test('a route sends a Python-only task by name and reads its result', async () => {
    const sent = await request(api.getHttpServer()).post('/send/tasks.mul').send({ args: [6, 7] }).expect(201);
    const res = await request(api.getHttpServer()).get(`/results/${sent.body.id}`).expect(200);
    expect(res.body).toEqual({ state: 'SUCCESS', result: 42 });
  });

  test("the Python task sees the HTTP request's id and traceparent", async () => {
    const traceparent = '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01';
    const sent = await request(api.getHttpServer()).post('/send/web.request_context').set('X-Request-Id', 'py-req-7').set('traceparent', traceparent).send({}).expect(201);
    const res = await request(api.getHttpServer()).get(`/results/${sent.body.id}`).expect(200);
    expect(res.body.result).toEqual({ request_id: 'py-req-7', traceparent });
  });
});
