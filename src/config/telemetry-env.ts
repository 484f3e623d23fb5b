import { parseKeyPairsIntoRecord } from "@opentelemetry/core";
import { bool, makeValidator, str } from "envalid";
import { ACCESS_LOG_MODES, type AccessLogMode } from "../shared/logging/access-log.js";
import { SAMPLER_NAMES, type SamplerName } from "../shared/tracing/sampler-names.js";
import type { TracingConfig } from "../shared/tracing/start-tracing.js";

/** How a process shows its calls: the access log, and traces when a collector is configured. */
export interface TelemetryConfig {
  readonly accessLog: AccessLogMode;
  /** Undefined: tracing off (no OTLP endpoint, or OTEL_SDK_DISABLED). */
  readonly tracing: TracingConfig | undefined;
}

/** A comma-separated list of key=value pairs, values percent-encoded (W3C Baggage's format, as OTEL_* lists are). */
const keyValuePairs = makeValidator<Record<string, string>>((raw) => {
  const pairs = parseKeyPairsIntoRecord(raw);
  const entries = raw.split(",").filter((entry) => entry.trim() !== "");
  if (Object.keys(pairs).length !== entries.length) throw new Error("expected key=value pairs, comma-separated");
  return pairs;
});

/** An http(s) URL, as OTLP/HTTP needs. */
const httpUrl = makeValidator<string>((raw) => {
  let parsed: URL;
  try {
    parsed = new URL(raw);
  } catch {
    throw new Error("expected an http(s) URL");
  }
  if (parsed.protocol !== "http:" && parsed.protocol !== "https:") throw new Error("expected an http(s) URL");
  return raw;
});

/** A ratio: a number from 0 to 1. */
const ratio = makeValidator<number>((raw) => {
  const value = Number(raw);
  if (raw.trim() === "" || !(value >= 0 && value <= 1)) throw new Error("expected a number from 0 to 1");
  return value;
});

/** A count or a duration in ms: a whole number above 0. */
const positive = makeValidator<number>((raw) => {
  const value = Number(raw);
  if (!Number.isInteger(value) || value <= 0) throw new Error("expected a whole number above 0");
  return value;
});

/**
 * Variables of the access log and of tracing, which both processes read. The
 * OTEL_* ones are OpenTelemetry's standard variables, with the
 * specification's defaults; tracing is on only with an OTLP endpoint.
 */
export const telemetryEnv = {
  ACCESS_LOG: str({
    choices: ACCESS_LOG_MODES,
    default: "off",
    desc: "the access log, one line (REQ_005, at info) per call with request and trace ids, method, protocol, code, duration, bytes each way, client address and, on the gateway, the API server endpoint and attempts: `on` for every call (its cost in bench/README.md), `errors` for calls that did not end ok (which have their error line already), `off` for none: an error is still logged once in each process it crosses",
  }),
  OTEL_SDK_DISABLED: bool({ default: false, desc: "true turns tracing off whatever else is set" }),
  OTEL_EXPORTER_OTLP_ENDPOINT: httpUrl({
    default: undefined,
    desc: "OpenTelemetry collector (OTLP/HTTP): spans go to its /v1/traces, in protobuf, batched off the calls' path; tracing is off while neither this nor OTEL_EXPORTER_OTLP_TRACES_ENDPOINT is set (the trace ids in logs and traceparent work all the same)",
  }),
  OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: httpUrl({
    default: undefined,
    desc: "the traces URL itself (e.g. http://collector:4318/v1/traces), instead of OTEL_EXPORTER_OTLP_ENDPOINT's",
  }),
  OTEL_EXPORTER_OTLP_PROTOCOL: str({
    choices: ["http/protobuf"],
    default: "http/protobuf",
    desc: "OTLP transport; OTLP/HTTP with protobuf is the one spoken. OTEL_EXPORTER_OTLP_COMPRESSION (gzip), OTEL_EXPORTER_OTLP_CERTIFICATE, OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE, OTEL_EXPORTER_OTLP_CLIENT_KEY and their OTEL_EXPORTER_OTLP_TRACES_* forms are read by the OpenTelemetry exporter itself",
  }),
  OTEL_EXPORTER_OTLP_HEADERS: keyValuePairs({
    default: undefined,
    desc: "headers sent with every export, key=value comma-separated (a collector's credentials); never logged",
  }),
  OTEL_EXPORTER_OTLP_TRACES_HEADERS: keyValuePairs({
    default: undefined,
    desc: "headers sent with trace exports, over OTEL_EXPORTER_OTLP_HEADERS's of the same name",
  }),
  OTEL_EXPORTER_OTLP_TIMEOUT: positive({
    default: 10_000,
    desc: "time one export may take, retries of a collector's 429/502/503/504 included, in ms; its spans are lost after it",
  }),
  OTEL_SERVICE_NAME: str({
    default: undefined,
    desc: "service.name of the spans; bazbii-gateway and bazbii-api by default (leave it unset for npm start, which runs both)",
  }),
  OTEL_RESOURCE_ATTRIBUTES: keyValuePairs({
    default: undefined,
    desc: "more resource attributes of the spans, key=value comma-separated (deployment.environment.name=prod,...)",
  }),
  OTEL_TRACES_SAMPLER: str({
    choices: SAMPLER_NAMES,
    default: "parentbased_always_on",
    desc: "which traces are recorded; the parentbased ones follow the caller's sampled flag and decide for new traces only",
  }),
  OTEL_TRACES_SAMPLER_ARG: ratio({ default: 1, desc: "ratio of new traces the traceidratio samplers record, 0 to 1" }),
  OTEL_BSP_MAX_QUEUE_SIZE: positive({
    default: 2048,
    desc: "spans waiting for export at most; more are dropped, never waited for (the memory a slow collector can cost)",
  }),
  OTEL_BSP_MAX_EXPORT_BATCH_SIZE: positive({ default: 512, desc: "spans per export at most" }),
  OTEL_BSP_SCHEDULE_DELAY: positive({ default: 5_000, desc: "ms between exports of a batch that is not full" }),
  OTEL_BSP_EXPORT_TIMEOUT: positive({
    default: 30_000,
    desc: "ms an export may take before the next batch goes; also the longest a stopping server waits for its last spans (at most SHUTDOWN_GRACE_MS)",
  }),
};

