import type { ConnectNodeAdapterOptions } from "@connectrpc/connect-node";
import type { Readiness } from "../health.js";

type Fallback = NonNullable<ConnectNodeAdapterOptions["fallback"]>;
type NodeServerRequest = Parameters<Fallback>[0];
type NodeServerResponse = Parameters<Fallback>[1];

/**
 * Plain-HTTP routes next to the RPCs: GET /healthz answers 200 while the
 * process serves and 503 before start-up finishes or once shutdown begins.
 * Anything else is 404.
 */
export function serveHealthz(req: NodeServerRequest, res: NodeServerResponse, readiness: Readiness): void {
  const path = (req.url ?? "/").split("?")[0];
  if (path === "/healthz" && (req.method === "GET" || req.method === "HEAD")) {
    const body = JSON.stringify({ status: readiness.ready ? "SERVING" : "NOT_SERVING" });
    res.writeHead(readiness.ready ? 200 : 503, { "content-type": "application/json", "cache-control": "no-store" });
    res.end(req.method === "HEAD" ? "" : body);
    return;
  }
  res.writeHead(404, { "content-type": "text/plain; charset=utf-8" });
  res.end(`no route for ${req.method} ${path}\n`);
}
