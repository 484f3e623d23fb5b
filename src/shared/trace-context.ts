import { randomHex } from "./random-hex.js";

export const TRACEPARENT_HEADER = "traceparent";

/** A W3C Trace Context position: which trace, and which span in it. */
export interface TraceContext {
  readonly traceId: string;
  readonly spanId: string;
  readonly flags: string;
}

// version 00: 00-<32 hex trace id>-<16 hex parent id>-<2 hex flags>; all-zero ids are invalid.
const TRACEPARENT = /^00-(?!0{32})([0-9a-f]{32})-(?!0{16})([0-9a-f]{16})-([0-9a-f]{2})$/;

/**
 * The trace this request belongs to: the caller's, when its `traceparent` is
 * valid (W3C Trace Context level 1), else a new one; always with a new span for
 * this hop. A few lines of the spec instead of the OpenTelemetry SDK, which
 * would bring a whole tracing pipeline to read one header.
 */
export function continueTrace(traceparent: string | null): TraceContext {
  const match = traceparent === null ? null : TRACEPARENT.exec(traceparent.trim());
  return {
    traceId: match?.[1] ?? randomHex(16),
    spanId: randomHex(8),
    flags: match?.[3] ?? "01",
  };
}

/** The `traceparent` to send on a call made from within `trace`. */
export function traceparentOf(trace: TraceContext): string {
  return `00-${trace.traceId}-${trace.spanId}-${trace.flags}`;
}
