import { setTimeout as sleep } from "node:timers/promises";
import type { Tracer } from "@opentelemetry/api";
import { OTLPTraceExporter } from "@opentelemetry/exporter-trace-otlp-proto";
import { defaultResource, resourceFromAttributes } from "@opentelemetry/resources";
import { BatchSpanProcessor, TracerProvider } from "@opentelemetry/sdk-trace";
import type { Registry } from "prom-client";
import type { Logger } from "../logging/logger.js";
import { installContextManager } from "./context-manager.js";
import { watchExports } from "./export-watch.js";
import { samplerOf } from "./sampler.js";
import type { SamplerName } from "./sampler-names.js";

/** Where spans go and how many (the standard OTEL_* variables, read by src/config/telemetry-env.ts). */
export interface TracingConfig {
  /** OTLP/HTTP traces URL, e.g. http://collector:4318/v1/traces. */
  readonly url: string;
  /** Sent with every export (OTEL_EXPORTER_OTLP_HEADERS): a collector's credentials, never logged. */
  readonly headers: Readonly<Record<string, string>>;
  /** Time one export may take, retries included (OTEL_EXPORTER_OTLP_TIMEOUT); the exporter's default when unset. */
  readonly timeoutMs: number | undefined;
  readonly serviceName: string;
  /** OTEL_RESOURCE_ATTRIBUTES. */
  readonly resourceAttributes: Readonly<Record<string, string>>;
  readonly sampler: SamplerName;
  /** Ratio of the traceidratio samplers (OTEL_TRACES_SAMPLER_ARG). */
  readonly samplerRatio: number;
  /** The batch span processor's bounds (OTEL_BSP_*). */
  readonly batch: {
    readonly maxQueueSize: number;
    readonly maxExportBatchSize: number;
    readonly scheduledDelayMs: number;
    readonly exportTimeoutMs: number;
  };
}

/** A process's tracer, exporting to its collector. */
export interface Tracing {
  readonly tracer: Tracer;
  /** Exports what is queued, for at most `timeoutMs`, and stops. */
  shutdown(timeoutMs: number): Promise<void>;
}

/**
 * Exports with one request at a time (and a second while one that timed out
 * is still open): the batch processor hands over one batch at a time, and a
 * collector that hangs must not hold more batches than that in memory.
 */
const EXPORTS_IN_FLIGHT = 2;

/**
 * The OpenTelemetry SDK for one server: its own provider (a gateway and an
 * API server in one process, `npm start`, are two services), sampling as
 * configured, spans queued in memory (OTEL_BSP_MAX_QUEUE_SIZE at most; more
 * are dropped, never waited for) and exported in batches off the calls' path
 * over OTLP/HTTP protobuf. A collector that is down or slow costs calls
 * nothing but the spans it does not take (export-watch.ts).
 */
export function startTracing(config: TracingConfig, log: Logger, registry: Registry): Tracing {
  installContextManager();
  const exporter = new OTLPTraceExporter({
    url: config.url,
    headers: { ...config.headers },
    concurrencyLimit: EXPORTS_IN_FLIGHT,
    userAgent: "bazbii",
    ...(config.timeoutMs === undefined ? {} : { timeoutMillis: config.timeoutMs }),
  });
  const provider = new TracerProvider({
    resource: defaultResource().merge(
      resourceFromAttributes({ ...config.resourceAttributes, "service.name": config.serviceName }),
    ),
    sampler: samplerOf(config.sampler, config.samplerRatio),
    spanProcessors: [
      new BatchSpanProcessor({
        exporter: watchExports(exporter, log, registry, withoutCredentials(config.url)),
        maxQueueSize: config.batch.maxQueueSize,
        maxExportBatchSize: Math.min(config.batch.maxExportBatchSize, config.batch.maxQueueSize),
        scheduledDelayMillis: config.batch.scheduledDelayMs,
        exportTimeoutMillis: config.batch.exportTimeoutMs,
      }),
    ],
  });
  return {
    tracer: provider.getTracer("bazbii"),
    async shutdown(timeoutMs) {
      await Promise.race([provider.shutdown().catch(() => {}), sleep(timeoutMs, undefined, { ref: false })]);
    },
  };
}

/** The collector's URL as logs may show it: no user or password. */
function withoutCredentials(url: string): string {
  const u = new URL(url);
  return `${u.origin}${u.pathname}`;
}
