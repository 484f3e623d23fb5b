import * as http from "node:http";
import * as http2 from "node:http2";
import * as https from "node:https";
import type { DescMessage, DescMethodUnary, MessageInitShape, MessageShape } from "@bufbuild/protobuf";
import type { Transport } from "@connectrpc/connect";
import { createConnectTransport, createGrpcTransport, Http2SessionManager } from "@connectrpc/connect-node";

export type UpstreamProtocol = "connect" | "grpc";

export interface UpstreamConfig {
  /** Where the API server listens, e.g. http://127.0.0.1:8081 (HTTP/1.1 and h2c). */
  readonly baseUrl: string;
  /** Protocol of the calls the gateway decodes itself (see byte-relay.ts for the others). */
  readonly protocol: UpstreamProtocol;
  /**
   * IDLE_TIMEOUT_MS, which the API server closes idle connections after: the
   * gateway lets its idle HTTP/1.1 connections go at half of it, so that it
   * never sends a call on a connection the API server is closing.
   */
  readonly idleTimeoutMs: number;
  /**
   * HTTP/1.1 connections to the API server at most. Calls beyond them wait in
   * the agent's queue: an API server sharing a few cores serves more calls/s
   * over a few dozen connections than over one per caller, and each connection
   * costs the gateway memory (bench/README.md, "The upstream connection cap"). The deadline
   * a waiting call carries to the API server is the one left when it was queued.
   */
  readonly maxConnections: number;
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

/**
 * The HTTP version a relayed call travels to the API server in. gRPC needs
 * HTTP/2 (its status is in trailers); Connect unary and gRPC-Web calls are a
 * plain request and answer, and go over kept-alive HTTP/1.1 connections, as
 * nginx's proxy_pass does: the API server spends less per call on them than
 * on an HTTP/2 stream, which shows most in its tail latency (bench/README.md).
 */
export type UpstreamHttpVersion = "1.1" | "2";

/**
 * The API server, seen from the gateway: unary calls over one h2c session, and
 * relayed HTTP/1.1 calls over a pool of kept-alive connections.
 */
export interface Upstream {
  /** A call through connect-es: the message encoded in the configured protocol. */
  call<I extends DescMessage, O extends DescMessage>(
    method: DescMethodUnary<I, O>,
    input: MessageInitShape<I>,
    options: UpstreamCallOptions,
  ): Promise<MessageShape<O>>;
  /**
   * One POST of bytes already encoded by the caller, and its whole answer.
   * Rejects with the transport's error (refused, reset), or with the signal's
   * reason when it aborts the call.
   */
  exchange(
    path: string,
    headers: http2.OutgoingHttpHeaders,
    body: Buffer,
    signal: AbortSignal,
    httpVersion: UpstreamHttpVersion,
  ): Promise<UpstreamAnswer>;
  close(): void;
}

export function createUpstream(config: UpstreamConfig): Upstream {
  // One session manager for both kinds of call: one connection, kept alive with
  // PINGs and re-opened when it fails.
  const sessionManager = new Http2SessionManager(config.baseUrl);
  const options = { baseUrl: config.baseUrl, httpVersion: "2" as const, sessionManager };
  // Relayed HTTP/1.1 calls: kept-alive connections, one call at a time each,
  // at most maxConnections; a call waiting for one is still ended by its
  // deadline. The agent's timeout closes idle connections only.
  const http1 = config.baseUrl.startsWith("https:") ? https : http;
  const agent = new http1.Agent({
    keepAlive: true,
    maxSockets: config.maxConnections,
    timeout: Math.max(1, Math.floor(config.idleTimeoutMs / 2)),
  });
  const transport: Transport =
    config.protocol === "grpc"
      ? createGrpcTransport(options)
      : createConnectTransport({ ...options, useBinaryFormat: true });
  return {
    async call(method, input, { signal, timeoutMs, headers }) {
      const response = await transport.unary(method, signal, timeoutMs, headers, input);
      return response.message;
    },
    async exchange(path, headers, body, signal, httpVersion) {
      signal.throwIfAborted();
      if (httpVersion === "1.1") {
        const options = { method: "POST", agent, headers: { ...headers, "content-length": body.length }, signal };
        return readHttp1Answer(http1.request(config.baseUrl + path, options), body, signal);
      }
      const stream = await sessionManager.request("POST", path, headers, {});
      return readAnswer(stream, body, signal, () => sessionManager.notifyResponseByteRead(stream));
    },
    close() {
      agent.destroy();
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

/** The whole answer to an HTTP/1.1 request; an aborted call rejects with the signal's reason. */
function readHttp1Answer(request: http.ClientRequest, body: Buffer, signal: AbortSignal): Promise<UpstreamAnswer> {
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
    code: "ERR_HTTP2_STREAM_ERROR",
  });
}
