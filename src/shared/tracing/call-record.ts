import { Code, ConnectError } from "@connectrpc/connect";
import {
  type Attributes,
  type Context,
  context,
  createContextKey,
  type Span,
  type SpanKind,
  type Tracer,
} from "@opentelemetry/api";
import { reasonOf } from "../errors/public-error.js";
import type { CallOutcome } from "../metrics/rpc-metrics.js";
import type { TraceContext } from "../trace-context.js";

/** The RPC system of a call, in OpenTelemetry's words: gRPC and gRPC-Web are `grpc`, Connect is `connect_rpc`. */
export type RpcSystem = "grpc" | "connect_rpc";

/** What the server knows of a call when its first bytes arrive. */
export interface CallStart {
  /** Fully qualified service, e.g. bazbii.post.v1.UserPostService. */
  readonly service: string;
  /** Method name, e.g. Get. */
  readonly method: string;
  /** The wire protocol: `connect`, `grpc` or `grpc-web`. */
  readonly protocol: string;
  readonly system: RpcSystem;
  readonly requestId: string;
  readonly clientAddress: string;
  /** This hop's place in the trace: the server span's, or one made by hand when tracing is off. */
  readonly trace: TraceContext;
  /** The server span and the tracer of its process, when tracing is on. */
  readonly span: Span | undefined;
  readonly tracer: Tracer | undefined;
  readonly startedAt: number;
  /** 0 on the gateway, whose calls go upstream; undefined on the API server. */
  readonly attempts: number | undefined;
}

/**
 * One RPC as the process serving it sees it, from its first byte to its last
 * (observe-calls.ts opens it and closes it): the facts the access log and the
 * server span report, set by whoever learns them. It lives in the call's
 * async context, so that code far from the request (a storage query, an event
 * publish, a metric's exemplar) finds the call it works for.
 */
export class CallRecord implements CallStart {
  readonly service: string;
  readonly method: string;
  readonly protocol: string;
  readonly system: RpcSystem;
  readonly requestId: string;
  readonly clientAddress: string;
  readonly trace: TraceContext;
  readonly span: Span | undefined;
  readonly tracer: Tracer | undefined;
  readonly startedAt: number;
  /** Who acted, once the call's actor is known (the request context's). */
  actorId: string | undefined;
  /** Attempts the gateway made upstream, and the endpoint of the last one; undefined on the API server. */
  attempts: number | undefined;
  endpoint: string | undefined;
  /** Body bytes, as read and written (counted only when the access log is on). */
  requestBytes = 0;
  responseBytes = 0;
  #outcome: CallOutcome | undefined;
  #answered: CallOutcome | undefined;

  constructor(start: CallStart) {
    this.service = start.service;
    this.method = start.method;
    this.protocol = start.protocol;
    this.system = start.system;
    this.requestId = start.requestId;
    this.clientAddress = start.clientAddress;
    this.trace = start.trace;
    this.span = start.span;
    this.tracer = start.tracer;
    this.startedAt = start.startedAt;
    this.attempts = start.attempts;
  }

  /** Fully qualified method, as logs name it. */
  get rpcMethod(): string {
    return `${this.service}/${this.method}`;
  }

  /** The gateway sent the call to `endpoint` (host:port), once more. */
  attempted(endpoint: string): void {
    this.attempts = (this.attempts ?? 0) + 1;
    this.endpoint = endpoint;
  }

  /**
   * The call's outcome, as its metrics record it (RpcMetrics): the first one
   * reported is the one its caller was answered with.
   */
  settle(outcome: CallOutcome): void {
    this.#outcome ??= outcome;
  }

  /**
   * The error connect-es answered the call with (its handler context's abort),
   * for the few calls no metric records: a body connect-es could not decode
   * never reaches the handlers. Errors that are not RPC errors (a write to a
   * caller that left) say nothing of the answer and are ignored.
   */
  answered(reason: unknown): void {
    if (this.#answered !== undefined) return;
    if (reason === undefined) this.#answered = { code: "ok", errorType: "" };
    else if (reason instanceof ConnectError) this.#answered = { code: reason.code, errorType: reasonOf(reason) ?? "" };
  }

  /** How the call ended; `finished`: whether its whole answer was written (else its caller left first). */
  outcome(finished: boolean): CallOutcome {
    return this.#outcome ?? this.#answered ?? { code: finished ? Code.Unknown : Code.Canceled, errorType: "" };
  }
}

const CALL = createContextKey("bazbii call");

/** The call the running code works for, if any. */
export function activeCall(): CallRecord | undefined {
  return context.active().getValue(CALL) as CallRecord | undefined;
}

/** `parent` with `call` as the active call. */
export function withCall(parent: Context, call: CallRecord): Context {
  return parent.setValue(CALL, call);
}

/** What a child span is: its name, kind and attributes. */
export interface SpanDescription {
  readonly name: string;
  readonly kind: SpanKind;
  readonly attributes: Attributes;
}

/**
 * A span for work done for the active call (a storage query, an event
 * publish), as its child; none when the call is not traced or not sampled,
 * so that work outside calls (health checks, migrations) and unsampled calls
 * cost no span, nor the description, which is asked for only when a span is made.
 */
export function startChildSpan(describe: () => SpanDescription): Span | undefined {
  const call = activeCall();
  if (call?.tracer === undefined || call.span?.isRecording() !== true) return undefined;
  const { name, kind, attributes } = describe();
  return call.tracer.startSpan(name, { kind, attributes }, context.active());
}
