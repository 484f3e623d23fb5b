import { Code, ConnectError } from "@connectrpc/connect";
import { errorCatalog as c } from "../../shared/errors/catalog.js";
import type { ErrorSpec } from "../../shared/errors/error-spec.js";
import { publicError, reasonOf, withoutStack } from "../../shared/errors/public-error.js";
import type { RequestContext } from "../../shared/request-context.js";
import { parseRetryAfter } from "../../shared/retry-after.js";
import { REFUSED_STREAM_CODE } from "./answer.js";

/**
 * Error metadata an upstream error may carry through the gateway. Everything
 * else (content-type, grpc-status, content-length, ...) belongs to the hop it
 * came on and would corrupt the next one (connect-es #1582).
 */
const RELAYED_ERROR_HEADERS = ["retry-after", "grpc-retry-pushback-ms"] as const;

/**
 * Failures before the request reached the application: nothing listening, no
 * route, or an HTTP/2 stream the server refused (REFUSED_STREAM, or past its
 * GOAWAY). The request certainly was not processed.
 */
const NOT_SENT = new Set([
  "ECONNREFUSED",
  "ENOTFOUND",
  "EAI_AGAIN",
  "EHOSTUNREACH",
  "ENETUNREACH",
  "EADDRNOTAVAIL",
  REFUSED_STREAM_CODE,
  "ERR_HTTP2_GOAWAY_SESSION",
]);

/** connect-es's message for a response that had an HTTP error status and no RPC status. */
const HTTP_STATUS_ONLY = /^HTTP (\d{3})$/;

export interface UpstreamCallInfo {
  readonly timeoutMs: number;
  /** Why the caller's side ended (it went away, or its own deadline passed), if it did. */
  readonly callerEnded: unknown;
}

/**
 * What the gateway answers when its upstream call failed:
 * - an error the API server sent (an RPC status on the wire) is relayed with
 *   its code, message and details unchanged, and allow-listed metadata only;
 * - any failure of the path itself gets its canonical code (ERROR-MODEL.md) and
 *   the gateway's own details; the raw cause goes to the log, never the caller.
 */
export function fromUpstreamFailure(thrown: unknown, rc: RequestContext, call: UpstreamCallInfo): ConnectError {
  const err = ConnectError.from(thrown);
  if (err.isWireError) return relayed(err);
  if (reasonOf(err) !== undefined) return err; // canonical already (an answer that is no RPC response)

  if (call.callerEnded !== undefined) {
    const spec = ConnectError.from(call.callerEnded).code === Code.DeadlineExceeded ? c.DEADLINE_EXCEEDED : c.CANCELED;
    return publicError(spec, rc, { cause: err });
  }
  if (err.code === Code.DeadlineExceeded) {
    return publicError(c.UPSTREAM_DEADLINE_EXCEEDED, rc, { params: { timeoutMs: String(call.timeoutMs) }, cause: err });
  }
  const nodeCodes = nodeErrorCodes(err);
  if (nodeCodes.some((code) => NOT_SENT.has(code)) || /REFUSED_STREAM/.test(err.rawMessage)) {
    return publicError(c.UPSTREAM_UNREACHABLE, rc, { cause: err });
  }

  const httpStatus = HTTP_STATUS_ONLY.exec(err.rawMessage)?.[1];
  if (httpStatus !== undefined) return fromHttpStatus(Number(httpStatus), err.metadata.get("retry-after"), rc, err);

  if (
    nodeCodes.length > 0 ||
    err.code === Code.Unavailable ||
    err.code === Code.Aborted ||
    err.code === Code.Canceled
  ) {
    // Reset, broken pipe, HTTP/2 stream or session torn down: the connection
    // failed after the request may have reached the server.
    return publicError(c.UPSTREAM_CONNECTION_LOST, rc, { cause: err });
  }
  return upstreamProtocolError(rc, err);
}

/**
 * A 200 with a body that does not decode, a wrong content type, no grpc-status:
 * the peer does not speak the protocol.
 */
export function upstreamProtocolError(rc: RequestContext, cause: unknown): ConnectError {
  return publicError(c.UPSTREAM_PROTOCOL_ERROR, rc, { cause });
}

/** The HTTP status table of ERROR-MODEL.md, for answers that carry no RPC status. */
export function fromHttpStatus(
  status: number,
  retryAfter: string | null | undefined,
  rc: RequestContext,
  cause: unknown,
): ConnectError {
  let spec: ErrorSpec;
  switch (status) {
    case 400:
      spec = c.UPSTREAM_PROTOCOL_ERROR;
      break;
    case 401:
      spec = c.UPSTREAM_HTTP_UNAUTHENTICATED;
      break;
    case 403:
      spec = c.UPSTREAM_HTTP_PERMISSION_DENIED;
      break;
    case 404:
      spec = c.UPSTREAM_METHOD_NOT_FOUND;
      break;
    case 429:
    case 502:
    case 503:
    case 504:
      spec = c.UPSTREAM_UNAVAILABLE;
      break;
    default:
      spec = c.UPSTREAM_HTTP_ERROR;
  }
  const retryAfterMs = parseRetryAfter(retryAfter ?? null);
  return publicError(spec, rc, {
    params: { httpStatus: String(status) },
    cause,
    ...(retryAfterMs === undefined ? {} : { retryDelayMs: retryAfterMs }),
  });
}

/** An error the API server sent, to pass on: code, message and details as they came, allowed metadata only. */
export function relayed(err: ConnectError): ConnectError {
  const headers = new Headers();
  for (const name of RELAYED_ERROR_HEADERS) {
    const value = err.metadata.get(name);
    if (value !== null) headers.set(name, value);
  }
  // A fresh error (not marked as from the wire) so the allowed headers are sent;
  // the details are the received bytes, passed on as they are.
  const out = withoutStack(err.code, () => new ConnectError(err.rawMessage, err.code, headers));
  out.details = err.details;
  return out;
}

/** How an attempt that did not get an answer failed, for the decision to try another endpoint. */
export type AttemptFailure = "not_sent" | "lost" | "final";

/** Of a canonical error from fromUpstreamFailure: never reached the application, lost on the way, or neither. */
export function attemptFailureOf(err: unknown): AttemptFailure {
  const reason = reasonOf(err);
  if (reason === c.UPSTREAM_UNREACHABLE.reason) return "not_sent";
  if (reason === c.UPSTREAM_CONNECTION_LOST.reason) return "lost";
  return "final";
}

function nodeErrorCodes(err: ConnectError): string[] {
  const codes: string[] = [];
  for (let e: unknown = err.cause, depth = 0; e instanceof Error && depth < 8; e = e.cause, depth++) {
    if ("code" in e && typeof e.code === "string") codes.push(e.code);
  }
  return codes;
}
