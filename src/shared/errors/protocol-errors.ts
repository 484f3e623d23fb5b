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
      const spec =
        err.code === Code.InvalidArgument
          ? errorCatalog.PROTOCOL_ERROR
          : { ...errorCatalog.PROTOCOL_ERROR, code: err.code, badRequest: undefined };
      // connect-es names the field it could not decode: "cannot decode field pkg.Message.h3_res from JSON".
      const field = /cannot decode field [\w.]+\.(\w+) from/.exec(err.rawMessage)?.[1] ?? "";
      const described = publicError(spec as typeof errorCatalog.PROTOCOL_ERROR, rc, {
        params: { detail: err.rawMessage, field },
      });
      err.details.push(...described.details);
      report(err);
    },
    { once: true },
  );
}
