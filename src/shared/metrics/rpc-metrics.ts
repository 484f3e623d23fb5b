import type { Code } from "@connectrpc/connect";
import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from "prom-client";
import { codeTable } from "../code-table.js";
import { isSampled, type TraceContext } from "../trace-context.js";
import { activeCall } from "../tracing/call-record.js";
import { OPENMETRICS_CONTENT_TYPE, openMetricsText, wantsOpenMetrics } from "./open-metrics.js";

/** Seconds: from half a millisecond (a local hop) to ten seconds (a deadline). */
const DURATION_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];
/** Seconds a stream lasts: from an early error to an hour (MAX_STREAM_DURATION_MS is below it). */
const STREAM_BUCKETS = [0.01, 0.1, 1, 10, 60, 300, 900, 1800, 3600];

/** A call's outcome as metrics label it: OpenTelemetry's status code string and error.type (our reason). */
export interface CallOutcome {
  readonly code: Code | "ok";
  /** ErrorInfo reason of a failure ("" on success). */
  readonly errorType: string;
}

/** Where an upstream call went: OpenTelemetry's server.address and server.port. */
export interface ServerLabels {
  readonly host: string;
  readonly port: number;
}

export interface MethodLabels {
  /** Fully qualified service, e.g. bazbii.post.v1.UserPostService. */
  readonly service: string;
  /** Method name, e.g. Get. */
  readonly method: string;
}

/**
 * The process's Prometheus metrics. Names and labels follow OpenTelemetry's
 * RPC conventions (rpc.server.call.duration, rpc.service, rpc.method,
 * rpc.response.status_code, error.type) in Prometheus form; codes are the
 * canonical strings (`not_found`), `ok` on success.
 *
 * The duration histograms keep, per bucket, the trace of the latest sampled
 * call that fell in it (an exemplar: trace_id, span_id), shown in the
 * OpenMetrics exposition (open-metrics.ts): from a slow bucket to the trace
 * and the log lines of a call that was that slow. A server call's outcome is
 * also the call's own (activeCall): its access line and its span say what
 * its metrics count.
 */
export class RpcMetrics {
  readonly registry = new Registry();
  private readonly serverDuration: Histogram<string>;
  private readonly clientDuration: Histogram<string>;
  private readonly retries: Counter<string>;
  private readonly streamDuration: Histogram<string>;
  private readonly streamsOpen: Gauge<string>;
  private readonly streamMessages: Counter<string>;

  private readonly defaultLabels: Record<string, string>;

  constructor(processName: string) {
    this.defaultLabels = { process: processName };
    this.registry.setDefaultLabels(this.defaultLabels);
    collectDefaultMetrics({ register: this.registry });
    const labelNames = ["rpc_system", "rpc_service", "rpc_method", "rpc_response_status_code", "error_type"];
    this.serverDuration = this.withExemplars(
      new Histogram({
        name: "rpc_server_call_duration_seconds",
        help: "Duration of RPCs served, by method and canonical status code; _count counts calls.",
        labelNames,
        buckets: DURATION_BUCKETS,
        enableExemplars: true,
        registers: [],
      }),
    );
    this.clientDuration = this.withExemplars(
      new Histogram({
        name: "rpc_client_call_duration_seconds",
        help: "Duration of the gateway's upstream call attempts, by method, outcome and API server endpoint; _count counts attempts.",
        labelNames: [...labelNames, "server_address", "server_port"],
        buckets: DURATION_BUCKETS,
        enableExemplars: true,
        registers: [],
      }),
    );
    this.retries = new Counter({
      name: "rpc_server_retried_calls_total",
      help: "Calls received that are retries (grpc-previous-rpc-attempts > 0), by method.",
      labelNames: ["rpc_service", "rpc_method"],
      registers: [this.registry],
    });
    // Streams apart from unary calls: they last minutes, and one a draining server ends
    // (unavailable, and watched again at once) is no failure for error-rate alerts.
    this.streamDuration = this.withExemplars(
      new Histogram({
        name: "bazbii_stream_duration_seconds",
        help: "How long server streams lasted, by method and the canonical code they ended with; _count counts streams.",
        labelNames,
        buckets: STREAM_BUCKETS,
        enableExemplars: true,
        registers: [],
      }),
    );
    this.streamsOpen = new Gauge({
      name: "bazbii_streams_open",
      help: "Server streams open now, by method.",
      labelNames: ["rpc_service", "rpc_method"],
      registers: [this.registry],
    });
    this.streamMessages = new Counter({
      name: "bazbii_stream_messages_sent_total",
      help: "Messages sent on server streams, by method.",
      labelNames: ["rpc_service", "rpc_method"],
      registers: [this.registry],
    });
  }

