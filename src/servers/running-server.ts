import type { Registry } from "prom-client";
import type { Readiness } from "../shared/health.js";
import type { AdminServer } from "../shared/http/admin-server.js";
import type { HttpServer } from "../shared/http/http-server.js";
import { logmsg } from "../shared/logging/log-catalog.js";
import type { Logger } from "../shared/logging/logger.js";
import type { Tracing, TracingConfig } from "../shared/tracing/start-tracing.js";

export interface RunningServer {
  readonly url: string;
  readonly port: number;
  readonly readiness: Readiness;
  /** The admin port's base URL, when it has one (/metrics, /healthz, /readyz). */
  readonly adminUrl: string | undefined;
  /** Reads the TLS files again now (SIGHUP); they are also picked up when they change. */
  reloadTls(): Promise<void>;
  /** How long it goes on serving once draining began (SHUTDOWN_DRAIN_MS). */
  readonly drainMs: number;
  /**
   * Stops being ready (readyz 503, grpc.health.v1 NOT_SERVING), asks its
   * clients to reconnect elsewhere (GOAWAY, Connection: close), and goes on
   * serving whoever still comes.
   */
  drain(): void;
  /** Graceful stop: drains if not draining yet, refuses new work, finishes what is in flight (up to the grace period), releases resources. */
  close(graceMs?: number): Promise<void>;
}

export interface ServingOptions {
  readonly startedFields: Record<string, unknown>;
  readonly drainMs: number;
  readonly graceMs: number;
  /** Ends long-lived calls (health watches) when the server closes. */
  readonly shutdown: AbortController;
  readonly admin: AdminServer | undefined;
  readonly release: () => Promise<void>;
}

/**
 * Declares a started process ready (SYS_001) and gives it the one way both
 * processes stop: drain (SYS_004), then SYS_002, close HTTP, release what the
 * process holds (storage, upstream sessions, ...).
 */
export function serving(http: HttpServer, readiness: Readiness, log: Logger, options: ServingOptions): RunningServer {
  readiness.started();
  const adminUrl = options.admin?.url;
  logmsg.ServerStarted.emit(log, {
    url: http.url,
    ...(adminUrl === undefined ? {} : { admin_url: adminUrl }),
    ...options.startedFields,
  });
  const drain = (): void => {
    if (readiness.draining) return;
    readiness.drain();
    http.drain();
    logmsg.ServerDraining.emit(log, { url: http.url, drain_ms: options.drainMs });
  };
  return {
    url: http.url,
    port: http.port,
    readiness,
    adminUrl,
    reloadTls: () => http.reloadTls(),
    drainMs: options.drainMs,
    drain,
    async close(graceMs = options.graceMs) {
      drain();
      logmsg.ServerStopping.emit(log, { url: http.url });
      options.shutdown.abort();
      await http.close(graceMs);
      await options.admin?.close();
      await options.release();
    },
  };
}

/** Logs how a reload of the TLS files went: SYS_005, or SYS_006 with the previous certificate kept. */
export function tlsReloadLogger(log: Logger): (err: unknown) => void {
  return (err) => {
    if (err === undefined) logmsg.TlsReloaded.emit(log);
    else logmsg.TlsReloadFailed.emit(log, { err });
  };
}

/** How long a stopping server waits for its last spans to reach the collector: an export's time, within the grace period. */
export function spanFlushMs(config: {
  readonly shutdownGraceMs: number;
  readonly telemetry: { readonly tracing: { readonly batch: { readonly exportTimeoutMs: number } } | undefined };
}): number {
  return Math.min(config.telemetry.tracing?.batch.exportTimeoutMs ?? 0, config.shutdownGraceMs);
}

/**
 * The process's tracing, when a collector is configured. The OpenTelemetry SDK
 * and its exporter are loaded only then: about 7 MB of memory a process
 * without a collector need not hold.
 */
export async function startTracingIfOn(
  config: { readonly telemetry: { readonly tracing: TracingConfig | undefined } },
  log: Logger,
  registry: Registry,
): Promise<Tracing | undefined> {
  const { tracing } = config.telemetry;
  if (tracing === undefined) return undefined;
  return (await import("../shared/tracing/start-tracing.js")).startTracing(tracing, log, registry);
}
