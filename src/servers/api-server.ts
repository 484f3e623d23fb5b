import { setMaxListeners } from "node:events";
import { createInProcessEventBus } from "../adapters/events/in-process-event-bus.js";
import { openNatsEventBus } from "../adapters/events/nats-event-bus.js";
import { tracedEventPublisher } from "../adapters/events/traced-event-publisher.js";
import { openStorage, type Storage } from "../adapters/storage/open-storage.js";
import { apiServices, createApiListener } from "../application/api-routes.js";
import { createEventPublisher, currentRequestLog } from "../application/event-recorder.js";
import type { ApiConfig } from "../config/api-config.js";
import { createHeatmapService } from "../domain/feed/heatmap-service.js";
import { createPostService } from "../domain/post/post-service.js";
import { clientAddressResolver } from "../gateway/client-address.js";
import { Readiness } from "../shared/health.js";
import { startAdminServer } from "../shared/http/admin-server.js";
import { startHttpServer } from "../shared/http/http-server.js";
import { logmsg } from "../shared/logging/log-catalog.js";
import { createLogger, type Logger } from "../shared/logging/logger.js";
import { EventMetrics } from "../shared/metrics/event-metrics.js";
import { RpcMetrics } from "../shared/metrics/rpc-metrics.js";
import { registerWatchMetrics } from "../shared/metrics/watch-metrics.js";
import { observeCalls } from "../shared/tracing/observe-calls.js";
import { type RunningServer, serving, spanFlushMs, startTracingIfOn, tlsReloadLogger } from "./running-server.js";
import { watchStorage } from "./storage-readiness.js";

export interface ApiServerDeps {
  readonly log?: Logger;
  /** Metrics registry to record into (tests scrape it); a new one by default. */
  readonly metrics?: RpcMetrics;
  /** Storage to use instead of opening the configured one (tests wrap the real one). */
  readonly storage?: Storage;
}

/** The API server process: storage, domain services, application handlers, HTTP. */
export async function startApiServer(config: ApiConfig, deps: ApiServerDeps = {}): Promise<RunningServer> {
  const log = deps.log ?? createLogger({ service: "api", level: config.logLevel });
  const storage = deps.storage ?? (await openStorage(config.storage));
  const readiness = new Readiness();
  const metrics = deps.metrics ?? new RpcMetrics("api");
  const tracing = await startTracingIfOn(config, log, metrics.registry);
  const eventMetrics = new EventMetrics(metrics.registry);
  // Domain events: between replicas through NATS when configured, within this process otherwise.
  const nats =
    config.nats === undefined
      ? undefined
      : await openNatsEventBus(config.nats, (event, err) => {
          eventMetrics.publishFailed(event.name);
          logmsg.EventPublishFailed.emit(currentRequestLog() ?? log, { event: event.name, err });
        });
  const bus = nats ?? createInProcessEventBus();
  const heatmap = createHeatmapService(storage.heatmap, bus);
  registerWatchMetrics(metrics.registry, heatmap.openWatches);
  const shutdown = new AbortController();
  // Every call in flight listens on it (connect-es links it to the call's own signal).
  setMaxListeners(0, shutdown.signal);
  const listener = createApiListener({
    log,
    posts: createPostService({
      posts: storage.posts,
      events: createEventPublisher(tracedEventPublisher(bus, nats === undefined ? "in_process" : "nats")),
    }),
    heatmap,
    readiness,
    faultInjection: config.faultInjection,
    metrics,
    publicMetrics: config.admin === undefined,
    maxRequestBytes: config.limits.maxRequestBytes,
    internalAuthSecret: config.internalAuthSecret,
    shutdownSignal: shutdown.signal,
  });
  const http = await startHttpServer({
    host: config.host,
    port: config.port,
    listener: observeCalls(listener, {
      log,
      services: apiServices,
      accessLog: config.telemetry.accessLog,
      tracing,
      clientAddressOf: clientAddressResolver([]), // the peer: a gateway
      relays: false,
    }),
    limits: config.limits,
    tls: config.tls,
    onTlsReload: tlsReloadLogger(log),
  });
  const admin =
    config.admin === undefined ? undefined : await startAdminServer({ ...config.admin, readiness, metrics });
  const storageWatch = watchStorage(storage, config.storageCheckIntervalMs, readiness, log);
  return serving(http, readiness, log, {
    startedFields: { storage: storage.kind },
    drainMs: config.shutdownDrainMs,
    graceMs: config.shutdownGraceMs,
    shutdown,
    admin,
    async release() {
      storageWatch.stop();
      await nats?.close();
      await storage.close();
      await tracing?.shutdown(spanFlushMs(config));
    },
  });
}
