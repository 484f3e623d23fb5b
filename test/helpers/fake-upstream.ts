import type * as http from "node:http";
import * as http2 from "node:http2";
import type { AddressInfo, Socket } from "node:net";
import { DualProtocolServer } from "../../src/shared/http/dual-protocol-server.js";

/** One request to the fake upstream, in whichever HTTP version it came. */
export interface PeerCall {
  /** The request's headers; `:path` is there in both versions. */
  readonly headers: http.IncomingHttpHeaders;
  readonly httpVersion: "1.1" | "2";
  readonly req: http.IncomingMessage | http2.Http2ServerRequest;
  readonly res: http.ServerResponse | http2.Http2ServerResponse;
  /** Answers with a status, headers and a whole body. */
  respond(status: number, headers: http.OutgoingHttpHeaders, body?: string | Uint8Array): void;
  /** Sends the status, headers and the first bytes of the body, and no more; resolves once they are written. */
  startAnswer(status: number, headers: http.OutgoingHttpHeaders, chunk: Uint8Array): Promise<void>;
  /** Gives up on the call: RST_STREAM CANCEL over HTTP/2, the connection closed over HTTP/1.1. */
  cancel(): void;
  /**
   * Drops the connection under the call, as a crashed process's does: a TCP
   * RST over HTTP/1.1; over HTTP/2 the peer sees a FIN (the session took the
   * socket over from the server that routed it by its first bytes).
   */
  dropConnection(): void;
  /** How the call ended, if not with a whole answer: "RST_STREAM <code>" or "connection closed". */
  readonly ended: Promise<string>;
  /** When (performance.now()) the TCP connection the call came on closed. */
  readonly connectionClosed: Promise<number>;
}

export type PeerBehaviour = (call: PeerCall) => void;

/**
 * A real server standing where the API server should be, speaking HTTP/1.1
 * and h2c on one port as the API server does, doing whatever a test tells
 * it: hanging, resetting, answering with HTML or garbage. It records the
 * headers of every request it gets, but for grpc.health.v1, which it answers
 * SERVING itself as the API server would (the gateway watches every endpoint's
 * health), unless `withHealth` is false.
 */
export async function startFakeUpstream(
  behaviour: PeerBehaviour,
  withHealth = true,
): Promise<{
  url: string;
  requests: http.IncomingHttpHeaders[];
  close(): Promise<void>;
}> {
  const requests: http.IncomingHttpHeaders[] = [];
  const server = new DualProtocolServer(
    (req, res) => {
      if (withHealth && req.url?.startsWith("/grpc.health.v1.Health/") && "stream" in res) {
        answerServing(req.url.endsWith("/Watch"), res);
        return;
      }
      const call = peerCall(req, res);
      requests.push(call.headers);
      behaviour(call);
    },
    { firstBytesTimeoutMs: 10_000 },
  );
  const sessions = new Set<http2.ServerHttp2Session>();
  server.h2.on("session", (s) => {
    sessions.add(s);
    s.on("close", () => sessions.delete(s));
  });
  await new Promise<void>((resolve) => server.tcp.listen(0, "127.0.0.1", resolve));
  const { port } = server.tcp.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    async close() {
      for (const s of sessions) s.destroy();
      server.h1.closeAllConnections();
      await new Promise<void>((resolve) => server.tcp.close(() => resolve()));
    },
  };
}

function peerCall(
  req: http.IncomingMessage | http2.Http2ServerRequest,
  res: http.ServerResponse | http2.Http2ServerResponse,
): PeerCall {
  const stream = "stream" in res ? res.stream : undefined;
  stream?.on("error", () => {});
  req.socket?.on("error", () => {});
  const ended = new Promise<string>((resolve) => {
    res.once("close", () => {
      if (stream !== undefined && stream.rstCode !== http2.constants.NGHTTP2_NO_ERROR) {
        resolve(`RST_STREAM ${stream.rstCode === http2.constants.NGHTTP2_CANCEL ? "CANCEL" : stream.rstCode}`);
      } else if (!res.writableFinished) resolve("connection closed");
    });
  });
  const socket = stream === undefined ? req.socket : stream.session?.socket;
  const connectionClosed = new Promise<number>((resolve) => {
    socket?.once("close", () => resolve(performance.now()));
  });
  return {
    headers: stream === undefined ? { ...req.headers, ":path": req.url } : req.headers,
    httpVersion: stream === undefined ? "1.1" : "2",
    req,
    res,
    respond(status, headers, body) {
      const answer = res as http.ServerResponse;
      answer.writeHead(status, headers);
      if (body === undefined) answer.end();
      else answer.end(body);
    },
    startAnswer(status, headers, chunk) {
      const answer = res as http.ServerResponse;
      answer.writeHead(status, headers);
      return new Promise((resolve) => answer.write(chunk, () => resolve()));
    },
    cancel() {
      if (stream !== undefined) stream.close(http2.constants.NGHTTP2_CANCEL);
      else req.socket.destroy();
    },
    dropConnection() {
      (socket as Socket | undefined)?.resetAndDestroy();
    },
    ended,
    connectionClosed,
  };
}

/** grpc.health.v1 SERVING, over gRPC: Check answers once; Watch says it and stays open. */
function answerServing(watch: boolean, res: http2.Http2ServerResponse): void {
  res.stream.on("error", () => {});
  res.writeHead(200, { "content-type": "application/grpc" });
  // HealthCheckResponse{status: SERVING (1)}, in a gRPC envelope.
  res.write(Buffer.from([0, 0, 0, 0, 2, 8, 1]));
  if (watch) return;
  res.addTrailers({ "grpc-status": "0" });
  res.end();
}
