import type { IncomingMessage, ServerResponse } from "node:http";
import type { DescMessage, DescMethodUnary } from "@bufbuild/protobuf";
import { ConnectError, type ConnectRouter, createContextKey, createContextValues } from "@connectrpc/connect";
import { connectNodeAdapter } from "@connectrpc/connect-node";
import { errorCatalog } from "../shared/errors/catalog.js";
import { detailProtocolErrors } from "../shared/errors/protocol-errors.js";
import { logMessageFor, publicError, reasonOf } from "../shared/errors/public-error.js";
import { createHealthService, Health, type Readiness } from "../shared/health.js";
import type { RequestListener } from "../shared/http/dual-protocol-server.js";
import { servePlainRoutes } from "../shared/http/plain-routes.js";
import { logmsg } from "../shared/logging/log-catalog.js";
import type { Logger } from "../shared/logging/logger.js";
import { createMetricsInterceptor } from "../shared/metrics/metrics-interceptor.js";
import type { ProtectionMetrics } from "../shared/metrics/protection-metrics.js";
import type { RpcMetrics } from "../shared/metrics/rpc-metrics.js";
import { openRequestContext, setActor } from "../shared/request-context.js";
import type { Authenticate } from "./auth.js";
import { needsToken, relayedServices } from "./method-policy.js";
import type { RateLimiter } from "./rate-limit.js";
import { createRelay, type RelayPolicy } from "./relay.js";
import type { Upstream } from "./upstream.js";

export interface GatewayRoutesDeps {
  readonly log: Logger;
  readonly upstream: Upstream;
  readonly authenticate: Authenticate;
  readonly policy: RelayPolicy;
  readonly readiness: Readiness;
  readonly metrics: RpcMetrics;
  readonly protection: ProtectionMetrics;
  readonly rateLimiter: RateLimiter;
  readonly maxInFlight: number;
  readonly maxRequestBytes: number;
  /** The browser page and its routes; answers true when it served the request. */
  readonly webApp: (req: IncomingMessage, res: ServerResponse) => boolean;
}

/** The client's address, for the rate limits of anonymous calls. */
const clientAddressKey = createContextKey("unknown", { description: "client address" });

/** The gateway's request handler: Connect, gRPC and gRPC-Web for every relayed method, plus health. */
export function createGatewayListener(deps: GatewayRoutesDeps): RequestListener {
  let inFlight = 0;
  return connectNodeAdapter({
    routes(router: ConnectRouter) {
      for (const service of relayedServices) {
        for (const method of service.methods) {
          if (method.methodKind !== "unary") continue;
          const unary = method as DescMethodUnary<DescMessage, DescMessage>;
          router.rpc(unary, createRelay(unary, deps.upstream, deps.policy, deps.metrics));
        }
      }
      router.service(Health, createHealthService(deps.readiness, relayedServices));
    },
    contextValues: (req) => createContextValues().set(clientAddressKey, req.socket?.remoteAddress ?? "unknown"),
    readMaxBytes: deps.maxRequestBytes,
    // Runs before the request body is read: a call that is shed, has no valid
    // token or is over its rate limit costs neither a body read nor an upstream call.
    async requestGate(ctx) {
      const rc = openRequestContext(ctx, deps.log);
      detailProtocolErrors(ctx, rc, (err) => {
        logMessageFor(err, "gateway", logmsg.RequestRejected.id).emitError(rc.log, err, { reason: reasonOf(err) });
      });
      try {
        if (inFlight >= deps.maxInFlight) {
          deps.protection.loadShed(ctx.service.typeName, ctx.method.name);
          throw publicError(errorCatalog.OVERLOADED, rc, { params: { maxInFlight: String(deps.maxInFlight) } });
        }
        // The handler context is aborted when the call is over, whichever way it ends.
        inFlight++;
        ctx.signal.addEventListener("abort", () => inFlight--, { once: true });
        const actorId = await deps.authenticate(ctx.requestHeader.get("authorization"), rc);
        if (actorId !== undefined) setActor(rc, actorId);
        else if (needsToken(ctx.method)) throw publicError(errorCatalog.ACTOR_MISSING, rc);
        const subject = actorId !== undefined ? `actor:${actorId}` : `client:${ctx.values.get(clientAddressKey)}`;
        await deps.rateLimiter.consume(ctx.method, subject, rc);
      } catch (err) {
        const reason = reasonOf(err);
        logMessageFor(err, "gateway", logmsg.RequestRejected.id).emitError(rc.log, err, { reason });
        deps.metrics.serverCall(
          { service: ctx.service.typeName, method: ctx.method.name },
          { code: ConnectError.from(err).code, errorType: reason ?? "" },
          (performance.now() - rc.startedAt) / 1000,
        );
        throw err;
      }
    },
    interceptors: [createMetricsInterceptor(deps.metrics)],
    fallback: (req, res) => {
      if (!deps.webApp(req as IncomingMessage, res as unknown as ServerResponse)) servePlainRoutes(req, res, deps);
    },
  }) as RequestListener;
}
