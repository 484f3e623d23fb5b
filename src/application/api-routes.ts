import type { ConnectError, ConnectRouter } from "@connectrpc/connect";
import { connectNodeAdapter } from "@connectrpc/connect-node";
import type { HeatmapService as DomainHeatmapService } from "../domain/feed/heatmap-service.js";
import type { PostService } from "../domain/post/post-service.js";
import { HeatmapService } from "../gen/bazbii/feed/v1/heatmap_service_pb.js";
import { UserPostService } from "../gen/bazbii/post/v1/user_post_service_pb.js";
import { checkConnectGet, detailProtocolErrors } from "../shared/errors/protocol-errors.js";
import { logMessageFor, reasonOf } from "../shared/errors/public-error.js";
import { createFaultInterceptor } from "../shared/fault-injection.js";
import { createHealthService, Health, type Readiness } from "../shared/health.js";
import type { RequestListener } from "../shared/http/dual-protocol-server.js";
import { servePlainRoutes } from "../shared/http/plain-routes.js";
import { logmsg } from "../shared/logging/log-catalog.js";
import type { Logger } from "../shared/logging/logger.js";
import { createMetricsInterceptor } from "../shared/metrics/metrics-interceptor.js";
import type { RpcMetrics } from "../shared/metrics/rpc-metrics.js";
import { ACTOR_ID_HEADER, openRequestContext, setActor } from "../shared/request-context.js";
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
  readonly maxRequestBytes: number;
  /** Aborted when the server closes: ends long-lived calls (health watches). */
  readonly shutdownSignal: AbortSignal;
}

export const apiServices = [HeatmapService, UserPostService] as const;

/** The API server's request handler: the services over Connect, gRPC and gRPC-Web, plus health. */
export function createApiListener(deps: ApiRoutesDeps): RequestListener {
  return connectNodeAdapter({
    routes(router: ConnectRouter) {
      router.service(UserPostService, createUserPostHandler(deps.posts));
      router.service(HeatmapService, createHeatmapHandler(deps.heatmap));
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
      const actorId = ctx.requestHeader.get(ACTOR_ID_HEADER);
      if (actorId !== null && actorId !== "") setActor(rc, actorId);
    },
    interceptors: [
      createMetricsInterceptor(deps.metrics),
      createErrorBoundary(),
      ...(deps.faultInjection ? [createFaultInterceptor()] : []),
    ],
    fallback: (req, res) => servePlainRoutes(req, res, deps),
  }) as RequestListener;
}
