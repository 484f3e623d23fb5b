import * as http2 from "node:http2";
import type { DescMessage, DescMethodUnary, MessageInitShape, MessageShape } from "@bufbuild/protobuf";
import type { Transport } from "@connectrpc/connect";
import { createConnectTransport, createGrpcTransport, Http2SessionManager } from "@connectrpc/connect-node";

export type UpstreamProtocol = "connect" | "grpc";

export interface UpstreamConfig {
  /** Where the API server listens, e.g. http://127.0.0.1:8081 (h2c). */
  readonly baseUrl: string;
  /** Protocol of the calls the gateway decodes itself (see byte-relay.ts for the others). */
  readonly protocol: UpstreamProtocol;
}

export interface UpstreamCallOptions {
  readonly signal: AbortSignal;
  readonly timeoutMs: number;
  readonly headers: Headers;
}

/** A whole unary answer as the API server sent it: nothing decoded. */
export interface UpstreamAnswer {
  readonly status: number;
  readonly headers: http2.IncomingHttpHeaders;
  readonly body: Buffer;
  /** HTTP/2 trailers, when the answer had any (gRPC). */
  readonly trailers: http2.IncomingHttpHeaders | undefined;
}

/** The API server, seen from the gateway: unary calls over one h2c session. */
export interface Upstream {
  /** A call through connect-es: the message encoded in the configured protocol. */
  call<I extends DescMessage, O extends DescMessage>(
    method: DescMethodUnary<I, O>,
    input: MessageInitShape<I>,
    options: UpstreamCallOptions,
  ): Promise<MessageShape<O>>;
  /**
   * One POST of bytes already encoded by the caller, and its whole answer.
   * Rejects with the transport's error (refused, reset, aborted by `signal`).
   */
  exchange(
    path: string,
    headers: http2.OutgoingHttpHeaders,
    body: Buffer,
    signal: AbortSignal,
  ): Promise<UpstreamAnswer>;
  close(): void;
}

export function createUpstream(config: UpstreamConfig): Upstream {
  // One session manager for both kinds of call: one connection, kept alive with
  // PINGs and re-opened when it fails.
  const sessionManager = new Http2SessionManager(config.baseUrl);
  const options = { baseUrl: config.baseUrl, httpVersion: "2" as const, sessionManager };
  const transport: Transport =
    config.protocol === "grpc"
      ? createGrpcTransport(options)
      : createConnectTransport({ ...options, useBinaryFormat: true });
  return {
    async call(method, input, { signal, timeoutMs, headers }) {
      const response = await transport.unary(method, signal, timeoutMs, headers, input);
      return response.message;
    },
    async exchange(path, headers, body, signal) {
      signal.throwIfAborted();
      const stream = await sessionManager.request("POST", path, headers, {});
      return readAnswer(stream, body, signal, () => sessionManager.notifyResponseByteRead(stream));
    },
    close() {
      sessionManager.abort();
    },
  };
}

function readAnswer(
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

function ignore(): void {}

/** A stream that closed before its answer was complete, as Node names it. */
function streamClosed(rstCode: number): Error {
  return Object.assign(new Error(`HTTP/2 stream closed before the answer was complete (RST_STREAM ${rstCode})`), {
    code: "ERR_HTTP2_STREAM_ERROR",
  });
}
