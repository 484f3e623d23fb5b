import { Counter, type Registry } from "prom-client";

/** The gateway's protections: rate-limit rejections and load shedding. */
export class ProtectionMetrics {
  private readonly rejections: Counter<string>;
  private readonly shed: Counter<string>;

  constructor(registry: Registry) {
    this.rejections = new Counter({
      name: "bazbii_rate_limit_rejections_total",
      help: "Calls refused with resource_exhausted by the rate limiter, by method and limit (reads or writes).",
      labelNames: ["rpc_service", "rpc_method", "limit"],
      registers: [registry],
    });
    this.shed = new Counter({
      name: "bazbii_load_shed_total",
      help: "Calls refused with unavailable because too many were in flight.",
      labelNames: ["rpc_service", "rpc_method"],
      registers: [registry],
    });
  }

  rateLimited(service: string, method: string, limit: string): void {
    this.rejections.inc({ rpc_service: service, rpc_method: method, limit });
  }

  loadShed(service: string, method: string): void {
    this.shed.inc({ rpc_service: service, rpc_method: method });
  }
}
