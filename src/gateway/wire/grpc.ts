import {
  contentTypeJson,
  contentTypeProto,
  parseContentType,
  parseTimeout,
  setTrailerStatus,
} from "@connectrpc/connect/protocol-grpc";
import { headerValue } from "../../shared/http/header-value.js";
import type { RequestContext } from "../../shared/request-context.js";
import type { UpstreamAnswer } from "../upstream/answer.js";
import { fromHttpStatus, upstreamProtocolError } from "../upstream/upstream-errors.js";
import { grpcStatusOf } from "./grpc-status.js";
import type { WireProtocol } from "./wire-protocol.js";

/** gRPC over HTTP/2: an enveloped message, the status in trailers (or alone, "Trailers-Only"). */
export const grpc = {
  accepts: (contentType: string) => parseContentType(contentType) !== undefined,
  encodingHeader: "grpc-encoding",
  envelopeBytes: 5,
  upstreamHttp: "2",
  timeoutHeader: "grpc-timeout",
  parseTimeout(value: string | null) {
    const { timeoutMs, error } = parseTimeout(value, Number.MAX_SAFE_INTEGER);
    return error ?? timeoutMs;
  },
  // At most 8 digits (PROTOCOL-HTTP2.md); the gateway's deadlines are far below 10^8 ms.
  formatTimeout: (ms: number) => `${ms}m`,
  protocolHeaders: ["content-type", "grpc-encoding", "te"],

  readAnswer(answer, contentType, rc) {
    checkEnvelopedAnswer(answer, parseContentType, contentType, rc);
    const trailersOnly = answer.trailers === undefined && answer.body.length === 0;
    const error = grpcStatusOf(trailersOnly ? answer.headers : answer.trailers, rc);
    if (error === undefined && !isEnvelopes(answer.body)) {
      throw upstreamProtocolError(rc, new Error("a gRPC answer whose body is not enveloped messages"));
    }
    return error;
  },

  errorResponse(err, contentType) {
    const binary = parseContentType(contentType)?.binary !== false;
    const trailers = Object.fromEntries(setTrailerStatus(new Headers(), err));
    return { status: 200, headers: { "content-type": binary ? contentTypeProto : contentTypeJson }, trailers };
  },
} satisfies WireProtocol & { accepts(contentType: string): boolean };

/**
 * What gRPC and gRPC-Web answers share: HTTP 200 (any other status came from
 * something that does not speak gRPC) and a content type of the request's codec.
 */
export function checkEnvelopedAnswer(
  answer: UpstreamAnswer,
  parse: (contentType: string | null) => { binary: boolean } | undefined,
  contentType: string,
  rc: RequestContext,
): void {
  const answerType = headerValue(answer.headers, "content-type");
  if (answer.status !== 200) {
    throw fromHttpStatus(
      answer.status,
      headerValue(answer.headers, "retry-after"),
      rc,
      new Error(`HTTP ${answer.status} (${answerType}) from a gRPC peer`),
    );
  }
  if (parse(answerType ?? null)?.binary !== parse(contentType)?.binary) {
    throw upstreamProtocolError(rc, new Error(`answer of content-type ${answerType} to a ${contentType} request`));
  }
}

/**
 * The body cut into its length-prefixed messages (PROTOCOL-HTTP2.md), or
 * undefined when the framing is broken. (connect-es keeps its decoder private.)
 */
export function splitEnvelopes(body: Buffer): { flags: number; data: Buffer }[] | undefined {
  const envelopes: { flags: number; data: Buffer }[] = [];
  for (let pos = 0; pos < body.length; ) {
    if (body.length - pos < 5) return undefined;
    const end = pos + 5 + body.readUInt32BE(pos + 1);
    if (end > body.length) return undefined;
    envelopes.push({ flags: body[pos] as number, data: body.subarray(pos + 5, end) });
    pos = end;
  }
  return envelopes;
}

function isEnvelopes(body: Buffer): boolean {
  return splitEnvelopes(body) !== undefined;
}