  /** The metrics in the format a scrape's Accept asks for: OpenMetrics, with exemplars, or Prometheus text. */
  async scrape(accept: string | undefined): Promise<{ contentType: string; text: string }> {
    if (wantsOpenMetrics(accept)) {
      return { contentType: OPENMETRICS_CONTENT_TYPE, text: await openMetricsText(this.registry, this.defaultLabels) };
    }
    return { contentType: this.registry.contentType, text: await this.registry.metrics() };
  }

  /**
   * prom-client refuses exemplars on a Prometheus-format registry, which the
   * default exposition needs: the histogram is registered by hand, and its
   * exemplars are written only in the OpenMetrics exposition.
   */
  private withExemplars(histogram: Histogram<string>): Histogram<string> {
    this.registry.registerMetric(histogram);
    return histogram;
  }

  private labels(m: MethodLabels, outcome: CallOutcome): Record<string, string> {
    return {
      rpc_system: "connect_rpc",
      rpc_service: m.service,
      rpc_method: m.method,
      rpc_response_status_code: outcome.code === "ok" ? "ok" : codeTable[outcome.code].name,
      error_type: outcome.errorType,
    };
  }

  /** A call served, ended with `outcome`: the outcome of the call in scope too. */
  serverCall(m: MethodLabels, outcome: CallOutcome, seconds: number): void {
    const call = activeCall();
    call?.settle(outcome);
    observe(this.serverDuration, this.labels(m, outcome), seconds, call?.trace);
  }

  /** One upstream attempt; `trace`: the attempt's own position in the call's trace. */
  clientCall(m: MethodLabels, outcome: CallOutcome, seconds: number, server: ServerLabels, trace?: TraceContext): void {
    const labels = this.labels(m, outcome);
    labels.server_address = server.host;
    labels.server_port = String(server.port);
    observe(this.clientDuration, labels, seconds, trace ?? activeCall()?.trace);
  }

  streamOpened(m: MethodLabels): void {
    this.streamsOpen.inc({ rpc_service: m.service, rpc_method: m.method });
  }

  streamMessageSent(m: MethodLabels): void {
    this.streamMessages.inc({ rpc_service: m.service, rpc_method: m.method });
  }

  streamClosed(m: MethodLabels, outcome: CallOutcome, seconds: number): void {
    this.streamsOpen.dec({ rpc_service: m.service, rpc_method: m.method });
    const call = activeCall();
    call?.settle(outcome);
    observe(this.streamDuration, this.labels(m, outcome), seconds, call?.trace);
  }

  retryObserved(m: MethodLabels): void {
    this.retries.inc({ rpc_service: m.service, rpc_method: m.method });
  }
}

/** Observes `seconds`, with the trace as the bucket's exemplar when it is sampled (OpenTelemetry's trace-based filter). */
function observe(
  histogram: Histogram<string>,
  labels: Record<string, string>,
  seconds: number,
  trace: TraceContext | undefined,
): void {
  histogram.observe({
    labels,
    value: seconds,
    ...(trace === undefined || !isSampled(trace)
      ? {}
      : { exemplarLabels: { trace_id: trace.traceId, span_id: trace.spanId } }),
  });
}
