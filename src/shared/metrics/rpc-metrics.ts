import type { Code } from "@connectrpc/connect";
import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from "prom-client";
import { codeTable } from "../code-table.js";

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
 */
export class RpcMetrics {
  readonly registry = new Registry();
  private readonly serverDuration: Histogram<string>;
  private readonly clientDuration: Histogram<string>;
  private readonly retries: Counter<string>;
  private readonly streamDuration: Histogram<string>;
  private readonly streamsOpen: Gauge<string>;
  private readonly streamMessages: Counter<string>;

  constructor(processName: string) {
    this.registry.setDefaultLabels({ process: processName });
    collectDefaultMetrics({ register: this.registry });
    const labelNames = ["rpc_system", "rpc_service", "rpc_method", "rpc_response_status_code", "error_type"];
    this.serverDuration = new Histogram({
      name: "rpc_server_call_duration_seconds",
      help: "Duration of RPCs served, by method and canonical status code; _count counts calls.",
      labelNames,
      buckets: DURATION_BUCKETS,
      registers: [this.registry],
    });
    this.clientDuration = new Histogram({
      name: "rpc_client_call_duration_seconds",
      help: "Duration of the gateway's upstream call attempts, by method, outcome and API server endpoint; _count counts attempts.",
      labelNames: [...labelNames, "server_address", "server_port"],
      buckets: DURATION_BUCKETS,
      registers: [this.registry],
    });
    this.retries = new Counter({
      name: "rpc_server_retried_calls_total",
      help: "Calls received that are retries (grpc-previous-rpc-attempts > 0), by method.",
      labelNames: ["rpc_service", "rpc_method"],
      registers: [this.registry],
    });
    // Streams apart from unary calls: they last minutes, and one a draining server ends
    // (unavailable, and watched again at once) is no failure for error-rate alerts.
    this.streamDuration = new Histogram({
      name: "bazbii_stream_duration_seconds",
      help: "How long server streams lasted, by method and the canonical code they ended with; _count counts streams.",
      labelNames,
      buckets: STREAM_BUCKETS,
      registers: [this.registry],
    });
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

  private labels(m: MethodLabels, outcome: CallOutcome): Record<string, string> {
    return {
      rpc_system: "connect_rpc",
      rpc_service: m.service,
      rpc_method: m.method,
      rpc_response_status_code: outcome.code === "ok" ? "ok" : codeTable[outcome.code].name,
      error_type: outcome.errorType,
    };
  }

  serverCall(m: MethodLabels, outcome: CallOutcome, seconds: number): void {
    this.serverDuration.observe(this.labels(m, outcome), seconds);
  }

  clientCall(m: MethodLabels, outcome: CallOutcome, seconds: number, server: ServerLabels): void {
    const labels = this.labels(m, outcome);
    labels.server_address = server.host;
    labels.server_port = String(server.port);
    this.clientDuration.observe(labels, seconds);
  }

  streamOpened(m: MethodLabels): void {
    this.streamsOpen.inc({ rpc_service: m.service, rpc_method: m.method });
  }

  streamMessageSent(m: MethodLabels): void {
    this.streamMessages.inc({ rpc_service: m.service, rpc_method: m.method });
  }

  streamClosed(m: MethodLabels, outcome: CallOutcome, seconds: number): void {
    this.streamsOpen.dec({ rpc_service: m.service, rpc_method: m.method });
    this.streamDuration.observe(this.labels(m, outcome), seconds);
  }

  retryObserved(m: MethodLabels): void {
    this.retries.inc({ rpc_service: m.service, rpc_method: m.method });
  }
}
