/** @celeriac/nest's CommonJS build on NestJS 11 (Jest + ts-jest). */
import 'reflect-metadata';
import { createServer } from 'node:net';
import { MisplacedTaskDecoratorError, CeleriacModule } from '@celeriac/nest';
import { Module, VERSION_NEUTRAL, type INestApplication } from '@nestjs/common';
import { Test } from '@nestjs/testing';
import request from 'supertest';
import { AppModule, MisplacedService } from './tasks';

let app: INestApplication | undefined;
afterEach(async () => {
  await app?.close();
  app = undefined;
});

async function start(options: Parameters<typeof AppModule.register>[0]) {
  const moduleRef = await Test.createTestingModule({ imports: [AppModule.register(options)] }).compile();
  app = moduleRef.createNestApplication({ logger: false });
  await app.init();
  return app;
}

test('runs on NestJS 11 from the CommonJS build', () => {
  const nestVersion = require('@nestjs/core/package.json').version as string;
  expect(nestVersion).toMatch(/^11\./);
  expect(require.resolve('@celeriac/nest')).toMatch(/packages\/nest\/dist\/cjs\/index\.js$/);
  expect(VERSION_NEUTRAL).toBeDefined();
});

test('request → task → in-process worker (memory://) → result, on the DI-built provider, with the request id', async () => {
  const server = await start({ name: 'cjs-memory' });
  const sent = await request(server.getHttpServer()).post('/mul').set('X-Request-Id', 'cjs-req-1').send({ x: 3, y: 4 }).expect(201);
  const res = await request(server.getHttpServer()).get(`/results/${sent.body.id}`).expect(200);
  expect(res.body.result).toEqual({ product: 12, calls: 1, requestId: 'cjs-req-1' });
});

test('a request-scoped provider gets the task run as TASK_REF', async () => {
  const server = await start({ name: 'cjs-scoped' });
  const sent = await request(server.getHttpServer()).post('/scoped').expect(201);
  const res = await request(server.getHttpServer()).get(`/results/${sent.body.id}`).expect(200);
  expect(res.body.result).toBe(sent.body.id);
});

test('a misplaced @Task() fails start-up with the named error', async () => {
  @Module({ imports: [CeleriacModule.forRoot({ name: 'cjs-misplaced', worker: false })], providers: [MisplacedService] })
  class Misplaced {}
  const moduleRef = await Test.createTestingModule({ imports: [Misplaced] }).compile();
  const created = moduleRef.createNestApplication({ logger: false });
  const failure = await created.init().then(() => null, (err: unknown) => err);
  await created.close().catch(() => undefined);
  expect(failure).toBeInstanceOf(MisplacedTaskDecoratorError);
  expect((failure as Error).message).toMatch(/MisplacedService\.run is not the outermost decorator/);
});

test('broker down: 503 with a JSON body', async () => {
  const port = await new Promise<number>((resolve) => {
    const srv = createServer().listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as { port: number };
      srv.close(() => resolve(port));
    });
  });
  const retry = { maxRetries: 1, intervalStart: 0, intervalStep: 0.1, intervalMax: 0.1 };
  const server = await start({ name: 'cjs-down', worker: false, config: { brokerUrl: `redis://127.0.0.1:${port}/0`, resultBackend: `redis://127.0.0.1:${port}/1`, taskPublishRetryPolicy: retry } });
  const res = await request(server.getHttpServer()).post('/mul').send({ x: 1, y: 1 }).expect(503);
  expect(res.body).toMatchObject({ statusCode: 503, code: 'CELERIAC_BROKER_UNAVAILABLE' });
});
