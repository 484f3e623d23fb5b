import * as http from "node:http";
import * as http2 from "node:http2";
import * as net from "node:net";
import * as tls from "node:tls";

/** Every HTTP/2 connection without TLS ("prior knowledge", RFC 9113 §3.3) starts with these bytes. */
const HTTP2_PREFACE = Buffer.from("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n");

export type RequestListener = (
  req: http.IncomingMessage | http2.Http2ServerRequest,
  res: http.ServerResponse | http2.Http2ServerResponse,
) => void;

export interface DualProtocolServerOptions {
  readonly http1?: http.ServerOptions;
  readonly http2?: http2.ServerOptions;
  /** A connection that has not sent its first bytes (the HTTP/2 preface, if it sends one) within this time is closed. */
  readonly firstBytesTimeoutMs: number;
  /**
   * TLS instead of cleartext: ALPN picks HTTP/2 or HTTP/1.1, TLS 1.2 at least;
   * with `ca` and `requestCert`, only clients with a certificate it signed get
   * through the handshake (mutual TLS).
   */
  readonly tls?: tls.TlsOptions;
}

/**
 * HTTP/1.1 and cleartext HTTP/2 (h2c) on one port, as Connect, gRPC and
 * gRPC-Web clients all need: browsers speak HTTP/1.1, gRPC clients h2c. With
 * TLS, ALPN says which one a connection speaks.
 *
 * Node serves h2c only on a port of its own. This routes each new connection
 * by its first bytes to an http.Server or an http2 server that never listen
 * themselves. Written here rather than taken from httpolyglot because that
 * library turns off the native stream path of every HTTP/2 socket (it wraps
 * them in a JS stream), which costs on the gateway's hottest path; Node ≥ 16
 * replays bytes already read from the socket into the HTTP/2 session itself.
 */
export class DualProtocolServer {
  readonly tcp: net.Server;
  readonly h1: http.Server;
  readonly h2: http2.Http2Server;

  constructor(listener: RequestListener, options: DualProtocolServerOptions) {
    this.h1 = http.createServer(options.http1 ?? {}, listener);
    this.h2 = http2.createServer(options.http2 ?? {}, listener);
    const tlsOptions = options.tls;
    this.tcp =
      tlsOptions === undefined
        ? net.createServer({ noDelay: true }, (socket) => this.route(socket, options.firstBytesTimeoutMs))
        : tls.createServer(
            {
              ...tlsOptions,
              noDelay: true,
              ALPNProtocols: ["h2", "http/1.1"],
              minVersion: "TLSv1.2",
              handshakeTimeout: options.firstBytesTimeoutMs,
              rejectUnauthorized: tlsOptions.requestCert === true,
            },
            (socket) => {
              // The HTTP/2 server reads a TLS socket as it reads a plain one.
              if (socket.alpnProtocol === "h2") this.h2.emit("connection", socket);
              else this.h1.emit("connection", socket);
            },
          );
    // http.Server tracks its connections, and enforces headersTimeout and
    // requestTimeout, from its 'listening' event on. It never listens itself here.
    this.tcp.on("listening", () => this.h1.emit("listening"));
  }

  private route(socket: net.Socket, timeoutMs: number): void {
    let seen: Buffer = Buffer.alloc(0);
    const onError = (): void => {
      socket.destroy();
    };
    // A deadline, not an idle timeout: a peer dripping the preface a byte at a
    // time must not hold the connection for ever.
    const deadline = setTimeout(onError, timeoutMs);
    const onData = (chunk: Buffer): void => {
      seen = seen.length === 0 ? chunk : Buffer.concat([seen, chunk]);
      const n = Math.min(seen.length, HTTP2_PREFACE.length);
      const maybeHttp2 = seen.subarray(0, n).equals(HTTP2_PREFACE.subarray(0, n));
      if (maybeHttp2 && n < HTTP2_PREFACE.length) return; // wait for the whole preface
      socket.off("data", onData);
      socket.off("error", onError);
      clearTimeout(deadline);
      // Put the bytes back for the server that takes over. The HTTP/2 session
      // reads them itself; the HTTP/1 parser needs the stream flowing again.
      socket.pause();
      socket.unshift(seen);
      if (maybeHttp2) {
        this.h2.emit("connection", socket);
      } else {
        this.h1.emit("connection", socket);
        socket.resume();
      }
    };
    socket.on("error", onError);
    socket.on("data", onData);
    socket.once("close", () => clearTimeout(deadline));
  }
}
