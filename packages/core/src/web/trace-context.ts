/**
 * W3C trace context for a task message: from the active OpenTelemetry context
 * when `@opentelemetry/api` is installed (an optional peer dependency, loaded on
 * first use), so the task becomes a child of the server span; else copied from
 * the request's own `traceparent` / `tracestate`.
 */

/** The parts of `@opentelemetry/api` used here. */
interface OtelApi {
  context: { active(): unknown };
  propagation: { inject(context: unknown, carrier: Record<string, string>): void };
  trace: { getSpanContext(context: unknown): { traceId: string; spanId: string; traceFlags: number; traceState?: { serialize(): string } } | undefined; isSpanContextValid(sc: unknown): boolean };
}

let otel: Promise<OtelApi | null> | undefined;

/** `@opentelemetry/api`, or null when it is not installed. Loaded once. */
function loadOtel(): Promise<OtelApi | null> {
  return (otel ??= import('@opentelemetry/api' as string).then(
    (mod: { default?: OtelApi } & Partial<OtelApi>) => (mod.trace ? (mod as OtelApi) : (mod.default ?? null)),
    () => null,
  ));
}

/** Trace headers to send with a task. */
export interface TraceHeaders {
  traceparent?: string;
  tracestate?: string;
}

/**
 * The trace headers of the active OpenTelemetry context (through the registered
 * propagator, or formatted from the active span when no propagator is set up),
 * or `fallback` when there is no active, valid span.
 */
export async function activeTraceHeaders(fallback: TraceHeaders): Promise<TraceHeaders> {
  const api = await loadOtel();
  if (api) {
    const active = api.context.active();
    const carrier: Record<string, string> = {};
    api.propagation.inject(active, carrier);
    if (carrier.traceparent) return { traceparent: carrier.traceparent, tracestate: carrier.tracestate };
    const sc = api.trace.getSpanContext(active);
    if (sc && api.trace.isSpanContextValid(sc)) {
      const flags = (sc.traceFlags & 0xff).toString(16).padStart(2, '0');
      const tracestate = sc.traceState?.serialize() || undefined;
      return { traceparent: `00-${sc.traceId}-${sc.spanId}-${flags}`, tracestate };
    }
  }
  return fallback;
}
