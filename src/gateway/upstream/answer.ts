import type * as http from "node:http";
import * as http2 from "node:http2";

/** A whole unary answer as the API server sent it: nothing decoded. */
export interface UpstreamAnswer {
  readonly status: number;
  readonly headers: http2.IncomingHttpHeaders;
  readonly body: Buffer;
  /** HTTP/2 trailers, when the answer had any (gRPC). */
  readonly trailers: http2.IncomingHttpHeaders | undefined;
}

/**
 * Node's code for a stream the server refused before it began (RST_STREAM
 * REFUSED_STREAM, or one past a GOAWAY): RFC 9113 §8.7 says such a request was
 * not processed, so it may go to another endpoint whatever the method.
 */
export const REFUSED_STREAM_CODE = "ERR_HTTP2_REFUSED_STREAM";

/** The whole answer on an HTTP/2 stream; an aborted call rejects with the signal's reason. */
export function readHttp2Answer(
  stream: http2.ClientHttp2Stream,
  body: Buffer,
  signal: AbortSignal,
  onBytesRead: () => void,
): Promise<UpstreamAnswer> {
  return new Promise((resolve, reject) => {
    let headers: http2.IncomingHttpHeaders | undefined;
    let trailers: http2.IncomingHttpHeaders | undefined;
    const chunks: Buffer[] = [];
    let failure: unknown;
    // gRPC's mapping of a cancelled call (PROTOCOL-HTTP2.md "Errors"): RST_STREAM CANCEL.
    const cancel = (): void => {
      failure = signal.reason;
      stream.close(http2.constants.NGHTTP2_CANCEL);
    };
    const onResponse = (h: http2.IncomingHttpHeaders): void => {
      headers = h;
    };
    const onTrailers = (t: http2.IncomingHttpHeaders): void => {
      trailers = t;
    };
    const onData = (chunk: Buffer): void => {
      chunks.push(chunk);
      onBytesRead();
    };
    const onClose = (): void => {
      // Node keeps a finished HTTP/2 stream reachable until the next full GC,
      // so all it references is promoted to old space by the scavenges in
      // between: let go of this call's state (4.6 → 2.9 KB promoted per call,
      // bench/README.md).
      signal.removeEventListener("abort", cancel);
      stream.off("response", onResponse).off("trailers", onTrailers).off("data", onData);
      // Complete only when the API server ended the stream itself: a connection
      // that closed mid-answer (a crashed process's FIN) also ends the stream's
      // readable side, with RST_STREAM CANCEL recorded and no error.
      const ended = stream.readableEnded && stream.rstCode === http2.constants.NGHTTP2_NO_ERROR;
      if (failure === undefined && headers !== undefined && ended) {
        const status = Number(headers[":status"]);
        const all = chunks.length === 1 ? (chunks[0] as Buffer) : Buffer.concat(chunks);
        resolve({ status, headers, body: all, trailers });
        return;
      }
      reject(failure ?? stream.errored ?? streamClosed(stream.rstCode));
    };
    signal.addEventListener("abort", cancel, { once: true });
    // The error is read from `stream.errored` on close; this listener only keeps
    // an 'error' event from being unhandled, and holds nothing of the call.
    stream.on("response", onResponse).on("trailers", onTrailers).on("data", onData).on("error", ignore);
    stream.once("close", onClose);
    stream.end(body);
  });
}

/** The whole answer to an HTTP/1.1 request; an aborted call rejects with the signal's reason. */
export function readHttp1Answer(
  request: http.ClientRequest,
  body: Buffer,
  signal: AbortSignal,
): Promise<UpstreamAnswer> {
  return new Promise((resolve, reject) => {
    // Node destroys the request on abort, but a request still waiting for a free
    // connection reports it only once one frees: the caller's deadline is now.
    const onAbort = (): void => reject(signal.reason);
    signal.addEventListener("abort", onAbort, { once: true });
    const fail = (err: unknown): void => {
      signal.removeEventListener("abort", onAbort);
      reject(signal.aborted ? signal.reason : err);
    };
    request.once("error", fail);
    request.once("response", (response) => {
      const chunks: Buffer[] = [];
      response.on("data", (chunk: Buffer) => chunks.push(chunk));
      response.once("error", fail);
      // The connection closed in the middle of the answer (Node may say so with no error).
      response.once("close", () => {
        if (!response.complete) fail(Object.assign(new Error("the answer was cut short"), { code: "ECONNRESET" }));
      });
      response.once("end", () => {
        signal.removeEventListener("abort", onAbort);
        const all = chunks.length === 1 ? (chunks[0] as Buffer) : Buffer.concat(chunks);
        resolve({ status: response.statusCode ?? 0, headers: response.headers, body: all, trailers: undefined });
      });
    });
    request.end(body);
  });
}

function ignore(): void {}

/** A stream that closed before its answer was complete, as Node names it. */
function streamClosed(rstCode: number): Error {
  return Object.assign(new Error(`HTTP/2 stream closed before the answer was complete (RST_STREAM ${rstCode})`), {
    code: rstCode === http2.constants.NGHTTP2_REFUSED_STREAM ? REFUSED_STREAM_CODE : "ERR_HTTP2_STREAM_ERROR",
  });
}
