import { setMaxListeners } from "node:events";
import type { GatewayConfig } from "../config/gateway-config.js";
import { createApiDocs } from "../gateway/api-docs.js";
import { createAuthenticator } from "../gateway/auth.js";
import { clientAddressResolver } from "../gateway/client-address.js";
import { withCors } from "../gateway/cors.js";
import { createGatewayListener } from "../gateway/gateway-routes.js";
import { withGrpcWebText } from "../gateway/grpc-web-text.js";
import { relayedServices } from "../gateway/method-policy.js";
import { createRateLimiter } from "../gateway/rate-limit.js";
import type { Resolve } from "../gateway/upstream/endpoint-set.js";
import { startUpstream } from "../gateway/upstream/upstream.js";
import { createWebApp } from "../gateway/web-app.js";
import { Readiness } from "../shared/health.js";
import { startAdminServer } from "../shared/http/admin-server.js";
import { startHttpServer } from "../shared/http/http-server.js";
import { createLogger, type Logger } from "../shared/logging/logger.js";
import { ProtectionMetrics } from "../shared/metrics/protection-metrics.js";
import { RpcMetrics } from "../shared/metrics/rpc-metrics.js";
import { UpstreamMetrics } from "../shared/metrics/upstream-metrics.js";
import { observeCalls } from "../shared/tracing/observe-calls.js";
import { type RunningServer, serving, spanFlushMs, startTracingIfOn, tlsReloadLogger } from "./running-server.js";

export interface GatewayServerDeps {
  readonly log?: Logger;
  /** Metrics registry to record into (tests scrape it); a new one by default. */
  readonly metrics?: RpcMetrics;
  /** Resolves API_URL's host names (tests give names addresses of their own). */
  readonly resolve?: Resolve;
}

/** The gateway process: auth, validation and the relay to the API servers. */
export async function startGateway(config: GatewayConfig, deps: GatewayServerDeps = {}): Promise<RunningServer> {
  const log = deps.log ?? createLogger({ service: "gateway", level: config.logLevel });
  const readiness = new Readiness();
  const metrics = deps.metrics ?? new RpcMetrics("gateway");
  const tracing = await startTracingIfOn(config, log, metrics.registry);
  const upstream = await startUpstream(
    { ...config.upstream, pool: { ...config.upstream.pool, idleTimeoutMs: config.limits.idleTimeoutMs } },
    log,
    metrics,
    new UpstreamMetrics(metrics.registry),
    deps.resolve,
  );
  // Ready while some API server endpoint may take calls.
  readiness.dependency(upstream.hasUsableEndpoint());
  upstream.onUsabilityChange(() => readiness.dependency(upstream.hasUsableEndpoint()));
  const protection = new ProtectionMetrics(metrics.registry);
  const rateLimiter = await createRateLimiter(config.rateLimit, log, protection);
  const clientAddressOf = clientAddressResolver(config.trustedProxies);
  const shutdown = new AbortController();
  // Every call in flight listens on it (connect-es links it to the call's own signal).
  setMaxListeners(0, shutdown.signal);
  const listener = createGatewayListener({
    log,
    upstream,
    authenticate: createAuthenticator(config.tokens),
    policy: {
      deadlines: { defaultTimeoutMs: config.defaultTimeoutMs, maxTimeoutMs: config.maxTimeoutMs },
      faultInjection: config.faultInjection,
      internalAuthSecret: config.internalAuthSecret,
      upstreamProtocol: config.upstream.pool.protocol,
    },
    readiness,
    metrics,
    publicMetrics: config.admin === undefined,
    protection,
    rateLimiter,
    clientAddressOf,
    maxInFlight: config.maxInFlight,
    streamLimits: config.streamLimits,
    streamPolicy: { maxDurationMs: config.maxStreamDurationMs, drainSignal: readiness.drainSignal },
    maxRequestBytes: config.limits.maxRequestBytes,
    shutdownSignal: shutdown.signal,
    apiDocs: await createApiDocs(),
    webApp: await createWebApp({
      root: config.webRoot,
      devTokens: config.devTokens,
      tokens: config.tokens,
      clientAddressOf,
    }),
  });
  const http = await startHttpServer({
    host: config.host,
    port: config.port,
    // Outermost: a call is observed as it came (gRPC-Web text as text), its span and access line around all of it.
    listener: observeCalls(withCors(withGrpcWebText(listener), config.corsAllowedOrigins), {
      log,
      services: relayedServices,
      accessLog: config.telemetry.accessLog,
      tracing,
      clientAddressOf,
      relays: true,
    }),
    limits: config.limits,
    tls: config.tls,
    onTlsReload: tlsReloadLogger(log),
  });
  const admin =
    config.admin === undefined ? undefined : await startAdminServer({ ...config.admin, readiness, metrics });
  return serving(http, readiness, log, {
    startedFields: { api_url: config.upstream.urls.join(",") },
    drainMs: config.shutdownDrainMs,
    graceMs: config.shutdownGraceMs,
    shutdown,
    admin,
    async release() {
      upstream.close();
      await rateLimiter.close();
      await tracing?.shutdown(spanFlushMs(config));
    },
  });
}
