import { num } from "envalid";
import type { HttpLimits } from "../shared/http/http-server.js";

/** Connection limits both servers apply, each with a name and a documented default. */
export const httpLimitsEnv = {
  HEADERS_TIMEOUT_MS: num({ default: 10_000, desc: "time for a connection's first bytes and a request's headers" }),
  REQUEST_TIMEOUT_MS: num({ default: 60_000, desc: "time for a whole HTTP/1.1 request, body included" }),
  IDLE_TIMEOUT_MS: num({
    default: 65_000,
    desc: "idle keep-alive connections and HTTP/2 sessions are closed after this; the gateway closes its idle HTTP/1.1 connections to the API server at half of it",
  }),
  MAX_CONCURRENT_STREAMS: num({ default: 250, desc: "HTTP/2 streams open at once per connection" }),
  MAX_CONNECTIONS: num({ default: 10_000, desc: "connections open at once; more are refused" }),
  MAX_REQUEST_BYTES: num({ default: 1_048_576, desc: "largest request message; larger ones get resource_exhausted" }),
  SHUTDOWN_DRAIN_MS: num({
    default: 2_000,
    desc: "on SIGTERM, time the server goes on serving while not ready (readyz 503, health NOT_SERVING), so that gateways and load balancers move away first",
  }),
  SHUTDOWN_GRACE_MS: num({ default: 10_000, desc: "after draining, time calls in flight get to finish" }),
};

export function httpLimitsFrom(env: {
  HEADERS_TIMEOUT_MS: number;
  REQUEST_TIMEOUT_MS: number;
  IDLE_TIMEOUT_MS: number;
  MAX_CONCURRENT_STREAMS: number;
  MAX_CONNECTIONS: number;
  MAX_REQUEST_BYTES: number;
}): HttpLimits {
  return {
    headersTimeoutMs: env.HEADERS_TIMEOUT_MS,
    requestTimeoutMs: env.REQUEST_TIMEOUT_MS,
    idleTimeoutMs: env.IDLE_TIMEOUT_MS,
    maxConcurrentStreams: env.MAX_CONCURRENT_STREAMS,
    maxConnections: env.MAX_CONNECTIONS,
    maxRequestBytes: env.MAX_REQUEST_BYTES,
  };
}
