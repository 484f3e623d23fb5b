import type * as http from "node:http";
import * as http2 from "node:http2";
import type { RequestListener } from "./dual-protocol-server.js";

type Request = Parameters<RequestListener>[0];
type Response = Parameters<RequestListener>[1];

/**
 * Keeps a connection usable, or closes it at once, when an answer goes out
 * before its request's body was read in full (a refusal: message too large,
 * undecodable, unauthenticated...).
 *
 * - HTTP/1.1: the rest of the body is still on its way, and whoever stopped
 *   reading it left the socket paused, so the next request on the connection
 *   would wait behind it until REQUEST_TIMEOUT_MS (408). The answer says
 *   `Connection: close` instead, what is left of the body is read and dropped,
 *   and Node closes the connection once the answer is out.
 * - HTTP/2: the stream's unread data would hold the session's flow-control
 *   window; the stream is reset with NO_ERROR once the answer is complete, as
 *   RFC 9113 §8.1 provides for a response sent before the request ended.
 */
export function closeUnreadRequests(req: Request, res: Response): void {
  if (req.httpVersionMajor === 1) {
    // A request without a body is complete once its headers are; Node marks it
    // so only after the listener returns.
    if (req.headers["transfer-encoding"] === undefined && Number(req.headers["content-length"] ?? 0) === 0) return;
    const h1 = res as http.ServerResponse;
    const writeHead = h1.writeHead;
    h1.writeHead = function (this: http.ServerResponse, ...args: Parameters<typeof writeHead>) {
      if (!req.readableEnded) {
        this.shouldKeepAlive = false;
        req.resume();
      }
      return writeHead.apply(this, args);
    } as typeof writeHead;
    return;
  }
  const stream = (req as http2.Http2ServerRequest).stream;
  if (stream.endAfterHeaders) return;
  res.once("finish", () => {
    if (!stream.readableEnded && !stream.destroyed) stream.close(http2.constants.NGHTTP2_NO_ERROR);
  });
}
