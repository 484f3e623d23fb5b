import { Code } from "@connectrpc/connect";
import { type Attributes, type Context, type Span, SpanKind, SpanStatusCode, type Tracer } from "@opentelemetry/api";
import { codeTable } from "../code-table.js";
import type { CallOutcome } from "../metrics/rpc-metrics.js";
import type { RpcSystem } from "./call-record.js";

// OpenTelemetry's RPC semantic conventions, with their gRPC and Connect parts:
// span name `package.Service/Method`; rpc.system, rpc.service and rpc.method
// (the method's short name, as the metrics label it); the status as
// rpc.grpc.status_code (an integer) for gRPC and gRPC-Web, or
// rpc.connect_rpc.error_code for a Connect error; and, for every system,
// rpc.response.status_code with the code's name as the metrics label it
// (`ok`, `not_found`) and error.type with the error's reason
// (ErrorInfo.reason, the metrics' error_type). Nothing of a message, a
// token or an assertion is ever an attribute.

/** The codes that make a SERVER span an error (the conventions' list for gRPC; Connect's codes are gRPC's). */
const SERVER_ERRORS: ReadonlySet<Code> = new Set([
  Code.Unknown,
  Code.DeadlineExceeded,
  Code.Unimplemented,
  Code.Internal,
  Code.Unavailable,
  Code.DataLoss,
]);

/** Which RPC: fully qualified service and method name. */
export interface RpcName {
  readonly service: string;
  readonly method: string;
}

function rpcAttributes(system: RpcSystem, rpc: RpcName): Attributes {
  return { "rpc.system": system, "rpc.service": rpc.service, "rpc.method": rpc.method };
}

/** The SERVER span of a call a process serves, under the caller's trace context (`parent`). */
export function startServerSpan(
  tracer: Tracer,
  parent: Context,
  system: RpcSystem,
  rpc: RpcName,
  call: { readonly clientAddress: string; readonly requestId: string },
): Span {
  return tracer.startSpan(
    `${rpc.service}/${rpc.method}`,
    {
      kind: SpanKind.SERVER,
      attributes: {
        ...rpcAttributes(system, rpc),
        "client.address": call.clientAddress,
        // What a caller quotes from an error's RequestInfo: the way from a complaint to its trace.
        "bazbii.request_id": call.requestId,
      },
    },
    parent,
  );
}

/** The CLIENT span of one attempt of the gateway's call to an API server endpoint. */
export function startAttemptSpan(
  tracer: Tracer,
  parent: Context,
  system: RpcSystem,
  rpc: RpcName,
  endpoint: { readonly host: string; readonly port: number },
  attempt: number,
): Span {
  return tracer.startSpan(
    `${rpc.service}/${rpc.method}`,
    {
      kind: SpanKind.CLIENT,
      attributes: {
        ...rpcAttributes(system, rpc),
        "server.address": endpoint.host,
        "server.port": endpoint.port,
        // The conventions' count of a request sent again (set from the second attempt on).
        ...(attempt > 1 ? { "http.request.resend_count": attempt - 1 } : {}),
      },
    },
    parent,
  );
}

/**
 * Ends an RPC span with its outcome. A CLIENT span is an error for every code
 * but ok; a SERVER span only for the codes that say the server failed (a
 * not_found is the server doing its job).
 */
export function endRpcSpan(span: Span, kind: "server" | "client", system: RpcSystem, outcome: CallOutcome): void {
  if (span.isRecording()) {
    const code = outcome.code === "ok" ? undefined : outcome.code;
    const name = code === undefined ? "ok" : codeTable[code].name;
    if (system === "grpc") span.setAttribute("rpc.grpc.status_code", code ?? 0);
    else if (code !== undefined) span.setAttribute("rpc.connect_rpc.error_code", connectErrorCode(name));
    span.setAttribute("rpc.response.status_code", name);
    if (code !== undefined) {
      const errorType = outcome.errorType === "" ? name : outcome.errorType;
      span.setAttribute("error.type", errorType);
      if (kind === "client" || SERVER_ERRORS.has(code))
        span.setStatus({ code: SpanStatusCode.ERROR, message: errorType });
    }
  }
  span.end();
}

/** The conventions spell Connect's `canceled` as `cancelled`; every other code is Connect's own name. */
function connectErrorCode(name: string): string {
  return name === "canceled" ? "cancelled" : name;
}
