/**
 * @celeriac/nest with the OpenTelemetry SDK (@opentelemetry/sdk-trace's
 * TracerProvider, the AsyncLocalStorage context manager, the W3C propagator): a
 * middleware starts the request's server span the way the HTTP instrumentation
 * does (parent extracted from the incoming `traceparent`, span active around the
 * rest of the pipeline). `TaskProducer`, a singleton, injects the ACTIVE context:
 * the task gets the server span as parent, in the client's trace.
 */
import 'reflect-metadata';
import { context, propagation, ROOT_CONTEXT, SpanKind, trace } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import { W3CTraceContextPropagator } from '@opentelemetry/core';
import { InMemorySpanExporter, SimpleSpanProcessor, TracerProvider } from '@opentelemetry/sdk-trace';
import type { INestApplication } from '@nestjs/common';
import { Test } from '@nestjs/testing';
import type { NextFunction, Request, Response } from 'express';
import request from 'supertest';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { AppModule } from './fixtures/app.module.js';

const CLIENT_TRACE = '0af7651916cd43dd8448eb211c80319c';
const CLIENT_SPAN = 'b7ad6b7169203331';
const exporter = new InMemorySpanExporter();
const provider = new TracerProvider({ spanProcessors: [new SimpleSpanProcessor({ exporter })] });
const tracer = provider.getTracer('celeriac-nest-otel-test');
let app: INestApplication | undefined;

beforeAll(() => {
  context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
  propagation.setGlobalPropagator(new W3CTraceContextPropagator());
  trace.setGlobalTracerProvider(provider);
});

afterAll(async () => {
  await app?.close();
  await provider.shutdown();
  trace.disable();
  propagation.disable();
  context.disable();
});

test("Nest on platform-express: the task's traceparent names the request's server span as parent", async () => {
  const moduleRef = await Test.createTestingModule({ imports: [AppModule.register({ name: 'nest-otel' })] }).compile();
  app = moduleRef.createNestApplication({ logger: false });
  app.use((req: Request, res: Response, next: NextFunction) => {
    const parent = propagation.extract(ROOT_CONTEXT, req.headers);
    const span = tracer.startSpan(`${req.method} ${req.path}`, { kind: SpanKind.SERVER }, parent);
    res.on('finish', () => span.end());
    context.with(trace.setSpan(parent, span), next);
  });
  await app.init();
  const server = app.getHttpServer();

  const sent = await request(server).post('/whoami').set('traceparent', `00-${CLIENT_TRACE}-${CLIENT_SPAN}-01`).set('X-Request-Id', 'nest-otel-1').expect(201);
  const { result } = (await request(server).get(`/results/${sent.body.id}`).expect(200)).body as { result: { requestId: string; traceparent: string } };

  const serverSpan = exporter.getFinishedSpans().find((s) => s.name === 'POST /whoami');
  expect(serverSpan, 'the server span was exported').toBeDefined();
  const { traceId, spanId } = serverSpan!.spanContext();
  expect(traceId).toBe(CLIENT_TRACE);
  expect(serverSpan!.parentSpanContext?.spanId).toBe(CLIENT_SPAN);
  expect(result).toMatchObject({ requestId: 'nest-otel-1', traceparent: `00-${CLIENT_TRACE}-${spanId}-01` });
  expect(spanId).not.toBe(CLIENT_SPAN);
});
