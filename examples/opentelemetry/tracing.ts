/**
 * OpenTelemetry tracing for Celeriac tasks, built from Celeriac's signals and the
 * W3C `traceparent` message header: one trace runs from the web request to the
 * task and on to the tasks it sends (docs/opentelemetry.md).
 *
 * Needs `@opentelemetry/api` and an SDK the application sets up (NodeSDK, or a
 * NodeTracerProvider with the W3C trace-context propagator and the
 * AsyncLocalStorage context manager); without one every call here is a no-op.
 * Python Celery reads and writes the same header, so a trace also crosses into
 * and out of Python workers instrumented with opentelemetry-instrumentation-celery.
 */
import { context, propagation, SpanKind, SpanStatusCode, trace, type Span, type Tracer } from '@opentelemetry/api';
import { currentTask, type Celeriac } from '@celeriac/core';

/**
 * Trace `app`'s tasks: every message sent carries the active span's context (the
 * web request's, or the running task's span when a task sends it); every run is a
 * CONSUMER span, child of the sender's, ended with the task's state. Returns a
 * function that removes the hooks.
 */
export function traceTasks(app: Celeriac, tracer: Tracer = trace.getTracer('celeriac')): () => void {
  /** Spans of the runs in progress in this process, by task id. */
  const running = new Map<string, Span>();
  const hooks = [
    app.signals.connect('beforeTaskPublish', ({ headers }) => {
      const task = currentTask();
      const span = task ? running.get(task.id) : undefined;
      // Writes traceparent (and tracestate) when there is a span; otherwise leaves the headers as they are.
      propagation.inject(span ? trace.setSpan(context.active(), span) : context.active(), headers);
    }),
    app.signals.connect('taskPrerun', ({ task }) => {
      const parent = propagation.extract(context.active(), task.headers);
      const span = tracer.startSpan(
        `${task.name} process`,
        { kind: SpanKind.CONSUMER, attributes: { 'messaging.system': 'celery', 'messaging.message.id': task.id, 'celery.task_name': task.name } },
        parent,
      );
      running.set(task.id, span);
    }),
    app.signals.connect('taskFailure', ({ taskId, exception }) => {
      running.get(taskId)?.recordException(exception instanceof Error ? exception : String(exception));
    }),
    app.signals.connect('taskPostrun', ({ taskId, state }) => {
      const span = running.get(taskId);
      if (!span) return;
      running.delete(taskId);
      span.setAttribute('celery.state', state);
      if (state === 'FAILURE') span.setStatus({ code: SpanStatusCode.ERROR });
      span.end();
    }),
  ];
  return () => hooks.forEach((off) => off());
}
