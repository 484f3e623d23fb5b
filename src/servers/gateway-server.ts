import type { GatewayConfig } from "../config/gateway-config.js";
import { createAuthenticator } from "../gateway/auth.js";
import { createGatewayListener } from "../gateway/gateway-routes.js";
import { createUpstream } from "../gateway/upstream.js";
import { Readiness } from "../shared/health.js";
import { startHttpServer } from "../shared/http/http-server.js";
import { logmsg } from "../shared/logging/log-catalog.js";
import { createLogger, type Logger } from "../shared/logging/logger.js";
import { RpcMetrics } from "../shared/metrics/rpc-metrics.js";
import type { RunningServer } from "./api-server.js";

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
  const upstream = createUpstream({ baseUrl: config.apiUrl, protocol: config.upstreamProtocol });
  const listener = createGatewayListener({
    log,
    upstream,
    authenticate: createAuthenticator(config.jwtSecret),
    policy: {
      deadlines: { defaultTimeoutMs: config.defaultTimeoutMs, maxTimeoutMs: config.maxTimeoutMs },
      faultInjection: config.faultInjection,
    },
    readiness,
    metrics,
  });
  const http = await startHttpServer({ host: config.host, port: config.port, listener, limits: config.limits });
  readiness.set(true);
  logmsg.ServerStarted.emit(log, { url: http.url, api_url: config.apiUrl });
  return {
    url: http.url,
    port: http.port,
    readiness,
    async close(graceMs = config.shutdownGraceMs) {
      readiness.set(false);
      logmsg.ServerStopping.emit(log, { url: http.url });
      await http.close(graceMs);
      upstream.close();
    },
  };
}
