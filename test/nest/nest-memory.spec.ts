/**
 * @celeriac/nest on memory:// (the embedded default): the in-process worker runs
 * what the routes send. Nest 12, ESM, platform-express, supertest.
 */
import 'reflect-metadata';
import type { INestApplication } from '@nestjs/common';
import { Test } from '@nestjs/testing';
import request from 'supertest';
import { afterEach, describe, expect, test } from 'vitest';
import { CeleriacWorker, MisplacedTaskDecoratorError, TaskExplorer, TaskProducer, getTasksToken } from '@celeriac/nest';
import { AppModule } from './fixtures/app.module.js';
import { AuditService } from './fixtures/audit.service.js';
import { MathService } from './fixtures/math.service.js';
import { MisplacedService, WellPlacedService } from './fixtures/misplaced.service.js';
import { CeleriacModule } from '@celeriac/nest';
import { Module } from '@nestjs/common';

let app: INestApplication | undefined;

afterEach(async () => {
  await app?.close();
  app = undefined;
});

async function start(options: Parameters<typeof AppModule.register>[0] = {}): Promise<INestApplication> {
  const moduleRef = await Test.createTestingModule({ imports: [AppModule.register({ name: 'nest-memory', ...options })] }).compile();
  app = moduleRef.createNestApplication({ logger: false });
  await app.init();
  return app;
}

async function resultOf(server: INestApplication, id: string) {
  const res = await request(server.getHttpServer()).get(`/results/${id}`).expect(200);
  return res.body as { state: string; result: Record<string, unknown> };
}

describe('CeleriacModule on memory://', () => {
  test('request → task → in-process worker → result, on the DI-built provider with its injected dependency', async () => {
    const server = await start();
    const sent = await request(server.getHttpServer()).post('/mul').send({ x: 6, y: 7 }).expect(201);
    expect(sent.body.id).toMatch(/^[0-9a-f-]{36}$/);
    const { state, result } = await resultOf(server, sent.body.id);
    expect(state).toBe('SUCCESS');
    const audit = server.get(AuditService);
    expect(result).toEqual({ product: 42, audit: audit.label, calls: 1 });
    expect(audit.entries).toEqual(['mul 6 7']);
    expect(server.get(TaskExplorer).tasks.get('nest.math.mul')).toBe('MathService.mul');
  });

  test('the request id and trace context of the HTTP request arrive in the task', async () => {
    const server = await start();
    const traceparent = '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01';
    const sent = await request(server.getHttpServer()).post('/whoami').set('X-Request-Id', 'req-nest-42').set('traceparent', traceparent).expect(201);
    const { result } = await resultOf(server, sent.body.id);
    expect(result).toEqual({ requestId: 'req-nest-42', traceparent, taskId: sent.body.id });
  });

  test('without an X-Request-Id header the task still gets a request id (a new UUID)', async () => {
    const server = await start();
    const sent = await request(server.getHttpServer()).post('/whoami').expect(201);
    const { result } = await resultOf(server, sent.body.id);
    expect(result.requestId).toMatch(/^[0-9a-f-]{36}$/);
    expect(result.traceparent).toBeNull();
  });

  test('a request-scoped provider is built per task run, with the run context as TASK_REF and singletons injected', async () => {
    const server = await start();
    const [a, b] = await Promise.all(['one', 'two'].map((title) => request(server.getHttpServer()).post('/reports').send({ title }).expect(201)));
    const ra = (await resultOf(server, a!.body.id)).result;
    const rb = (await resultOf(server, b!.body.id)).result;
    expect(ra.title).toBe('one');
    expect(ra.injectedTaskId).toBe(a!.body.id);
    expect(rb.injectedTaskId).toBe(b!.body.id);
    expect(ra.instanceId).not.toBe(rb.instanceId);
    expect(ra.audit).toBe(server.get(AuditService).label);
  });

  test('TaskProducer sends by name (a task only another worker defines) and is one singleton', async () => {
    const server = await start();
    const sent = await request(server.getHttpServer()).post('/send/nest.math.mul').send({ args: [3, 5] }).expect(201);
    expect((await resultOf(server, sent.body.id)).result.product).toBe(15);
    expect(server.get(TaskProducer)).toBe(server.get(TaskProducer));
  });

  test('a handle for a method that is not a @Task() throws a clear error', async () => {
    const server = await start();
    const handles = server.get(getTasksToken(MathService)) as Record<string, unknown>;
    expect(() => handles.describe).toThrow(/MathService\.describe is not a @Task\(\) method/);
    expect(handles.onModuleInit).toBeUndefined();
  });

  test('overrideProvider(TaskProducer) replaces every send, typed handles included', async () => {
    const sent: unknown[] = [];
    const fake = { app: undefined, send: async (name: string, args: unknown[]) => (sent.push([name, args]), { id: 'fake-id' }), applyAsync: async () => ({ id: 'fake' }) };
    const moduleRef = await Test.createTestingModule({ imports: [AppModule.register({ name: 'nest-override', worker: false })] })
      .overrideProvider(TaskProducer)
      .useValue({ ...fake, app: { hasTask: () => false } })
      .compile();
    app = moduleRef.createNestApplication({ logger: false });
    await app.init();
    const res = await request(app.getHttpServer()).post('/mul').send({ x: 2, y: 3 }).expect(201);
    expect(res.body).toEqual({ id: 'fake-id' });
    expect(sent).toEqual([['nest.math.mul', [2, 3]]]);
  });
});

