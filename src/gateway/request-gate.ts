import type { DescMethod } from "@bufbuild/protobuf";
import { ConnectError } from "@connectrpc/connect";
import { errorCatalog } from "../shared/errors/catalog.js";
import { logMessageFor, publicError, reasonOf } from "../shared/errors/public-error.js";
import { logmsg } from "../shared/logging/log-catalog.js";
import type { ProtectionMetrics } from "../shared/metrics/protection-metrics.js";
import type { RpcMetrics } from "../shared/metrics/rpc-metrics.js";
import { type RequestContext, setActor } from "../shared/request-context.js";
import type { Authenticate } from "./auth.js";
import { needsToken } from "./method-policy.js";
import type { RateLimiter } from "./rate-limit.js";

export interface RequestGateDeps {
  readonly authenticate: Authenticate;
  readonly rateLimiter: RateLimiter;
  readonly metrics: RpcMetrics;
  readonly protection: ProtectionMetrics;
  /** Unary calls the gateway serves at once; more are shed with unavailable. */
  readonly maxInFlight: number;
  /** Server streams open at once, counted apart from unary calls. */
  readonly streamLimits: StreamLimits;
}

export interface StreamLimits {
  /** MAX_STREAMS: in all. */
  readonly maxStreams: number;
  /** MAX_STREAMS_PER_CALLER: per actor, or per client address for anonymous callers. */
  readonly maxStreamsPerCaller: number;
}

/** What the gate looks at: the method, the caller's token and address. No message. */
export interface GatedCall {
  readonly method: DescMethod;
  readonly authorization: string | null;
  /** As TRUSTED_PROXIES lets it be known (client-address.ts). */
  readonly clientAddress: string;
}

/**
 * Admits a call, or throws the public error that refuses it (already logged
 * and counted). An admitted call holds an in-flight slot (a stream slot, for
 * a server stream) until `release()`.
 */
export type RequestGate = (call: GatedCall, rc: RequestContext) => Promise<{ release(): void }>;

/**
 * The gate every RPC passes before its body is read: a call that is shed, has
 * no valid token or is over its rate limit costs neither a body read nor an
 * upstream call. Shared by the byte relay and the connect-es routes.
 */
export function createRequestGate(deps: RequestGateDeps): RequestGate {
  const { maxStreams, maxStreamsPerCaller } = deps.streamLimits;
  let inFlight = 0;
  let streams = 0;
  const streamsByCaller = new Map<string, number>();
  const releaseCall = (): void => {
    inFlight--;
  };
  /** Holds a stream slot for `subject`, or throws TOO_MANY_STREAMS. */
  const openStream = (subject: string, rc: RequestContext): (() => void) => {
    const mine = streamsByCaller.get(subject) ?? 0;
    if (streams >= maxStreams || mine >= maxStreamsPerCaller) {
      const perCaller = streams < maxStreams;
      throw publicError(errorCatalog.TOO_MANY_STREAMS, rc, {
        params: {
          limit: String(perCaller ? maxStreamsPerCaller : maxStreams),
          scope: perCaller ? "for this caller" : "on this gateway",
          subject: perCaller ? subject : "gateway",
        },
      });
    }
    streams++;
    streamsByCaller.set(subject, mine + 1);
    return () => {
      streams--;
      const left = (streamsByCaller.get(subject) ?? 1) - 1;
      if (left === 0) streamsByCaller.delete(subject);
      else streamsByCaller.set(subject, left);
    };
  };
  return async ({ method, authorization, clientAddress }, rc) => {
    const streaming = method.methodKind === "server_streaming";
    let admitted = false;
    try {
      if (!streaming) {
        if (inFlight >= deps.maxInFlight) {
          deps.protection.loadShed(method.parent.typeName, method.name);
          throw publicError(errorCatalog.OVERLOADED, rc, { params: { maxInFlight: String(deps.maxInFlight) } });
        }
        inFlight++;
        admitted = true;
      }
      const actorId = await deps.authenticate(authorization, rc);
      if (actorId !== undefined) setActor(rc, actorId);
      else if (needsToken(method)) throw publicError(errorCatalog.ACTOR_MISSING, rc);
      const subject = actorId !== undefined ? `actor:${actorId}` : `client:${clientAddress}`;
      await deps.rateLimiter.consume(method, subject, rc);
      return { release: once(streaming ? openStream(subject, rc) : releaseCall) };
    } catch (err) {
      if (admitted) releaseCall();
      const reason = reasonOf(err);
      logMessageFor(err, "gateway", logmsg.RequestRejected.id).emitError(rc.log, err, { reason });
      deps.metrics.serverCall(
        { service: method.parent.typeName, method: method.name },
        { code: ConnectError.from(err).code, errorType: reason ?? "" },
        (performance.now() - rc.startedAt) / 1000,
      );
      throw err;
    }
  };
}

function once(fn: () => void): () => void {
  let done = false;
  return () => {
    if (done) return;
    done = true;
    fn();
  };
}
