import type { EndpointPool } from "./endpoint-pool.js";

/**
 * What the endpoint's own grpc.health.v1 says: `serving`, `not_serving`
 * (storage down, or draining), `unreachable` (its health stream cannot even
 * connect), or `unchecked`: not heard yet, or a peer without a health service,
 * which only passive outlier detection watches.
 */
export type EndpointHealth = "unchecked" | "serving" | "not_serving" | "unreachable";

/** One API server's address, with its connections and what the gateway knows of it. */
export class Endpoint {
  /** host:port, as metrics and logs name it. */
  readonly address: string;
  readonly host: string;
  readonly port: number;
  /** Where its calls go, e.g. http://10.0.0.7:8081. */
  readonly url: string;
  readonly pool: EndpointPool;
  health: EndpointHealth = "unchecked";
  /** Taken out by outlier detection until a probe answers. */
  ejected = false;
  /** Left the endpoint set (its name no longer resolves to it): drained, then closed. */
  removed = false;
  /** Attempts in flight on it: the least-request balancer's load. */
  inFlight = 0;

  constructor(url: URL, pool: EndpointPool) {
    this.url = url.origin;
    this.host = url.hostname.replace(/^\[|\]$/g, "");
    this.port = Number(url.port || (url.protocol === "https:" ? 443 : 80));
    this.address = `${url.hostname}:${this.port}`;
    this.pool = pool;
  }

  /** Whether new calls may go to it. */
  get usable(): boolean {
    return !this.removed && !this.ejected && (this.health === "serving" || this.health === "unchecked");
  }
}
