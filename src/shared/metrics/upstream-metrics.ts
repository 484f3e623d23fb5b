import { Counter, Gauge, type Registry } from "prom-client";
import type { MethodLabels } from "./rpc-metrics.js";

/** The gateway's view of its API server endpoints: which take calls, ejections and retries. */
export class UpstreamMetrics {
  private readonly usable: Gauge<string>;
  private readonly ejections: Counter<string>;
  private readonly retries: Counter<string>;

  constructor(registry: Registry) {
    this.usable = new Gauge({
      name: "bazbii_upstream_endpoint_healthy",
      help: "Whether the gateway sends calls to an API server endpoint: 1 when it is serving and not ejected, else 0.",
      labelNames: ["endpoint"],
      registers: [registry],
    });
    this.ejections = new Counter({
      name: "bazbii_upstream_ejections_total",
      help: "Times outlier detection took an API server endpoint out after consecutive failures.",
      labelNames: ["endpoint"],
      registers: [registry],
    });
    this.retries = new Counter({
      name: "bazbii_upstream_retries_total",
      help: "Attempts the gateway made again on another endpoint, by method and what the previous attempt met (not_sent, lost, unavailable).",
      labelNames: ["rpc_service", "rpc_method", "reason"],
      registers: [registry],
    });
  }

  endpointUsable(endpoint: string, usable: boolean): void {
    this.usable.set({ endpoint }, usable ? 1 : 0);
  }

  endpointGone(endpoint: string): void {
    this.usable.remove({ endpoint });
  }

  ejected(endpoint: string): void {
    this.ejections.inc({ endpoint });
  }

  retried(m: MethodLabels, reason: string): void {
    this.retries.inc({ rpc_service: m.service, rpc_method: m.method, reason });
  }
}
