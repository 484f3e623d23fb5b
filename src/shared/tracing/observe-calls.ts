import type { IncomingMessage } from "node:http";
import type { DescService } from "@bufbuild/protobuf";
import { context, defaultTextMapGetter, ROOT_CONTEXT, type Span, trace } from "@opentelemetry/api";
import { W3CTraceContextPropagator } from "@opentelemetry/core";
import type { RequestListener } from "../http/dual-protocol-server.js";
import { headerValue } from "../http/header-value.js";
import { type AccessLogMode, writeAccessLine } from "../logging/access-log.js";
import type { Logger } from "../logging/logger.js";
import { REQUEST_ID_HEADER } from "../request-context.js";
import { continueTrace, TRACEPARENT_HEADER, type TraceContext, traceContextOf } from "../trace-context.js";
import { CallRecord, type RpcSystem, withCall } from "./call-record.js";
import { installContextManager } from "./context-manager.js";
import { endRpcSpan, type RpcName, startServerSpan } from "./rpc-spans.js";
import type { Tracing } from "./start-tracing.js";

type Request = Parameters<RequestListener>[0];
type Response = Parameters<RequestListener>[1];

/** How a server observes the calls it serves. */
export interface CallObservation {
  /** The server's logger: access lines are written on it. */
  readonly log: Logger;
  /** The services whose calls are observed (health and reflection are not: probes would drown the rest). */
  readonly services: readonly DescService[];
  readonly accessLog: AccessLogMode;
  /** The server's tracer, when tracing is on. */
  readonly tracing: Tracing | undefined;
  /** The caller's address, as the server knows it (on the gateway, through TRUSTED_PROXIES). */
  readonly clientAddressOf: (req: IncomingMessage) => string;
  /** The gateway: its calls go upstream, and its access lines say after how many attempts. */
  readonly relays: boolean;
}

/**
 * Observes every RPC a server serves, from its first byte to its last, around
 * whichever path serves it (the byte relay or connect-es): it opens the
 * call's record (call-record.ts) and, with tracing on, its SERVER span under
 * the caller's `traceparent`, runs the call in their async context, and when
 * the response closes ends the span and writes the access-log line with the
 * outcome the call's metrics recorded. Plain HTTP routes, CORS preflights and
 * methods the server does not serve pass by untouched.
 *
 * With tracing off it still gives the call its trace id (made or the
 * caller's), which logs, exemplars and the upstream `traceparent` share.
 */
export function observeCalls(listener: RequestListener, observation: CallObservation): RequestListener {
  installContextManager();
  const methods = new Map<string, RpcName>();
  for (const service of observation.services) {
    for (const method of service.methods) {
      methods.set(`/${service.typeName}/${method.name}`, { service: service.typeName, method: method.name });
    }
  }
  const { tracing, accessLog, log } = observation;
  const propagator = new W3CTraceContextPropagator();
  return (req, res) => {
    const url = req.url ?? "";
    const query = url.indexOf("?");
    const rpc =
      req.method === "POST" || req.method === "GET" ? methods.get(query === -1 ? url : url.slice(0, query)) : undefined;
    if (rpc === undefined) {
      listener(req, res);
      return;
    }
    const startedAt = performance.now();
    const protocol = protocolOf(headerValue(req.headers, "content-type"));
    const system: RpcSystem = protocol === "connect" ? "connect_rpc" : "grpc";
    const requestId = headerValue(req.headers, REQUEST_ID_HEADER) ?? ""; // tagRequestId made sure of one
    const clientAddress = observation.clientAddressOf(req as IncomingMessage);
    let parent = ROOT_CONTEXT;
    let span: Span | undefined;
    let position: TraceContext;
    if (tracing === undefined) {
      position = continueTrace(headerValue(req.headers, TRACEPARENT_HEADER) ?? null);
    } else {
      parent = propagator.extract(ROOT_CONTEXT, req.headers, defaultTextMapGetter);
      span = startServerSpan(tracing.tracer, parent, system, rpc, { clientAddress, requestId });
      position = traceContextOf(span.spanContext());
      parent = trace.setSpan(parent, span);
    }
    const call = new CallRecord({
      ...rpc,
      protocol,
      system,
      requestId,
      clientAddress,
      trace: position,
      span,
      tracer: tracing?.tracer,
      startedAt,
      attempts: observation.relays ? 0 : undefined,
    });
    if (accessLog !== "off") countBodies(req, res, call);
    res.once("close", () => {
      const outcome = call.outcome(res.writableFinished);
      if (span !== undefined) endRpcSpan(span, "server", system, outcome);
      writeAccessLine(log, accessLog, call, outcome, performance.now() - startedAt);
    });
    context.with(withCall(parent, call), listener, undefined, req, res);
  };
}

/** The RPC protocol of a request, by its content type (a Connect GET has none). */
function protocolOf(contentType: string | undefined): string {
  if (contentType?.startsWith("application/grpc-web") === true) return "grpc-web";
  if (contentType?.startsWith("application/grpc") === true) return "grpc";
  return "connect";
}

/**
 * Counts the body bytes each way, as they crossed the wire (compressed,
 * framed): what the request's stream is pushed (both Node request types are
 * fed through Readable#push) and what the response is written.
 */
function countBodies(req: Request, res: Response, call: CallRecord): void {
  const stream = req as unknown as { push: (chunk: unknown, encoding?: BufferEncoding) => boolean };
  const push = stream.push;
  stream.push = function counted(chunk: unknown, encoding?: BufferEncoding): boolean {
    call.requestBytes += sizeOf(chunk);
    return push.call(this, chunk, encoding);
  };
  const writable = res as unknown as { write: (...args: unknown[]) => boolean; end: (...args: unknown[]) => unknown };
  const write = writable.write;
  const end = writable.end;
  writable.write = function counted(...args: unknown[]): boolean {
    call.responseBytes += sizeOf(args[0]);
    return write.apply(this, args);
  };
  writable.end = function counted(...args: unknown[]): unknown {
    call.responseBytes += sizeOf(args[0]);
    return end.apply(this, args);
  };
}

function sizeOf(chunk: unknown): number {
  if (typeof chunk === "string") return Buffer.byteLength(chunk);
  return chunk instanceof Uint8Array ? chunk.byteLength : 0;
}