describe('forRootAsync', () => {
  test('options come from an injected config provider (ConfigService-style), and TaskProducer is global', async () => {
    const SETTINGS = Symbol('settings');
    @Module({ providers: [{ provide: SETTINGS, useValue: { celeriac: { broker_url: 'memory://async-test' } } }], exports: [SETTINGS] })
    class SettingsModule {}
    @Module({ providers: [MathService, AuditService] })
    class FeatureModule {}
    @Module({
      imports: [
        CeleriacModule.forRootAsync({ imports: [SettingsModule], inject: [SETTINGS], useFactory: (settings: Record<string, unknown>) => ({ name: 'nest-async', config: settings }) }),
        FeatureModule,
      ],
    })
    class AsyncRoot {}
    const moduleRef = await Test.createTestingModule({ imports: [AsyncRoot] }).compile();
    app = moduleRef.createNestApplication({ logger: false });
    await app.init();
    const producer = app.get(TaskProducer);
    expect(producer.app.settings.brokerUrl).toBe('memory://async-test');
    const r = await producer.tasksOf(MathService).mul.delay(9, 9);
    expect(await r.get({ timeout: 10_000 })).toMatchObject({ product: 81 });
  });
});

describe('lifecycle', () => {
  test('worker: false registers tasks but does not consume', async () => {
    const server = await start({ worker: false });
    const worker = server.get(CeleriacWorker);
    expect(worker.consumes).toBe(false);
    expect(worker.worker).toBeNull();
    expect(server.get(TaskProducer).app.taskNames).toContain('nest.math.mul');
  });

  test('manualRegistration: nothing consumes until the app calls start(); close drains and stops it', async () => {
    const server = await start({ manualRegistration: true });
    const worker = server.get(CeleriacWorker);
    expect(worker.worker).toBeNull();
    const sent = await request(server.getHttpServer()).post('/mul').send({ x: 2, y: 2 }).expect(201);
    const pending = server.get(TaskProducer).result(sent.body.id);
    expect(await pending.state).toBe('PENDING');
    await worker.start();
    expect(worker.worker).not.toBeNull();
    expect(await pending.get({ timeout: 10_000 })).toMatchObject({ product: 4 });
    const core = worker.worker!;
    await server.close();
    app = undefined;
    expect(worker.worker).toBeNull();
    expect(core.stats.succeeded).toBe(1);
  });
});

describe('@Task() must be the outermost decorator', () => {
  test('a decorator above @Task() that replaced the method fails start-up, naming the class, the method and the fix', async () => {
    @Module({ imports: [CeleriacModule.forRoot({ name: 'nest-misplaced', worker: false })], providers: [MisplacedService] })
    class MisplacedModule {}
    const moduleRef = await Test.createTestingModule({ imports: [MisplacedModule] }).compile();
    const created = moduleRef.createNestApplication({ logger: false });
    const failure = await created.init().then(
      () => null,
      (err: unknown) => err,
    );
    await created.close().catch(() => undefined);
    expect(failure).toBeInstanceOf(MisplacedTaskDecoratorError);
    expect((failure as Error).message).toMatch(/@Task\(\) on MisplacedService\.work is not the outermost decorator/);
    expect((failure as Error).message).toMatch(/Move @Task\(\) to the top/);
  });

  test('listed first, the same decorators start fine and the task runs the wrapped method', async () => {
    @Module({ imports: [CeleriacModule.forRoot({ name: 'nest-wellplaced' })], providers: [WellPlacedService] })
    class WellPlacedModule {}
    const moduleRef = await Test.createTestingModule({ imports: [WellPlacedModule] }).compile();
    app = moduleRef.createNestApplication({ logger: false });
    await app.init();
    const producer = app.get(TaskProducer);
    const r = await producer.tasksOf(WellPlacedService).work.delay();
    expect(await r.get({ timeout: 10_000 })).toBe('ran');
  });
});
