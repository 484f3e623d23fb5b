import type { GatewayConfig } from "../config/gateway-config.js";
import { createAuthenticator } from "../gateway/auth.js";
import { createUpstreamBreaker } from "../gateway/circuit-breaker.js";
import { withCors } from "../gateway/cors.js";
import { createGatewayListener } from "../gateway/gateway-routes.js";
import { withGrpcWebText } from "../gateway/grpc-web-text.js";
import { createRateLimiter } from "../gateway/rate-limit.js";
import { createUpstream } from "../gateway/upstream.js";
import { createWebApp } from "../gateway/web-app.js";
import { Readiness } from "../shared/health.js";
import { startHttpServer } from "../shared/http/http-server.js";
import { createLogger, type Logger } from "../shared/logging/logger.js";
import { ProtectionMetrics } from "../shared/metrics/protection-metrics.js";
import { RpcMetrics } from "../shared/metrics/rpc-metrics.js";
import { type RunningServer, serving } from "./running-server.js";

export interface GatewayServerDeps {
  readonly log?: Logger;
  /** Metrics registry to record into (tests scrape it); a new one by default. */
  readonly metrics?: RpcMetrics;
}

/** The gateway process: auth, validation and the relay to the API server. */
export async function startGateway(config: GatewayConfig, deps: GatewayServerDeps = {}): Promise<RunningServer> {
  const log = deps.log ?? createLogger({ service: "gateway", level: config.logLevel });
  const readiness = new Readiness();
  const metrics = deps.metrics ?? new RpcMetrics("gateway");
  const upstream = createUpstream({
    baseUrl: config.apiUrl,
    protocol: config.upstreamProtocol,
    idleTimeoutMs: config.limits.idleTimeoutMs,
    maxConnections: config.upstreamMaxConnections,
  });
  const protection = new ProtectionMetrics(metrics.registry);
  const rateLimiter = await createRateLimiter(config.rateLimit, log, protection);
  const listener = createGatewayListener({
    log,
    upstream,
    authenticate: createAuthenticator(config.jwtSecret),
    policy: {
      deadlines: { defaultTimeoutMs: config.defaultTimeoutMs, maxTimeoutMs: config.maxTimeoutMs },
      faultInjection: config.faultInjection,
      breaker: createUpstreamBreaker(config.apiUrl, config.breaker, log, protection),
    },
    readiness,
    metrics,
    protection,
    rateLimiter,
    maxInFlight: config.maxInFlight,
    maxRequestBytes: config.limits.maxRequestBytes,
    webApp: await createWebApp({ root: config.webRoot, devTokens: config.devTokens, jwtSecret: config.jwtSecret }),
  });
  const http = await startHttpServer({
    host: config.host,
    port: config.port,
    listener: withCors(withGrpcWebText(listener), config.corsAllowedOrigins),
    limits: config.limits,
  });
  return serving(http, readiness, log, { api_url: config.apiUrl }, config.shutdownGraceMs, async () => {
    upstream.close();
    await rateLimiter.close();
  });
}
