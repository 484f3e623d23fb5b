import type { IncomingHttpHeaders } from "node:http";
import type { ConnectError } from "@connectrpc/connect";
import { findTrailerError } from "@connectrpc/connect/protocol-grpc";
import { stackless } from "../../shared/errors/public-error.js";
import { headerValue } from "../../shared/http/header-value.js";
import type { RequestContext } from "../../shared/request-context.js";
import { upstreamProtocolError } from "../upstream/upstream-errors.js";

const STATUS_HEADERS = ["grpc-status", "grpc-message", "grpc-status-details-bin"] as const;

/**
 * The status a gRPC or gRPC-Web answer ends with: undefined for OK, the error it
 * carries, or the canonical error when it has no valid status.
 */
export function grpcStatusOf(
  trailer: IncomingHttpHeaders | Headers | undefined,
  rc: RequestContext,
): ConnectError | undefined {
  const get = (name: string) =>
    trailer instanceof Headers ? (trailer.get(name) ?? undefined) : trailer && headerValue(trailer, name);
  const status = get("grpc-status");
  if (status === undefined) throw upstreamProtocolError(rc, new Error("the answer ended without grpc-status"));
  if (status === "0") return undefined;
  const headers = new Headers();
  for (const name of STATUS_HEADERS) {
    const value = get(name);
    if (value !== undefined) headers.set(name, value);
  }
  try {
    return stackless(() => findTrailerError(headers));
  } catch (err) {
    throw upstreamProtocolError(rc, err);
  }
}
