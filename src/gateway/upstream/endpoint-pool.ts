import { readFile } from "node:fs/promises";
import * as http from "node:http";
import type * as http2 from "node:http2";
import * as https from "node:https";
import type * as tls from "node:tls";
import type {
  DescMessage,
  DescMethodServerStreaming,
  DescMethodUnary,
  MessageInitShape,
  MessageShape,
} from "@bufbuild/protobuf";
import type { StreamResponse, Transport } from "@connectrpc/connect";
import { createConnectTransport, createGrpcTransport, Http2SessionManager } from "@connectrpc/connect-node";
import { readHttp1Answer, readHttp2Answer, type UpstreamAnswer } from "./answer.js";
import { StreamSessions } from "./stream-sessions.js";

export type UpstreamProtocol = "connect" | "grpc";

/**
 * The HTTP version a relayed call travels to the API server in. gRPC needs
 * HTTP/2 (its status is in trailers); Connect unary and gRPC-Web calls are a
 * plain request and answer, and go over kept-alive HTTP/1.1 connections, as
 * nginx's proxy_pass does: the API server spends less per call on them than
 * on an HTTP/2 stream, which shows most in its tail latency (bench/README.md).
 */
export type UpstreamHttpVersion = "1.1" | "2";

export interface PoolConfig {
  /** Protocol of the calls the gateway decodes itself (see byte-relay.ts for the others). */
  readonly protocol: UpstreamProtocol;
  /**
   * IDLE_TIMEOUT_MS, which the API server closes idle connections after: the
   * gateway lets its idle HTTP/1.1 connections go at half of it, so that it
   * never sends a call on a connection the API server is closing.
   */
  readonly idleTimeoutMs: number;
  /**
   * HTTP/1.1 connections to the endpoint at most. Calls beyond them wait in
   * the agent's queue: an API server sharing a few cores serves more calls/s
   * over a few dozen connections than over one per caller, and each connection
   * costs the gateway memory (bench/README.md, "The upstream connection cap").
   * The deadline a waiting call carries to the API server is the one left when
   * it was queued.
   */
  readonly maxConnections: number;
  /** For an https API_URL: the CA to check the API servers against, and the gateway's client certificate. */
  readonly tls?: UpstreamTlsFiles;
}

/** API_CA_FILE, GATEWAY_CLIENT_CERT_FILE and GATEWAY_CLIENT_KEY_FILE. */
export interface UpstreamTlsFiles {
  readonly caFile?: string | undefined;
  readonly certFile?: string | undefined;
  readonly keyFile?: string | undefined;
}

/** Reads the upstream's TLS files once, for every endpoint's pool. */
export async function readUpstreamTls(files: UpstreamTlsFiles | undefined): Promise<tls.ConnectionOptions> {
  const read = (path: string | undefined) => (path === undefined ? undefined : readFile(path));
  const [ca, cert, key] = await Promise.all([read(files?.caFile), read(files?.certFile), read(files?.keyFile)]);
  return {
    ...(ca === undefined ? {} : { ca }),
    ...(cert === undefined ? {} : { cert }),
    ...(key === undefined ? {} : { key }),
  };
}

export interface PoolCallOptions {
  readonly signal: AbortSignal;
  readonly timeoutMs: number;
  readonly headers: Headers;
}

/**
 * The connections to one endpoint (one API server's address): one h2c session
 * for gRPC and for the calls decoded here, and kept-alive HTTP/1.1 connections
 * for relayed Connect and gRPC-Web calls.
 */
export interface EndpointPool {
  /** A call through connect-es: the message encoded in the configured protocol. */
  call<I extends DescMessage, O extends DescMessage>(
    method: DescMethodUnary<I, O>,
    input: MessageInitShape<I>,
    options: PoolCallOptions,
  ): Promise<MessageShape<O>>;
  /** A server stream through connect-es, on sessions of its own (stream-sessions.ts): its messages arrive as they are sent. */
  stream<I extends DescMessage, O extends DescMessage>(
    method: DescMethodServerStreaming<I, O>,
    input: MessageInitShape<I>,
    options: PoolCallOptions,
  ): Promise<StreamResponse<I, O>>;
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
  /** A gRPC transport on the h2c session, for health checks. */
  readonly grpc: Transport;
  /** Lets go of the connections no call is using (a draining endpoint's). */
  closeIdle(): void;
  close(): void;
}

/**
 * `tlsOptions`: CA and client certificate for https, and `servername`, the
 * host name the endpoint's certificate is for (its URL names it by address).
 */
export function createEndpointPool(
  baseUrl: string,
  config: PoolConfig,
  tlsOptions: tls.ConnectionOptions = {},
): EndpointPool {
  // One session manager for the decoded calls, gRPC relays and health: one
  // connection, re-opened when it fails.
  const sessionManager = new Http2SessionManager(baseUrl, undefined, tlsOptions);
  const options = { baseUrl, httpVersion: "2" as const, sessionManager };
  // Relayed HTTP/1.1 calls: kept-alive connections, one call at a time each,
  // at most maxConnections; a call waiting for one is still ended by its
  // deadline. The agent's timeout closes idle connections only.
  const http1 = baseUrl.startsWith("https:") ? https : http;
  const agent = new http1.Agent({
    ...tlsOptions,
    keepAlive: true,
    maxSockets: config.maxConnections,
    timeout: Math.max(1, Math.floor(config.idleTimeoutMs / 2)),
  });
  const grpc = createGrpcTransport(options);
  const streams = new StreamSessions(baseUrl, config.protocol, tlsOptions);
  const decoding: Transport =
    config.protocol === "grpc" ? grpc : createConnectTransport({ ...options, useBinaryFormat: true });
  return {
    grpc,
    async call(method, input, { signal, timeoutMs, headers }) {
      const response = await decoding.unary(method, signal, timeoutMs, headers, input);
      return response.message;
    },
    stream: (method, input, options) => streams.stream(method, input, options),
    async exchange(path, headers, body, signal, httpVersion) {
      signal.throwIfAborted();
      if (httpVersion === "1.1") {
        const options = { method: "POST", agent, headers: { ...headers, "content-length": body.length }, signal };
        return readHttp1Answer(http1.request(baseUrl + path, options), body, signal);
      }
      const stream = await sessionManager.request("POST", path, headers, {});
      return readHttp2Answer(stream, body, signal, () => sessionManager.notifyResponseByteRead(stream));
    },
    closeIdle() {
      for (const sockets of Object.values(agent.freeSockets)) for (const socket of sockets ?? []) socket.destroy();
    },
    close() {
      agent.destroy();
      sessionManager.abort();
      streams.close();
    },
  };
}
