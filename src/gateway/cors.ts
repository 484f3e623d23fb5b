import type { ServerResponse } from "node:http";
import { cors as connectCors } from "@connectrpc/connect";
import { FAULT_HEADER_NAMES } from "../shared/fault-injection.js";
import type { RequestListener } from "../shared/http/dual-protocol-server.js";

/** Headers browsers may send: Connect's and gRPC-Web's, plus ours. */
const ALLOWED_HEADERS = [
  ...connectCors.allowedHeaders,
  "authorization",
  "x-request-id",
  "traceparent",
  "accept-language",
  ...FAULT_HEADER_NAMES,
].join(", ");

/** Headers scripts may read: the status trailers of gRPC-Web, the request id, and the pushback headers. */
const EXPOSED_HEADERS = [...connectCors.exposedHeaders, "x-request-id", "retry-after", "grpc-retry-pushback-ms"].join(
  ", ",
);

/** Browsers may cache a preflight answer this long (seconds). */
const PREFLIGHT_MAX_AGE = "7200";

/**
 * CORS for the configured origins only. A preflight from any other origin is
 * refused with 403; an actual request from one is served without CORS headers,
 * so the browser withholds the response from the script.
 */
export function withCors(listener: RequestListener, allowedOrigins: readonly string[]): RequestListener {
  const allowed = new Set(allowedOrigins);
  return (req, res) => {
    // Both response kinds take the same calls; TypeScript cannot unify their overloads.
    const out = res as ServerResponse;
    const origin = req.headers.origin;
    if (typeof origin !== "string") {
      listener(req, res);
      return;
    }
    const ok = allowed.has(origin);
    if (req.method === "OPTIONS" && req.headers["access-control-request-method"] !== undefined) {
      if (!ok) {
        out.writeHead(403, { vary: "origin", "content-type": "text/plain; charset=utf-8" });
        out.end(`origin ${origin} is not allowed\n`);
        return;
      }
      out.writeHead(204, {
        vary: "origin",
        "access-control-allow-origin": origin,
        "access-control-allow-methods": connectCors.allowedMethods.join(", "),
        "access-control-allow-headers": ALLOWED_HEADERS,
        "access-control-max-age": PREFLIGHT_MAX_AGE,
      });
      out.end();
      return;
    }
    if (ok) {
      res.setHeader("vary", "origin");
      res.setHeader("access-control-allow-origin", origin);
      res.setHeader("access-control-expose-headers", EXPOSED_HEADERS);
    }
    listener(req, res);
  };
}