type TelemetryEnv = {
  readonly ACCESS_LOG: string;
  readonly OTEL_SDK_DISABLED: boolean;
  readonly OTEL_EXPORTER_OTLP_ENDPOINT: string | undefined;
  readonly OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: string | undefined;
  readonly OTEL_EXPORTER_OTLP_HEADERS: Record<string, string> | undefined;
  readonly OTEL_EXPORTER_OTLP_TRACES_HEADERS: Record<string, string> | undefined;
  readonly OTEL_EXPORTER_OTLP_TIMEOUT: number;
  readonly OTEL_SERVICE_NAME: string | undefined;
  readonly OTEL_RESOURCE_ATTRIBUTES: Record<string, string> | undefined;
  readonly OTEL_TRACES_SAMPLER: string;
  readonly OTEL_TRACES_SAMPLER_ARG: number;
  readonly OTEL_BSP_MAX_QUEUE_SIZE: number;
  readonly OTEL_BSP_MAX_EXPORT_BATCH_SIZE: number;
  readonly OTEL_BSP_SCHEDULE_DELAY: number;
  readonly OTEL_BSP_EXPORT_TIMEOUT: number;
};

/** The telemetry configuration from the validated variables; `serviceName`: the process's default service.name. */
export function telemetryFrom(env: TelemetryEnv, serviceName: string): TelemetryConfig {
  return { accessLog: env.ACCESS_LOG as AccessLogMode, tracing: tracingFrom(env, serviceName) };
}

function tracingFrom(env: TelemetryEnv, serviceName: string): TracingConfig | undefined {
  const url = env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT ?? tracesUrlOf(env.OTEL_EXPORTER_OTLP_ENDPOINT);
  if (env.OTEL_SDK_DISABLED || url === undefined) return undefined;
  const resourceAttributes = env.OTEL_RESOURCE_ATTRIBUTES ?? {};
  return {
    url,
    headers: { ...env.OTEL_EXPORTER_OTLP_HEADERS, ...env.OTEL_EXPORTER_OTLP_TRACES_HEADERS },
    timeoutMs: env.OTEL_EXPORTER_OTLP_TIMEOUT,
    serviceName: env.OTEL_SERVICE_NAME ?? resourceAttributes["service.name"] ?? serviceName,
    resourceAttributes,
    sampler: env.OTEL_TRACES_SAMPLER as SamplerName,
    samplerRatio: env.OTEL_TRACES_SAMPLER_ARG,
    batch: {
      maxQueueSize: env.OTEL_BSP_MAX_QUEUE_SIZE,
      maxExportBatchSize: env.OTEL_BSP_MAX_EXPORT_BATCH_SIZE,
      scheduledDelayMs: env.OTEL_BSP_SCHEDULE_DELAY,
      exportTimeoutMs: env.OTEL_BSP_EXPORT_TIMEOUT,
    },
  };
}

/** OTEL_EXPORTER_OTLP_ENDPOINT is the collector's base URL: traces go to its /v1/traces. */
function tracesUrlOf(endpoint: string | undefined): string | undefined {
  return endpoint === undefined ? undefined : `${endpoint.replace(/\/+$/, "")}/v1/traces`;
}
