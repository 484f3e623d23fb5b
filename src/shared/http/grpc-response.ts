import type { OutgoingHttpHeaders } from "node:http";

/**
 * gRPC's encoding of `grpc-message` (PROTOCOL-HTTP2.md): UTF-8, then every byte
 * outside 0x20–0x7E, and '%' itself, as %XX. Nothing else is escaped.
 */
export function encodeGrpcMessage(message: string): string {
  let out = "";
  for (const byte of Buffer.from(message, "utf8")) {
    out +=
      byte >= 0x20 && byte <= 0x7e && byte !== 0x25
        ? String.fromCharCode(byte)
        : `%${byte.toString(16).toUpperCase().padStart(2, "0")}`;
  }
  return out;
}

function reencode(headers: OutgoingHttpHeaders | undefined): void {
  const value = headers?.["grpc-message"];
  if (headers === undefined || typeof value !== "string") return;
  try {
    headers["grpc-message"] = encodeGrpcMessage(decodeURIComponent(value));
  } catch {
    // Not valid percent-encoding: leave it as it is.
  }
}

interface GrpcResponse {
  writeHead(status: number, headers?: OutgoingHttpHeaders): unknown;
  write(chunk: unknown, ...rest: unknown[]): boolean;
  addTrailers(trailers: OutgoingHttpHeaders): void;
  end(...args: unknown[]): unknown;
  getHeaders(): OutgoingHttpHeaders;
  stream?: { respond(headers: OutgoingHttpHeaders, options: { endStream: boolean }): void };
}

/**
 * Two fixes to connect-node's gRPC (HTTP/2) responses, for other gRPC clients:
 *
 * 1. `grpc-message`: connect-es writes it with encodeURIComponent, which also
 *    escapes ':' ';' '/' ','; grpc-js decodes with decodeURI, which leaves those
 *    escaped, so "post not found: x" reached grpc-js callers as
 *    "post not found%3A x". It is rewritten to the spec's minimal encoding.
 * 2. Trailers-Only: connect-node sends an error's headers and its trailers as
 *    two HEADERS frames. gRFC A6 clients (grpc-js, grpc-go) treat a call whose
 *    headers arrived as committed and never retry it, so no gRPC error could be
 *    retried. A response without messages is sent as one HEADERS frame with
 *    END_STREAM (PROTOCOL-HTTP2.md "Trailers-Only") instead.
 *
 * gRPC-Web carries its trailers in the body, where connect-es clients decode them.
 */
export function fixGrpcResponse(contentType: string | undefined, response: object): void {
  if (
    contentType === undefined ||
    !contentType.startsWith("application/grpc") ||
    contentType.startsWith("application/grpc-web")
  ) {
    return;
  }
  const res = response as GrpcResponse;
  const writeHead = res.writeHead.bind(res);
  const write = res.write.bind(res);
  const addTrailers = res.addTrailers.bind(res);
  const end = res.end.bind(res);
  let pending: { status: number; headers: OutgoingHttpHeaders } | undefined;
  let trailers: OutgoingHttpHeaders | undefined;
  let wrote = false;
  const flushHead = (): void => {
    if (pending === undefined) return;
    writeHead(pending.status, pending.headers);
    pending = undefined;
  };
  res.writeHead = (status, headers = {}) => {
    reencode(headers);
    if (wrote) return writeHead(status, headers);
    pending = { status, headers };
    return res;
  };
  res.write = (chunk, ...rest) => {
    flushHead();
    wrote = true;
    return write(chunk, ...rest);
  };
  res.addTrailers = (more) => {
    reencode(more);
    if (wrote || pending === undefined) addTrailers(more);
    else trailers = { ...trailers, ...more };
  };
  res.end = (...args) => {
    if (pending !== undefined && !wrote && res.stream !== undefined) {
      // stream.respond sends only what it is given: the headers set with setHeader (x-request-id) too.
      res.stream.respond(
        { ...res.getHeaders(), ":status": pending.status, ...pending.headers, ...trailers },
        { endStream: true },
      );
      pending = undefined;
    } else {
      flushHead();
      if (trailers !== undefined) addTrailers(trailers);
    }
    return end(...args);
  };
}
