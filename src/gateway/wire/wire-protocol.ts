import type { OutgoingHttpHeaders } from "node:http";
import type { ConnectError } from "@connectrpc/connect";
import type { RequestContext } from "../../shared/request-context.js";
import type { UpstreamAnswer } from "../upstream/answer.js";
import type { UpstreamHttpVersion } from "../upstream/endpoint-pool.js";
import { connectUnary } from "./connect-unary.js";
import { grpc } from "./grpc.js";
import { grpcWeb } from "./grpc-web.js";

/** A response the gateway writes itself, in the caller's protocol. */
export interface OwnResponse {
  readonly status: number;
  readonly headers: OutgoingHttpHeaders;
  readonly body?: Uint8Array;
  readonly trailers?: OutgoingHttpHeaders;
}

/**
 * What the byte relay must know of a unary RPC protocol to pass a call on
 * without decoding its message: where the deadline is, what a valid answer
 * looks like, and how to write an error of the gateway's own.
 */
export interface WireProtocol {
  /** Bytes a request body has beyond its message (gRPC's 5-byte envelope prefix). */
  readonly envelopeBytes: number;
  /** The request header naming the message's compression (content-encoding, grpc-encoding). */
  readonly encodingHeader: string;
  /** The request header with the caller's deadline. */
  readonly timeoutHeader: string;
  /** The caller's deadline in ms; undefined when none; an Error when malformed. */
  parseTimeout(value: string | null): number | undefined | Error;
  formatTimeout(ms: number): string;
  /** The HTTP version calls in this protocol travel to the API server in. */
  readonly upstreamHttp: UpstreamHttpVersion;
  /** Request headers of this protocol, passed on to the API server as they are. */
  readonly protocolHeaders: readonly string[];
  /**
   * Reads the API server's answer to a request sent with `contentType`:
   * undefined for a success, the error the API server sent (relayed as it is),
   * or throws the canonical error for an answer that is no RPC response.
   */
  readAnswer(answer: UpstreamAnswer, contentType: string, rc: RequestContext): ConnectError | undefined;
  /** The response for an error the gateway raised itself. */
  errorResponse(err: ConnectError, contentType: string): OwnResponse;
}

/** The protocol of a unary request with this content type, if the byte relay speaks it. */
export function wireProtocolOf(contentType: string | undefined): WireProtocol | undefined {
  if (contentType === undefined) return undefined;
  if (connectUnary.accepts(contentType)) return connectUnary;
  if (grpc.accepts(contentType)) return grpc;
  if (grpcWeb.accepts(contentType)) return grpcWeb;
  return undefined;
}
