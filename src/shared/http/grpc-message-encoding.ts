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
  addTrailers(trailers: OutgoingHttpHeaders): void;
}

/**
 * connect-es writes `grpc-message` with encodeURIComponent, which also escapes
 * ':' ';' '/' ',' and the like; grpc-js decodes with decodeURI, which leaves
 * those escaped, so "post not found: x" reached grpc-js callers as
 * "post not found%3A x". This rewrites the header, and the trailer, of gRPC
 * (HTTP/2) responses to the spec's minimal encoding, which every client
 * decodes. gRPC-Web carries its trailers in the body, where connect-es
 * clients decode them correctly.
 */
export function useGrpcMessageEncoding(contentType: string | undefined, response: object): void {
  if (
    contentType === undefined ||
    !contentType.startsWith("application/grpc") ||
    contentType.startsWith("application/grpc-web")
  ) {
    return;
  }
  const res = response as GrpcResponse;
  const writeHead = res.writeHead.bind(res);
  const addTrailers = res.addTrailers.bind(res);
  res.writeHead = (status, headers) => {
    reencode(headers);
    return writeHead(status, headers);
  };
  res.addTrailers = (trailers) => {
    reencode(trailers);
    addTrailers(trailers);
  };
}
