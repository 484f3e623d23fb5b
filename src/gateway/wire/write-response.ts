import type { OutgoingHttpHeaders } from "node:http";
import type { ConnectError } from "@connectrpc/connect";
import type { OwnResponse, WireProtocol } from "./wire-protocol.js";

/** What both Node response types offer (their writeHead signatures differ). */
export interface AnyResponse {
  writeHead(status: number, headers: OutgoingHttpHeaders): unknown;
  write(chunk: Uint8Array): unknown;
  addTrailers(trailers: OutgoingHttpHeaders): void;
  end(body?: Uint8Array): unknown;
  once(event: "close", listener: () => void): unknown;
  readonly writableFinished: boolean;
  readonly headersSent: boolean;
}

/** An error of the gateway's own; the answer's x-request-id is already set (tagRequestId). */
export function writeOwnError(res: AnyResponse, protocol: WireProtocol, contentType: string, err: ConnectError): void {
  write(res, protocol.errorResponse(err, contentType));
}

/** Writes a whole answer; nothing when the caller already went away. */
export function write(res: AnyResponse, { status, headers, body, trailers }: OwnResponse): void {
  if (res.headersSent || res.writableFinished) return; // the caller went away
  // A length spares HTTP/1.1 callers chunked framing; gRPC's Trailers-Only answers have no body at all.
  if (trailers === undefined && headers["grpc-status"] === undefined)
    headers["content-length"] = String(body?.length ?? 0);
  try {
    res.writeHead(status, headers);
    if (trailers === undefined && body !== undefined && body.length > 0) {
      res.end(body); // head and body in one write
    } else if (trailers === undefined) {
      res.end();
    } else {
      if (body !== undefined && body.length > 0) res.write(body);
      res.addTrailers(trailers);
      res.end();
    }
  } catch (err) {
    // Only a stream the caller already reset gets here (ERR_HTTP2_INVALID_STREAM): nobody is left to answer.
    if (!(err instanceof Error && "code" in err && String(err.code).startsWith("ERR_HTTP2"))) throw err;
  }
}
