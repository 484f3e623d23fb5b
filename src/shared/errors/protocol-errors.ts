import type { HandlerContext } from "@connectrpc/connect";
import { Code, ConnectError } from "@connectrpc/connect";
import type { RequestContext } from "../request-context.js";
import { errorCatalog } from "./catalog.js";
import { publicError, reasonOf } from "./public-error.js";

/**
 * Errors connect-es raises itself, before any handler or interceptor runs (a
 * body that does not decode, a malformed timeout header, a message over the
 * size limit, the server-side deadline), carry no details. connect-es aborts
 * the call's context with the error just before it serializes it, so this
 * listener adds ErrorInfo (PROTOCOL_ERROR), RequestInfo and LocalizedMessage
 * (and BadRequest for invalid_argument) to that very error object, and hands
 * it to `report` for logging.
 */
export function detailProtocolErrors(
  ctx: HandlerContext,
  rc: RequestContext,
  report: (err: ConnectError) => void,
): void {
  ctx.signal.addEventListener(
    "abort",
    () => {
      const err: unknown = ctx.signal.reason;
      if (!(err instanceof ConnectError) || reasonOf(err) !== undefined) return;
      // connect-es names the field it could not decode: "cannot decode field pkg.Message.h3_res from JSON".
      const field = /cannot decode field [\w.]+\.(\w+) from/.exec(err.rawMessage)?.[1] ?? "";
      err.details.push(...protocolError(err.code, err.rawMessage, rc, field).details);
      report(err);
    },
    { once: true },
  );
}

/**
 * The public error for a request that breaks the protocol's rules (PROTOCOL_ERROR,
 * with the code the rule calls for: a message over the size limit is
 * resource_exhausted); BadRequest names `field` for invalid_argument only.
 */
export function protocolError(code: Code, detail: string, rc: RequestContext, field = ""): ConnectError {
  const spec =
    code === Code.InvalidArgument
      ? errorCatalog.PROTOCOL_ERROR
      : { ...errorCatalog.PROTOCOL_ERROR, code, badRequest: undefined };
  return publicError(spec as typeof errorCatalog.PROTOCOL_ERROR, rc, { params: { detail, field } });
}
