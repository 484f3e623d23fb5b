import type * as http from "node:http";
import * as http2 from "node:http2";
import type { AddressInfo, Socket } from "node:net";
import type { Duplex } from "node:stream";
import type * as tls from "node:tls";
import { REQUEST_ID_HEADER } from "../request-context.js";
import { DualProtocolServer, type RequestListener } from "./dual-protocol-server.js";
import { closeUnreadRequests } from "./early-answer.js";
import { fixGrpcResponse } from "./grpc-response.js";
import { tagRequestId } from "./request-id.js";
import { readTlsFiles, type TlsFiles, watchTlsFiles } from "./tls-files.js";

export interface HttpLimits {
  /** Time allowed for a connection's first bytes and for a request's headers (slowloris). */
  readonly headersTimeoutMs: number;
  /** Time allowed for a whole HTTP/1.1 request, body included. */
  readonly requestTimeoutMs: number;
  /** An idle keep-alive connection (or HTTP/2 session) is closed after this. */
  readonly idleTimeoutMs: number;
  /** HTTP/2 streams one connection may have open at once. */
  readonly maxConcurrentStreams: number;
  /** Connections open at once; more are refused. */
  readonly maxConnections: number;
  /** Largest request message the RPC handlers read (→ resource_exhausted). */
  readonly maxRequestBytes: number;
}

export interface HttpServerOptions {
  readonly host: string;
  readonly port: number;
  readonly listener: RequestListener;
  readonly limits: HttpLimits;
  /** HTTPS (ALPN h2 and http/1.1) with these files, picked up again when they change; cleartext when absent. */
  readonly tls?: TlsFiles | undefined;
  /** Told how a reload of the TLS files went. */
  readonly onTlsReload?: (err: unknown) => void;
}

export interface HttpServer {
  readonly port: number;
  /** Base URL, e.g. http://127.0.0.1:8080 (https with TLS). */
  readonly url: string;
  /**
   * Reads the TLS files again: new connections get the renewed certificate,
   * those already open keep theirs. Nothing without TLS.
   */
  reloadTls(): Promise<void>;
  /** Connections open now. */
  connectionCount(): number;
  /**
   * Asks clients to go elsewhere while still serving them: HTTP/2 sessions get
   * GOAWAY (their calls in flight finish; new ones come on a new connection),
   * HTTP/1.1 answers say Connection: close.
   */
  drain(): void;
  /**
   * Stops accepting, lets calls in flight finish (HTTP/2 sessions get GOAWAY,
   * HTTP/1.1 connections close once idle), and after `graceMs` closes whatever
   * is left.
   */
  close(graceMs: number): Promise<void>;
}

/** Node's own answers to HTTP/1.1 requests it cannot parse or time out, by its error codes. */
const CLIENT_ERROR_STATUS: Readonly<Record<string, string>> = {
  ERR_HTTP_REQUEST_TIMEOUT: "408 Request Timeout",
  HPE_HEADER_OVERFLOW: "431 Request Header Fields Too Large",
  HPE_CHUNK_EXTENSIONS_OVERFLOW: "413 Payload Too Large",
};

/**
 * What Node answers a request it could not parse (or that took too long), but
 * with a request id, as every answer has one, before it closes the connection.
 */
function answerClientError(err: Error & { code?: string }, socket: Duplex): void {
  const started = (socket as Duplex & { _httpMessage?: { headersSent?: boolean } })._httpMessage?.headersSent;
  if (!socket.writable || started === true) {
    socket.destroy();
    return;
  }
  const status = CLIENT_ERROR_STATUS[err.code ?? ""] ?? "400 Bad Request";
  socket.end(
    `HTTP/1.1 ${status}\r\n${REQUEST_ID_HEADER}: ${crypto.randomUUID()}\r\nconnection: close\r\ncontent-length: 0\r\n\r\n`,
    () => socket.destroy(),
  );
}

/** Sessions asked to leave (askToLeave): their real close, and when the client has seen the request. */
const leaving = new WeakMap<http2.ServerHttp2Session, { close: () => void; seen: Promise<void> }>();

/** Longest wait for a client to acknowledge a GOAWAY (its PING's answer) before the session closes anyway. */
const GOAWAY_ACK_TIMEOUT_MS = 1_000;
/**
 * And after the answer: nghttp2 sends a PING's answer ahead of the HEADERS it
 * had already queued, so a stream the client opened just before it saw the
 * GOAWAY can arrive after the answer.
 */
const GOAWAY_SETTLE_MS = 100;

/**
 * The graceful GOAWAY (RFC 9113 §6.8): the highest stream id, so that the
 * client opens no new stream here while the streams already on their way are
 * still taken, then a PING: once its answer is back (and a moment more),
 * every frame the client sent before it saw the GOAWAY has arrived, and the
 * session can close with nothing refused. Node's client closes its session when it gets a GOAWAY, and
 * Node's server closes its own when it gets the client's, with a GOAWAY that
 * names the last stream it has seen, refusing (REFUSED_STREAM) the streams
 * still on the wire, which connect-es clients report as failures: so the
 * session stays open until close() closes it.
 */
