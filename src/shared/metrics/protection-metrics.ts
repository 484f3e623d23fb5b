import { Counter, Gauge, type Registry } from "prom-client";

/** Numeric values of bazbii_circuit_breaker_state. */
export const BREAKER_STATE = { closed: 0, open: 1, half_open: 2 } as const;

/** The gateway's protections: rate-limit rejections, load shedding and the circuit breaker. */
export class ProtectionMetrics {
  private readonly rejections: Counter<string>;
  private readonly shed: Counter<string>;
  private readonly breaker: Gauge<string>;

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
    this.breaker = new Gauge({
      name: "bazbii_circuit_breaker_state",
      help: "Circuit breaker per upstream: 0 closed, 1 open, 2 half-open.",
      labelNames: ["upstream"],
      registers: [registry],
    });
  }

  rateLimited(service: string, method: string, limit: string): void {
    this.rejections.inc({ rpc_service: service, rpc_method: method, limit });
  }

  loadShed(service: string, method: string): void {
    this.shed.inc({ rpc_service: service, rpc_method: method });
  }

  breakerState(upstream: string, state: keyof typeof BREAKER_STATE): void {
    this.breaker.set({ upstream }, BREAKER_STATE[state]);
  }
}
