import type { DescMessage, DescMethodUnary, MessageShape } from "@bufbuild/protobuf";
import { ConnectError, type HandlerContext } from "@connectrpc/connect";
import { logMessageFor, reasonOf } from "../shared/errors/public-error.js";
import { applyFault, FAULT_HEADER_NAMES } from "../shared/fault-injection.js";
import { logmsg } from "../shared/logging/log-catalog.js";
import type { RpcMetrics } from "../shared/metrics/rpc-metrics.js";
import {
  ACTOR_ID_HEADER,
  REQUEST_ID_HEADER,
  type RequestContext,
  requestContextOf,
} from "../shared/request-context.js";
import { TRACEPARENT_HEADER, traceparentOf } from "../shared/trace-context.js";
import type { UpstreamBreaker } from "./circuit-breaker.js";
import { validateBeforeUpstream } from "./method-policy.js";
import type { Upstream } from "./upstream.js";
import { fromUpstreamFailure } from "./upstream-errors.js";

export interface RelayPolicy {
  readonly deadlines: DeadlinePolicy;
  readonly breaker: UpstreamBreaker;
  /** Honour x-bazbii-fault-* headers here, and pass them on to the API server. */
  readonly faultInjection: boolean;
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
 * id, trace, the verified actor, and the caller headers in `forwarded`. Both
 * relay paths use it; nothing else of the caller's is passed on.
 */
export function vouchedHeaders(
  rc: RequestContext,
  callerHeader: (name: string) => string | null | undefined,
  forwarded: readonly string[],
): Record<string, string> {
  const headers: Record<string, string> = {
    [REQUEST_ID_HEADER]: rc.requestId,
    [TRACEPARENT_HEADER]: traceparentOf(rc.trace),
  };
  if (rc.actorId !== undefined) headers[ACTOR_ID_HEADER] = rc.actorId;
  for (const name of forwarded) {
    const value = callerHeader(name);
    if (value !== null && value !== undefined) headers[name] = value;
  }
  return headers;
}

/**
 * The gateway's implementation of one unary method: check what can be checked
 * here, call the API server with the remaining deadline, the actor and the
 * request id, and answer with its response or its error (see upstream-errors).
 */
export function createRelay<I extends DescMessage, O extends DescMessage>(
  method: DescMethodUnary<I, O>,
  upstream: Upstream,
  { deadlines, faultInjection, breaker }: RelayPolicy,
  metrics: RpcMetrics,
): (req: MessageShape<I>, ctx: HandlerContext) => Promise<MessageShape<O>> {
  const fields = { service: method.parent.typeName, method: method.name };
  const forwarded = forwardedHeaders(faultInjection);
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
    const started = performance.now();
    const headers = new Headers(vouchedHeaders(rc, (name) => ctx.requestHeader.get(name), forwarded));
    const call = async () => {
      try {
        return await upstream.call(method, req, { signal: ctx.signal, timeoutMs, headers });
      } catch (thrown) {
        throw fromUpstreamFailure(thrown, rc, {
          timeoutMs,
          callerEnded: ctx.signal.aborted ? ctx.signal.reason : undefined,
        });
      }
    };
    try {
      const response = await breaker.run(call, rc);
      if (faultInjection) await applyFault(ctx.requestHeader, "gateway-response", rc, ctx.signal);
      metrics.clientCall(fields, { code: "ok", errorType: "" }, (performance.now() - started) / 1000);
      return response;
    } catch (thrown) {
      const err = ConnectError.from(thrown);
      const reason = reasonOf(err);
      metrics.clientCall(fields, { code: err.code, errorType: reason ?? "" }, (performance.now() - started) / 1000);
      logmsg.APICallFailed.emitError(rc.log, err, { ...fields, reason });
      throw err;
    }
  };
}