function askToLeave(session: http2.ServerHttp2Session): Promise<void> {
  const known = leaving.get(session);
  if (known !== undefined) return known.seen;
  if (session.destroyed || session.closed) return Promise.resolve();
  const close = session.close.bind(session) as () => void;
  session.close = () => {};
  session.goaway(http2.constants.NGHTTP2_NO_ERROR, 2 ** 31 - 1);
  const seen = new Promise<void>((resolve) => {
    const timer = setTimeout(resolve, GOAWAY_ACK_TIMEOUT_MS);
    timer.unref();
    const done = (): void => {
      clearTimeout(timer);
      resolve();
    };
    session.once("close", done);
    const settled = (): void => void setTimeout(done, GOAWAY_SETTLE_MS).unref();
    if (!session.ping(settled)) settled();
  });
  leaving.set(session, { close, seen });
  return seen;
}

/** Listens with HTTP/1.1 and h2c on one port, with the limits applied. */
export async function startHttpServer(options: HttpServerOptions): Promise<HttpServer> {
  const { limits } = options;
  // Draining or stopping: every HTTP/1.1 answer closes its connection.
  let closing = false;
  // Stopping: no more connections; idle ones go as soon as they are idle.
  let stopping = false;
  const listener: RequestListener = (req, res) => {
    // While shutting down, an HTTP/1.1 connection serves its current request and closes.
    if (closing && req.httpVersionMajor === 1) (res as http.ServerResponse).shouldKeepAlive = false;
    tagRequestId(req, res);
    closeUnreadRequests(req, res);
    fixGrpcResponse(req.headers["content-type"], res);
    options.listener(req, res);
  };
  const tlsFiles = options.tls;
  const server = new DualProtocolServer(listener, {
    firstBytesTimeoutMs: limits.headersTimeoutMs,
    ...(tlsFiles === undefined
      ? {}
      : { tls: { ...(await readTlsFiles(tlsFiles)), requestCert: tlsFiles.clientCaFile !== undefined } }),
    http1: {
      headersTimeout: limits.headersTimeoutMs,
      requestTimeout: limits.requestTimeoutMs,
      keepAliveTimeout: limits.idleTimeoutMs,
      connectionsCheckingInterval: Math.min(1000, limits.headersTimeoutMs),
    },
    http2: { settings: { maxConcurrentStreams: limits.maxConcurrentStreams } },
  });
  server.tcp.maxConnections = limits.maxConnections;

  const sockets = new Set<Socket>();
  server.tcp.on("connection", (socket: Socket) => {
    sockets.add(socket);
    socket.once("close", () => sockets.delete(socket));
  });
  const sessions = new Set<http2.ServerHttp2Session>();
  server.h2.on("session", (session) => {
    sessions.add(session);
    session.setTimeout(limits.idleTimeoutMs, () => session.close());
    // HTTP/2's counterpart of the headers timeout: a session whose first
    // request has not arrived whole in time (a HEADERS frame dripped, or none) is closed.
    const firstRequest = setTimeout(() => session.destroy(), limits.headersTimeoutMs);
    session.once("stream", () => clearTimeout(firstRequest));
    session.once("close", () => {
      clearTimeout(firstRequest);
      sessions.delete(session);
    });
  });
  server.h1.on("clientError", answerClientError);
  server.h1.on("request", (_req, res: http.ServerResponse) => {
    // Only once stopping: while draining, another client's connection that is
    // idle for a moment between two calls must not be cut under its next request.
    if (stopping) res.once("finish", () => server.h1.closeIdleConnections());
  });

  await new Promise<void>((resolve, reject) => {
    server.tcp.once("error", reject);
    server.tcp.listen(options.port, options.host, () => {
      server.tcp.off("error", reject);
      resolve();
    });
  });
  const { port } = server.tcp.address() as AddressInfo;
  const reloadTls = async (): Promise<void> => {
    if (tlsFiles === undefined) return;
    try {
      (server.tcp as tls.Server).setSecureContext(await readTlsFiles(tlsFiles));
      options.onTlsReload?.(undefined);
    } catch (err) {
      // A file half-written by its renewal: the certificate in use stays, and the next change is tried again.
      options.onTlsReload?.(err);
    }
  };
  const stopWatching = tlsFiles === undefined ? () => {} : watchTlsFiles(tlsFiles, () => void reloadTls());

  return {
    port,
    url: `${tlsFiles === undefined ? "http" : "https"}://${options.host.includes(":") ? `[${options.host}]` : options.host}:${port}`,
    reloadTls,
    connectionCount: () => sockets.size,
    drain() {
      closing = true;
      for (const session of sessions) void askToLeave(session);
    },
    async close(graceMs) {
      closing = true;
      stopping = true;
      stopWatching();
      const stopped = new Promise<void>((resolve) => server.tcp.close(() => resolve()));
      // Sessions that came while draining are asked to leave too, and each
      // closes once its client has seen that.
      for (const session of sessions) {
        void askToLeave(session).then(() => {
          if (!session.destroyed) (leaving.get(session)?.close ?? session.close).call(session);
        });
      }
      // Closes idle keep-alive connections and stops the timeout checks; the
      // callback's "not running" error only says h1 never listened itself.
      server.h1.close(() => {});
      const drained = new Promise<void>((resolve) => {
        const check = (): void => {
          if (sockets.size === 0) resolve();
        };
        for (const socket of sockets) socket.once("close", check);
        check();
      });
      let timer: NodeJS.Timeout | undefined;
      const graceOver = new Promise<void>((resolve) => {
        timer = setTimeout(resolve, graceMs);
      });
      await Promise.race([drained, graceOver]);
      clearTimeout(timer);
      for (const socket of sockets) socket.destroy();
      await stopped;
    },
  };
}
