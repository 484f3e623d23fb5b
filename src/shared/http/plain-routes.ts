import type { ConnectNodeAdapterOptions } from "@connectrpc/connect-node";
import type { Readiness } from "../health.js";
import type { RpcMetrics } from "../metrics/rpc-metrics.js";

type Fallback = NonNullable<ConnectNodeAdapterOptions["fallback"]>;
type NodeServerRequest = Parameters<Fallback>[0];
type NodeServerResponse = Parameters<Fallback>[1];

export interface PlainRoutes {
  readonly readiness: Readiness;
  /** Served at /metrics; absent where the admin port serves them instead. */
  readonly metrics: RpcMetrics | undefined;
}

/**
 * Plain-HTTP routes next to the RPCs:
 * - GET /healthz: liveness, 200 while the process answers at all (restart it
 *   when this fails);
 * - GET /readyz: readiness, 200 while it should get new work, 503 before
 *   start-up finishes, once draining begins, and while what it depends on is
 *   down (send work elsewhere);
 * - GET /metrics: Prometheus text, or OpenMetrics with exemplars when the
 *   scraper's Accept prefers it (unless an admin port has them).
 * Anything else is 404.
 */
export function servePlainRoutes(req: NodeServerRequest, res: NodeServerResponse, routes: PlainRoutes): void {
  const path = (req.url ?? "/").split("?")[0];
  const isGet = req.method === "GET" || req.method === "HEAD";
  if ((path === "/healthz" || path === "/readyz") && isGet) {
    const ok = path === "/healthz" || routes.readiness.ready;
    res.writeHead(ok ? 200 : 503, { "content-type": "application/json", "cache-control": "no-store" });
    res.end(req.method === "HEAD" ? "" : JSON.stringify({ status: ok ? "SERVING" : "NOT_SERVING" }));
    return;
  }
  const metrics = routes.metrics;
  if (path === "/metrics" && isGet && metrics !== undefined) {
    const accept = req.headers.accept;
    metrics.scrape(Array.isArray(accept) ? accept.join(",") : accept).then(
      ({ contentType, text }) => {
        res.writeHead(200, { "content-type": contentType, "cache-control": "no-store" });
        res.end(req.method === "HEAD" ? "" : text);
      },
      () => {
        res.writeHead(500, { "content-type": "text/plain; charset=utf-8" });
        res.end("metrics could not be collected\n");
      },
    );
    return;
  }
  res.writeHead(404, { "content-type": "text/plain; charset=utf-8" });
  res.end(`no route for ${req.method} ${path}\n`);
}
