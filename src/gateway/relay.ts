import type { DescMessage, DescMethodUnary, MessageShape } from "@bufbuild/protobuf";
import { ConnectError, type HandlerContext } from "@connectrpc/connect";
import { logMessageFor, reasonOf } from "../shared/errors/public-error.js";
import { applyFault, FAULT_HEADER_NAMES } from "../shared/fault-injection.js";
import { ASSERTION_HEADER, signAssertion } from "../shared/internal-assertion.js";
import { logmsg } from "../shared/logging/log-catalog.js";
import { REQUEST_ID_HEADER, type RequestContext, requestContextOf } from "../shared/request-context.js";
import { TRACEPARENT_HEADER, TRACESTATE_HEADER, type TraceContext, traceparentOf } from "../shared/trace-context.js";
import type { RpcSystem } from "../shared/tracing/call-record.js";
import { repeatRuleOf, validateBeforeUpstream } from "./method-policy.js";
import type { Upstream } from "./upstream/upstream.js";
import { relayed } from "./upstream/upstream-errors.js";

export interface RelayPolicy {
  readonly deadlines: DeadlinePolicy;
  /** Honour x-bazbii-fault-* headers here, and pass them on to the API server. */
  readonly faultInjection: boolean;
  /** INTERNAL_AUTH_SECRET: signs the assertion every call to the API server carries. */
  readonly internalAuthSecret: string;
  /** UPSTREAM_PROTOCOL: what the calls decoded here travel to the API server in (for their spans); Connect if unset. */
  readonly upstreamProtocol?: "connect" | "grpc";
}

/** The RPC system the calls decoded here travel in. */
export function upstreamSystemOf(policy: RelayPolicy): RpcSystem {
  return policy.upstreamProtocol === "grpc" ? "grpc" : "connect_rpc";
}

/** Sets an attempt's own trace headers: its place in the call's trace. */
export function setTraceHeaders(headers: Headers, trace: TraceContext): void {
  headers.set(TRACEPARENT_HEADER, traceparentOf(trace));
  if (trace.state === undefined) headers.delete(TRACESTATE_HEADER);
  else headers.set(TRACESTATE_HEADER, trace.state);
}

export interface DeadlinePolicy {
  /** Deadline given to upstream calls whose caller set none. */
  readonly defaultTimeoutMs: number;
  /** Longest deadline the gateway grants, whatever the caller asked for. */
  readonly maxTimeoutMs: number;
}

/** Caller headers the API server needs (beyond the protocol's own); nothing else is passed on. */
const FORWARDED_HEADERS: readonly string[] = ["accept-language", "grpc-previous-rpc-attempts"];

/** The caller headers passed on to the API server, fault requests included where they are honoured. */
export function forwardedHeaders(faultInjection: boolean): readonly string[] {
  return faultInjection ? [...FORWARDED_HEADERS, ...FAULT_HEADER_NAMES] : FORWARDED_HEADERS;
}

/**
 * The headers of a call to the API server that the gateway vouches for: request
 * id, trace, the signed assertion (the verified actor, for this method and
 * this request), and the caller headers in `forwarded`. Both relay paths use
 * it; nothing else of the caller's is passed on.
 */
export function vouchedHeaders(
  rc: RequestContext,
  callerHeader: (name: string) => string | null | undefined,
  forwarded: readonly string[],
  internalAuthSecret: string,
): Record<string, string> {
  const headers: Record<string, string> = {
    [REQUEST_ID_HEADER]: rc.requestId,
    [TRACEPARENT_HEADER]: traceparentOf(rc.trace),
    [ASSERTION_HEADER]: signAssertion(internalAuthSecret, {
      actorId: rc.actorId,
      rpcMethod: rc.rpcMethod,
      requestId: rc.requestId,
    }),
  };
  for (const name of forwarded) {
    const value = callerHeader(name);
    if (value !== null && value !== undefined) headers[name] = value;
  }
  return headers;
}

/**
 * The gateway's implementation of one unary method whose message it decodes:
 * check what can be checked here, call the API servers (upstream.run: an
 * endpoint per attempt) with the remaining deadline, the actor and the request
 * id, and answer with the response or the error (see upstream-errors).
 */
export function createRelay<I extends DescMessage, O extends DescMessage>(
  method: DescMethodUnary<I, O>,
  upstream: Upstream,
  policy: RelayPolicy,
): (req: MessageShape<I>, ctx: HandlerContext) => Promise<MessageShape<O>> {
  const { deadlines, faultInjection, internalAuthSecret } = policy;
  const labels = { service: method.parent.typeName, method: method.name };
  const system = upstreamSystemOf(policy);
  const forwarded = forwardedHeaders(faultInjection);
  const repeat = repeatRuleOf(method);
  return async (req, ctx) => {
    const rc = requestContextOf(ctx.values);
    try {
      validateBeforeUpstream(method, req, rc);
      if (faultInjection) await applyFault(ctx.requestHeader, "gateway", rc, ctx.signal);
    } catch (err) {
      logMessageFor(err, "gateway", logmsg.RequestRejected.id).emitError(rc.log, err, { reason: reasonOf(err) });
      throw err;
    }
    const timeoutMs = Math.min(ctx.timeoutMs() ?? deadlines.defaultTimeoutMs, deadlines.maxTimeoutMs);
    const headers = new Headers(
      vouchedHeaders(rc, (name) => ctx.requestHeader.get(name), forwarded, internalAuthSecret),
    );
    const key = repeat.keyField === undefined ? undefined : (req as Record<string, unknown>)[repeat.keyField.localName];
    const result = await upstream.run<MessageShape<O> | undefined>(
      {
        labels,
        system,
        safeToRepeat: () => repeat.always || (typeof key === "string" && key !== ""),
        callerRetrying: Number(ctx.requestHeader.get("grpc-previous-rpc-attempts") ?? 0) > 0,
        rc,
        signal: ctx.signal,
        timeoutMs,
        callerEnded: () => (ctx.signal.aborted ? ctx.signal.reason : undefined),
      },
      async (endpoint, trace) => {
        const left = Math.max(1, Math.ceil(rc.startedAt + timeoutMs - performance.now()));
        setTraceHeaders(headers, trace);
        try {
          return { value: await endpoint.pool.call(method, req, { signal: ctx.signal, timeoutMs: left, headers }) };
        } catch (err) {
          const e = ConnectError.from(err);
          if (!e.isWireError) throw err;
          return { value: undefined, error: relayed(e) }; // the API server's own answer
        }
      },
    );
    let err = result.own ?? result.error;
    if (err === undefined) {
      try {
        if (faultInjection) await applyFault(ctx.requestHeader, "gateway-response", rc, ctx.signal);
        return result.value as MessageShape<O>;
      } catch (thrown) {
        err = ConnectError.from(thrown);
      }
    }
    logmsg.APICallFailed.emitError(rc.log, err, { ...labels, reason: reasonOf(err), attempts: result.attempts });
    throw err;
  };
}
