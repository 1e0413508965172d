/**
 * The OpenTelemetry SDK for real (@opentelemetry/sdk-trace's TracerProvider, the
 * AsyncLocalStorage context manager, the W3C propagator), with a server span per
 * request started the way the HTTP instrumentation does it (extract the incoming
 * `traceparent`, make the span active around the handler). The adapters inject the
 * ACTIVE context into the task's headers, so the task's own span is a child of the
 * request's server span, in the client's trace — not a sibling hanging off the
 * client's `traceparent`. Express and Fastify, memory:// with the embedded worker.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { context, propagation, ROOT_CONTEXT, SpanKind, trace, type Context, type Span } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import { W3CTraceContextPropagator } from '@opentelemetry/core';
import { InMemorySpanExporter, SimpleSpanProcessor, TracerProvider, type ReadableSpan } from '@opentelemetry/sdk-trace';
import express from 'express';
import Fastify from 'fastify';
import request from 'supertest';
import { Celeriac, currentTask } from '@celeriac/core';
import { celeriacPlugin } from '../packages/fastify/src/index.ts';
import { celeriacErrorHandler, gracefulShutdown, queuePlugin } from '../packages/express/src/index.ts';

const CLIENT_TRACE = '0af7651916cd43dd8448eb211c80319c';
const CLIENT_SPAN = 'b7ad6b7169203331';
const CLIENT_TRACEPARENT = `00-${CLIENT_TRACE}-${CLIENT_SPAN}-01`;

const exporter = new InMemorySpanExporter();
const provider = new TracerProvider({ spanProcessors: [new SimpleSpanProcessor({ exporter })] });
const contextManager = new AsyncLocalStorageContextManager();
const tracer = provider.getTracer('celeriac-web-otel-test');

before(() => {
  context.setGlobalContextManager(contextManager.enable());
  propagation.setGlobalPropagator(new W3CTraceContextPropagator());
  trace.setGlobalTracerProvider(provider);
});
after(async () => {
  await provider.shutdown();
  trace.disable();
  propagation.disable();
  context.disable();
});

/** A server span for an incoming request, its parent extracted from the request headers. */
function serverSpan(name: string, headers: Record<string, unknown>): { span: Span; active: Context } {
  const parent = propagation.extract(ROOT_CONTEXT, headers);
  const span = tracer.startSpan(name, { kind: SpanKind.SERVER }, parent);
  return { span, active: trace.setSpan(parent, span) };
}

/** An app whose task records the traceparent it got and runs inside its own span, child of that parent. */
function tracedApp(name: string): Celeriac {
  const app = new Celeriac(name, { brokerUrl: `memory://${name}` });
  app.task('otel.work', () => {
    const traceparent = currentTask()?.requestContext?.traceparent ?? null;
    const parent = propagation.extract(ROOT_CONTEXT, traceparent ? { traceparent } : {});
    tracer.startSpan('otel.work run', { kind: SpanKind.CONSUMER }, parent).end();
    return { traceparent };
  });
  return app;
}

/** The spans of the last request: its server span and the task's span. */
function spansOf(serverName: string): { server: ReadableSpan; task: ReadableSpan } {
  const spans = exporter.getFinishedSpans();
  const server = spans.find((s) => s.name === serverName);
  const task = spans.find((s) => s.name === 'otel.work run');
  assert.ok(server && task, `both spans exported: ${spans.map((s) => s.name).join(', ')}`);
  return { server, task };
}

/** What every adapter must produce: the task's span is a child of the server span, in the client's trace. */
function assertTaskUnderServerSpan(serverName: string, seenTraceparent: string): void {
  const { server, task } = spansOf(serverName);
  const serverContext = server.spanContext();
  assert.equal(serverContext.traceId, CLIENT_TRACE, "the server span continues the client's trace");
  assert.equal(server.parentSpanContext?.spanId, CLIENT_SPAN);
  assert.equal(seenTraceparent, `00-${CLIENT_TRACE}-${serverContext.spanId}-01`, 'the task got the server span as its parent, not the incoming traceparent');
  assert.notEqual(serverContext.spanId, CLIENT_SPAN);
  assert.equal(task.spanContext().traceId, CLIENT_TRACE);
  assert.equal(task.parentSpanContext?.spanId, serverContext.spanId, "the task's span is a child of the server span");
}

describe('OpenTelemetry SDK: the task is a child of the request server span', () => {
  test('Express: a server-span middleware, then queuePlugin; req.tasks injects the active span', async () => {
    exporter.reset();
    const app = tracedApp('otel-express');
    const web = express();
    web.use((req, res, next) => {
      const { span, active } = serverSpan('POST /work (express)', req.headers);
      res.on('finish', () => span.end());
      context.with(active, next);
    });
    web.use(queuePlugin({ app }));
    web.post('/work', async (req, res) => {
      const sent = await req.tasks.send('otel.work');
      res.json(await sent.get({ timeout: 5000 }));
    });
    web.use(celeriacErrorHandler());
    const server = web.listen(0, '127.0.0.1');
    try {
      const res = await request(server).post('/work').set('traceparent', CLIENT_TRACEPARENT).set('X-Request-Id', 'otel-x').expect(200);
      assertTaskUnderServerSpan('POST /work (express)', (res.body as { traceparent: string }).traceparent);
    } finally {
      await gracefulShutdown(server, { timeoutMs: 1000 });
    }
  });

  test('Fastify: an onRequest hook makes the server span active; request.tasks injects it', async () => {
    exporter.reset();
    const app = tracedApp('otel-fastify');
    const fastify = Fastify();
    const spans = new WeakMap<object, Span>();
    fastify.addHook('onRequest', (req, _reply, done) => {
      const { span, active } = serverSpan('POST /work (fastify)', req.headers);
      spans.set(req, span);
      context.with(active, done);
    });
    fastify.addHook('onResponse', (req, _reply, done) => {
      spans.get(req)?.end();
      done();
    });
    await fastify.register(celeriacPlugin, { app });
    fastify.post('/work', async (req) => (await req.tasks.send('otel.work')).get({ timeout: 5000 }));
    try {
      const res = await fastify.inject({ method: 'POST', url: '/work', headers: { traceparent: CLIENT_TRACEPARENT } });
      assert.equal(res.statusCode, 200, res.body);
      assertTaskUnderServerSpan('POST /work (fastify)', res.json<{ traceparent: string }>().traceparent);
    } finally {
      await fastify.close();
    }
  });
});
