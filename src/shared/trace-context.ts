import type { SpanContext } from "@opentelemetry/api";
import { randomHex } from "./random-hex.js";

export const TRACEPARENT_HEADER = "traceparent";
export const TRACESTATE_HEADER = "tracestate";

/** A W3C Trace Context position: which trace, and which span in it. */
export interface TraceContext {
  readonly traceId: string;
  readonly spanId: string;
  readonly flags: string;
  /** `tracestate` to pass on with it, when the trace has one (W3C: vendors' entries travel with the trace). */
  readonly state?: string | undefined;
}

// version 00: 00-<32 hex trace id>-<16 hex parent id>-<2 hex flags>; all-zero ids are invalid.
const TRACEPARENT = /^00-(?!0{32})([0-9a-f]{32})-(?!0{16})([0-9a-f]{16})-([0-9a-f]{2})$/;

/**
 * The trace this request belongs to when tracing is off: the caller's, when
 * its `traceparent` is valid (W3C Trace Context level 1), else a new one;
 * always with a new span id for this hop, so that the trace id in every log
 * line is shared by every process the request crosses. With tracing on, the
 * server span gives the position instead (observe-calls.ts), and the
 * OpenTelemetry SDK reads the header.
 */
export function continueTrace(traceparent: string | null): TraceContext {
  const match = traceparent === null ? null : TRACEPARENT.exec(traceparent.trim());
  return {
    traceId: match?.[1] ?? randomHex(16),
    spanId: randomHex(8),
    flags: match?.[3] ?? "01",
  };
}

/** The position of an OpenTelemetry span. */
export function traceContextOf(span: SpanContext): TraceContext {
  const state = span.traceState?.serialize();
  return {
    traceId: span.traceId,
    spanId: span.spanId,
    flags: span.traceFlags === 1 ? "01" : span.traceFlags.toString(16).padStart(2, "0"),
    ...(state === undefined || state === "" ? {} : { state }),
  };
}

/** Whether the trace is sampled (its flags' lowest bit): only sampled traces are recorded, and linked from metrics. */
export function isSampled(trace: TraceContext): boolean {
  return trace.flags === "01" || (Number.parseInt(trace.flags, 16) & 1) === 1;
}

/** The `traceparent` to send on a call made from within `trace`. */
export function traceparentOf(trace: TraceContext): string {
  return `00-${trace.traceId}-${trace.spanId}-${trace.flags}`;
}
