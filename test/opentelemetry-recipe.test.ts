/**
 * The OpenTelemetry recipe (examples/opentelemetry/tracing.ts, docs/opentelemetry.md)
 * with a real @opentelemetry/api and a small recording tracer, W3C propagator and
 * AsyncLocalStorage context manager set up here (what an SDK would register): a
 * "web request" span sends a task, the task sends a sub-task; the spans form one
 * trace, each run the child of its sender, and a failing task's span is an error.
 */
import assert from 'node:assert/strict';
import { AsyncLocalStorage } from 'node:async_hooks';
import { randomBytes } from 'node:crypto';
import { after, before, test } from 'node:test';
import {
  context,
  propagation,
  ROOT_CONTEXT,
  SpanStatusCode,
  trace,
  type Context,
  type ContextManager,
  type Span,
  type SpanContext,
  type SpanOptions,
  type SpanStatus,
  type TextMapPropagator,
  type Tracer,
} from '@opentelemetry/api';
import { createApp, Worker } from '@celeriac/core';
import { pino } from 'pino';
import { traceTasks } from '../examples/opentelemetry/tracing.ts';

interface Recorded {
  name: string;
  traceId: string;
  spanId: string;
  parentSpanId: string | undefined;
  status: SpanStatus;
  ended: boolean;
  exceptions: number;
}
const recorded: Recorded[] = [];

/** Records spans; nothing else (a test stand-in for an SDK's tracer). */
function recordingSpan(name: string, parent: SpanContext | undefined): Span {
  const ctx: SpanContext = { traceId: parent?.traceId ?? randomBytes(16).toString('hex'), spanId: randomBytes(8).toString('hex'), traceFlags: 1 };
  const rec: Recorded = { name, traceId: ctx.traceId, spanId: ctx.spanId, parentSpanId: parent?.spanId, status: { code: SpanStatusCode.UNSET }, ended: false, exceptions: 0 };
  recorded.push(rec);
  const span: Span = {
    spanContext: () => ctx,
    setAttribute: () => span,
    setAttributes: () => span,
    addEvent: () => span,
    addLink: () => span,
    addLinks: () => span,
    setStatus: (status) => ((rec.status = status), span),
    updateName: () => span,
    end: () => void (rec.ended = true),
    isRecording: () => !rec.ended,
    recordException: () => void rec.exceptions++,
  };
  return span;
}

const tracer: Tracer = {
  startSpan: (name: string, _options?: SpanOptions, ctx?: Context) => recordingSpan(name, trace.getSpanContext(ctx ?? context.active())),
  startActiveSpan: (() => {
    throw new Error('not used by the recipe');
  }) as Tracer['startActiveSpan'],
};

/** W3C traceparent only. */
const w3c: TextMapPropagator = {
  inject(ctx, carrier, setter) {
    const sc = trace.getSpanContext(ctx);
    if (sc) setter.set(carrier, 'traceparent', `00-${sc.traceId}-${sc.spanId}-0${sc.traceFlags}`);
  },
  extract(ctx, carrier, getter) {
    const m = /^00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$/.exec(String(getter.get(carrier, 'traceparent') ?? ''));
    return m ? trace.setSpanContext(ctx, { traceId: m[1]!, spanId: m[2]!, traceFlags: parseInt(m[3]!, 16), isRemote: true }) : ctx;
  },
  fields: () => ['traceparent'],
};

/** AsyncLocalStorage context manager (what @opentelemetry/context-async-hooks provides). */
const als = new AsyncLocalStorage<Context>();
const contextManager: ContextManager = {
  active: () => als.getStore() ?? ROOT_CONTEXT,
  with: (ctx, fn, thisArg, ...args) => als.run(ctx, () => fn.call(thisArg, ...args)),
  bind: (_ctx, target) => target,
  enable: () => contextManager,
  disable: () => contextManager,
};

const app = createApp('otel-recipe', { brokerUrl: 'memory://otel-recipe' });
const child = app.task('otel.child', (x: number) => x * 2);
app.task('otel.parent', async (x: number) => {
  const r = await child.delay(x);
  return r.get({ timeout: 10_000 });
});
app.task('otel.fails', () => {
  throw new TypeError('expected');
});
let worker: Worker;

/** taskPostrun (which ends the span) runs after the result is stored: wait for it. */
async function ended(name: string): Promise<Recorded> {
  const deadline = Date.now() + 10_000;
  for (;;) {
    const span = recorded.find((s) => s.name === name);
    if (span?.ended) return span;
    if (Date.now() > deadline) throw new Error(`span ${name} not ended: ${JSON.stringify(recorded)}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}
let untrace: () => void;

before(async () => {
  context.setGlobalContextManager(contextManager);
  propagation.setGlobalPropagator(w3c);
  untrace = traceTasks(app, tracer);
  worker = new Worker(app, { concurrency: 4, logger: pino({ level: 'silent' }) });
  await worker.start();
});
after(async () => {
  untrace();
  await worker.stop();
  await app.close();
  context.disable();
  propagation.disable();
});

test('web request → task → sub-task: one trace, each run the child of the span that sent it', async () => {
  const web = recordingSpan('POST /orders', undefined);
  const result = await context.with(trace.setSpan(ROOT_CONTEXT, web), () => app.sendTask<number>('otel.parent', [21]));
  assert.equal(await result.get({ timeout: 10_000 }), 42);
  await ended('otel.parent process');
  const byName = (name: string) => {
    const found = recorded.filter((s) => s.name === name);
    assert.equal(found.length, 1, `one span ${name}: ${JSON.stringify(recorded)}`);
    return found[0]!;
  };
  const parentRun = byName('otel.parent process');
  const childRun = byName('otel.child process');
  const request = byName('POST /orders');
  assert.equal(parentRun.traceId, request.traceId);
  assert.equal(parentRun.parentSpanId, request.spanId, 'the task run is a child of the web span');
  assert.equal(childRun.traceId, request.traceId);
  assert.equal(childRun.parentSpanId, parentRun.spanId, "the sub-task run is a child of the task's run");
  assert.ok(childRun.ended);
});

test('a failing task: its span records the exception and ends with status ERROR', async () => {
  const r = await app.sendTask('otel.fails');
  await assert.rejects(r.get({ timeout: 10_000 }), /expected/);
  const span = await ended('otel.fails process');
  assert.equal(span.status.code, SpanStatusCode.ERROR);
  assert.equal(span.exceptions, 1);
});
