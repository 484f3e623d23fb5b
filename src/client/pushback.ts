import type { ConnectError } from "@connectrpc/connect";
import { ErrorInfoSchema, RetryInfoSchema } from "../gen/google/rpc/error_details_pb.js";
import { parseRetryAfter } from "../shared/retry-after.js";

/** What the server (or a proxy) said about coming back. */
export type Pushback =
  | {
      readonly kind: "after";
      readonly ms: number;
      readonly source: "grpc-retry-pushback-ms" | "RetryInfo" | "Retry-After";
    }
  | { readonly kind: "stop"; readonly source: "grpc-retry-pushback-ms" };

/**
 * Reads pushback from an error, most specific first: gRPC's
 * grpc-retry-pushback-ms (a negative or malformed value means "do not
 * retry", gRFC A6), then google.rpc.RetryInfo, then HTTP Retry-After (seconds
 * or a date, as a proxy's 429 or 503 sends it).
 */
export function pushbackOf(err: ConnectError, now = Date.now()): Pushback | undefined {
  const grpc = err.metadata.get("grpc-retry-pushback-ms");
  if (grpc !== null) {
    return /^\d+$/.test(grpc.trim())
      ? { kind: "after", ms: Number(grpc), source: "grpc-retry-pushback-ms" }
      : { kind: "stop", source: "grpc-retry-pushback-ms" };
  }
  const retryInfo = err.findDetails(RetryInfoSchema)[0]?.retryDelay;
  if (retryInfo !== undefined) {
    return {
      kind: "after",
      ms: Number(retryInfo.seconds) * 1000 + Math.round(retryInfo.nanos / 1e6),
      source: "RetryInfo",
    };
  }
  const retryAfterMs = parseRetryAfter(err.metadata.get("retry-after"), now);
  return retryAfterMs === undefined ? undefined : { kind: "after", ms: retryAfterMs, source: "Retry-After" };
}

/** ErrorInfo.metadata.processed == "false": the server did no work for this request. */
export function markedNotProcessed(err: ConnectError): boolean {
  return err.findDetails(ErrorInfoSchema).some((info) => info.metadata.processed === "false");
}

/**
 * The request never reached the server's application: the connection was
 * refused, the host unknown, or its HTTP/2 stream refused (REFUSED_STREAM, RFC
 * 9113 §8.7: not processed). Node's HTTP/2 client refuses a stream itself when
 * a server's GOAWAY (a server draining) arrives while the stream is queued,
 * and connect-es reports that as `internal`: gRPC clients retry it
 * transparently, and so does this one.
 */
export function refusedBeforeSending(err: ConnectError): boolean {
  if (err.rawMessage.includes("NGHTTP2_REFUSED_STREAM")) return true;
  for (let e: unknown = err.cause, depth = 0; e instanceof Error && depth < 8; e = e.cause, depth++) {
    const code = (e as { code?: unknown }).code;
    if (code === "ECONNREFUSED" || code === "ENOTFOUND" || code === "EAI_AGAIN") return true;
    if (e.message.includes("NGHTTP2_REFUSED_STREAM")) return true;
  }
  return false;
}
