import type { IncomingMessage, ServerResponse } from "node:http";
import type { DescMessage, DescMethodServerStreaming, DescMethodUnary } from "@bufbuild/protobuf";
import { type ConnectError, type ConnectRouter, createContextKey, createContextValues } from "@connectrpc/connect";
import { connectNodeAdapter } from "@connectrpc/connect-node";
import { checkConnectGet, detailProtocolErrors } from "../shared/errors/protocol-errors.js";
import { logMessageFor, reasonOf } from "../shared/errors/public-error.js";
import { createHealthService, Health, type Readiness } from "../shared/health.js";
import type { RequestListener } from "../shared/http/dual-protocol-server.js";
import { servePlainRoutes } from "../shared/http/plain-routes.js";
import { logmsg } from "../shared/logging/log-catalog.js";
import type { Logger } from "../shared/logging/logger.js";
import { createMetricsInterceptor } from "../shared/metrics/metrics-interceptor.js";
import type { ProtectionMetrics } from "../shared/metrics/protection-metrics.js";
import type { RpcMetrics } from "../shared/metrics/rpc-metrics.js";
import { openRequestContext } from "../shared/request-context.js";
import type { Authenticate } from "./auth.js";
import { createByteRelay } from "./byte-relay.js";
import type { ClientAddressOf } from "./client-address.js";
import { relayedServices } from "./method-policy.js";
import type { RateLimiter } from "./rate-limit.js";
import { registerReflection } from "./reflection.js";
import { createRelay, type RelayPolicy } from "./relay.js";
import { createRequestGate, type StreamLimits } from "./request-gate.js";
import { createRestRoutes, type MethodHandlers } from "./rest/rest-routes.js";
import { createStreamRelay, type StreamPolicy } from "./stream-relay.js";
import { answerUnknownMethod } from "./unknown-method.js";
import type { Upstream } from "./upstream/upstream.js";

export interface GatewayRoutesDeps {
  readonly log: Logger;
  readonly upstream: Upstream;
  readonly authenticate: Authenticate;
  readonly policy: RelayPolicy;
  readonly readiness: Readiness;
  readonly metrics: RpcMetrics;
  /** /metrics on the public port too (false when ADMIN_PORT serves them). */
  readonly publicMetrics: boolean;
  readonly protection: ProtectionMetrics;
  readonly rateLimiter: RateLimiter;
  /** The caller's address, through trusted proxies (TRUSTED_PROXIES). */
  readonly clientAddressOf: ClientAddressOf;
  readonly maxInFlight: number;
  readonly streamLimits: StreamLimits;
  readonly streamPolicy: StreamPolicy;
  readonly maxRequestBytes: number;
  /** Aborted when the server closes: ends long-lived calls (health watches). */
  readonly shutdownSignal: AbortSignal;
  /** The browser page and its routes; answers true when it served the request. */
  readonly webApp: (req: IncomingMessage, res: ServerResponse) => boolean;
  /** /openapi.json and /docs; answers true when it served the request. */
  readonly apiDocs: (req: IncomingMessage, res: ServerResponse) => boolean;
}

/** The client's address, for the rate limits of anonymous calls. */
const clientAddressKey = createContextKey("unknown", { description: "client address" });

/**
 * The gateway's request handler: every method of the schema over Connect,
 * gRPC, gRPC-Web and REST (google.api.http), plus health and reflection. Most
 * unary calls take the byte relay; the rest (calls whose message the gateway
 * checks, streams, and every other form of request) are served by connect-es,
 * which decodes them; REST routes bind their message from the URL and JSON.
 * All pass the same request gate and, but for the byte relay, the same relays.
 */
export function createGatewayListener(deps: GatewayRoutesDeps): RequestListener {
  const gate = createRequestGate(deps);
  const handlers = methodHandlers(deps);
  const decodingRoutes = connectNodeAdapter({
    routes(router: ConnectRouter) {
      for (const [method, relay] of handlers.unary)
        router.rpc(method as DescMethodUnary<DescMessage, DescMessage>, relay);
      for (const [method, relay] of handlers.streams) {
        router.rpc(method as DescMethodServerStreaming<DescMessage, DescMessage>, relay);
      }
      router.service(Health, createHealthService(deps.readiness, relayedServices));
      registerReflection(router, [...relayedServices, Health]);
    },
    contextValues: (req) => createContextValues().set(clientAddressKey, deps.clientAddressOf(req)),
    readMaxBytes: deps.maxRequestBytes,
    shutdownSignal: deps.shutdownSignal,
    // Runs before the request body is read.
    async requestGate(ctx) {
      const rc = openRequestContext(ctx, deps.log);
      const report = (err: ConnectError): void => {
        logMessageFor(err, "gateway", logmsg.RequestRejected.id).emitError(rc.log, err, { reason: reasonOf(err) });
      };
      detailProtocolErrors(ctx, rc, report);
      checkConnectGet(ctx, rc, report);
      const admitted = await gate(
        {
          method: ctx.method,
          authorization: ctx.requestHeader.get("authorization"),
          clientAddress: ctx.values.get(clientAddressKey),
        },
        rc,
      );
      // The handler context is aborted when the call is over, whichever way it ends.
      ctx.signal.addEventListener("abort", () => admitted.release(), { once: true });
    },
    interceptors: [createMetricsInterceptor(deps.metrics)],
    fallback: (req, res) => {
      if (deps.apiDocs(req as IncomingMessage, res as unknown as ServerResponse)) return;
      if (deps.webApp(req as IncomingMessage, res as unknown as ServerResponse)) return;
      if (answerUnknownMethod(req, res, deps.log)) return;
      servePlainRoutes(req, res, { readiness: deps.readiness, metrics: deps.publicMetrics ? deps.metrics : undefined });
    },
  }) as RequestListener;
  const rest = { ...deps, gate, handlers };
  return createRestRoutes(relayedServices, rest, createByteRelay({ ...deps, gate }, decodingRoutes));
}

/** The relay of every method of the schema the gateway serves: unary calls and server streams. */
function methodHandlers(deps: GatewayRoutesDeps): MethodHandlers {
  const unary = new Map();
  const streams = new Map();
  for (const service of relayedServices) {
    for (const method of service.methods) {
      if (method.methodKind === "unary") {
        unary.set(method, createRelay(method as DescMethodUnary<DescMessage, DescMessage>, deps.upstream, deps.policy));
      } else if (method.methodKind === "server_streaming") {
        const stream = method as DescMethodServerStreaming<DescMessage, DescMessage>;
        streams.set(method, createStreamRelay(stream, deps.upstream, deps.policy, deps.streamPolicy));
      }
    }
  }
  return { unary, streams };
}
