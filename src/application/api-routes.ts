import type { ConnectError, ConnectRouter } from "@connectrpc/connect";
import { connectNodeAdapter } from "@connectrpc/connect-node";
import type { HeatmapService as DomainHeatmapService } from "../domain/feed/heatmap-service.js";
import type { PostService } from "../domain/post/post-service.js";
import { HeatmapService } from "../gen/bazbii/feed/v1/heatmap_service_pb.js";
import { UserPostService } from "../gen/bazbii/post/v1/user_post_service_pb.js";
import { errorCatalog } from "../shared/errors/catalog.js";
import { checkConnectGet, detailProtocolErrors } from "../shared/errors/protocol-errors.js";
import { logMessageFor, publicError, reasonOf } from "../shared/errors/public-error.js";
import { createFaultInterceptor } from "../shared/fault-injection.js";
import { createHealthService, Health, type Readiness } from "../shared/health.js";
import type { RequestListener } from "../shared/http/dual-protocol-server.js";
import { servePlainRoutes } from "../shared/http/plain-routes.js";
import { ASSERTION_HEADER, verifyAssertion } from "../shared/internal-assertion.js";
import { logmsg } from "../shared/logging/log-catalog.js";
import type { Logger } from "../shared/logging/logger.js";
import { createMetricsInterceptor } from "../shared/metrics/metrics-interceptor.js";
import type { RpcMetrics } from "../shared/metrics/rpc-metrics.js";
import { openRequestContext, setActor } from "../shared/request-context.js";
import { createErrorBoundary } from "./error-boundary.js";
import { createHeatmapHandler } from "./heatmap-handler.js";
import { createUserPostHandler } from "./user-post-handler.js";

export interface ApiRoutesDeps {
  readonly log: Logger;
  readonly posts: PostService;
  readonly heatmap: DomainHeatmapService;
  readonly readiness: Readiness;
  readonly faultInjection: boolean;
  readonly metrics: RpcMetrics;
  /** /metrics on the API port too (false when API_ADMIN_PORT serves them). */
  readonly publicMetrics: boolean;
  readonly maxRequestBytes: number;
  /** INTERNAL_AUTH_SECRET: the gateways' assertions are checked with it. */
  readonly internalAuthSecret: string;
  /** Aborted when the server closes: ends long-lived calls (health watches). */
  readonly shutdownSignal: AbortSignal;
}

export const apiServices = [HeatmapService, UserPostService] as const;

/** The API server's request handler: the services over Connect, gRPC and gRPC-Web, plus health. */
export function createApiListener(deps: ApiRoutesDeps): RequestListener {
  return connectNodeAdapter({
    routes(router: ConnectRouter) {
      router.service(UserPostService, createUserPostHandler(deps.posts));
      router.service(HeatmapService, createHeatmapHandler(deps.heatmap, deps.readiness.drainSignal));
      router.service(Health, createHealthService(deps.readiness, apiServices));
    },
    readMaxBytes: deps.maxRequestBytes,
    shutdownSignal: deps.shutdownSignal,
    requestGate(ctx) {
      const rc = openRequestContext(ctx, deps.log);
      const report = (err: ConnectError): void => {
        logMessageFor(err, "api", logmsg.RequestFailed.id).emitError(rc.log, err, { reason: reasonOf(err) });
      };
      detailProtocolErrors(ctx, rc, report);
      checkConnectGet(ctx, rc, report);
      // Health is every prober's to ask; every other call is a gateway's, which vouches for its actor.
      if (ctx.service === Health) return;
      const vouched = verifyAssertion(deps.internalAuthSecret, ctx.requestHeader.get(ASSERTION_HEADER), rc);
      if ("problem" in vouched) {
        const err = publicError(errorCatalog.INTERNAL_CALL_UNAUTHENTICATED, rc, {
          params: { problem: vouched.problem },
        });
        logmsg.InternalCallRefused.emitError(rc.log, err, { reason: reasonOf(err), problem: vouched.problem });
        throw err;
      }
      if (vouched.actorId !== undefined) setActor(rc, vouched.actorId);
    },
    interceptors: [
      createMetricsInterceptor(deps.metrics),
      createErrorBoundary(),
      ...(deps.faultInjection ? [createFaultInterceptor()] : []),
    ],
    fallback: (req, res) =>
      servePlainRoutes(req, res, { readiness: deps.readiness, metrics: deps.publicMetrics ? deps.metrics : undefined }),
  }) as RequestListener;
}
