import type * as http from "node:http";
import type * as http2 from "node:http2";
import type { AddressInfo, Socket } from "node:net";
import type { Duplex } from "node:stream";
import { REQUEST_ID_HEADER } from "../request-context.js";
import { DualProtocolServer, type RequestListener } from "./dual-protocol-server.js";
import { closeUnreadRequests } from "./early-answer.js";
import { fixGrpcResponse } from "./grpc-response.js";
import { tagRequestId } from "./request-id.js";

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
}

export interface HttpServer {
  readonly port: number;
  /** Base URL, e.g. http://127.0.0.1:8080. */
  readonly url: string;
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

/** Listens with HTTP/1.1 and h2c on one port, with the limits applied. */
export async function startHttpServer(options: HttpServerOptions): Promise<HttpServer> {
  const { limits } = options;
  let closing = false;
  const listener: RequestListener = (req, res) => {
    // While shutting down, an HTTP/1.1 connection serves its current request and closes.
    if (closing && req.httpVersionMajor === 1) (res as http.ServerResponse).shouldKeepAlive = false;
    tagRequestId(req, res);
    closeUnreadRequests(req, res);
    fixGrpcResponse(req.headers["content-type"], res);
    options.listener(req, res);
  };
  const server = new DualProtocolServer(listener, {
    firstBytesTimeoutMs: limits.headersTimeoutMs,
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
    if (closing) res.once("finish", () => server.h1.closeIdleConnections());
  });

  await new Promise<void>((resolve, reject) => {
    server.tcp.once("error", reject);
    server.tcp.listen(options.port, options.host, () => {
      server.tcp.off("error", reject);
      resolve();
    });
  });
  const { port } = server.tcp.address() as AddressInfo;

  return {
    port,
    url: `http://${options.host.includes(":") ? `[${options.host}]` : options.host}:${port}`,
    connectionCount: () => sockets.size,
    drain() {
      closing = true;
      for (const session of sessions) session.close();
    },
    async close(graceMs) {
      closing = true;
      const stopped = new Promise<void>((resolve) => server.tcp.close(() => resolve()));
      for (const session of sessions) session.close();
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
