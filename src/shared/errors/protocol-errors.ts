import { base64Decode } from "@bufbuild/protobuf/wire";
import type { HandlerContext } from "@connectrpc/connect";
import { Code, ConnectError } from "@connectrpc/connect";
import type { RequestContext } from "../request-context.js";
import { errorCatalog } from "./catalog.js";
import { publicError, reasonOf } from "./public-error.js";

/**
 * connect-es's words for a request message it could not decode or decompress,
 * which it raises as `internal` (or `unimplemented` for a unary call with no
 * message or two). The caller sent them, so they are `invalid_argument`, as connect-go
 * answers an undecodable message: nothing on the server is broken, and an
 * anonymous caller must not be able to fire the internal-error alert.
 */
const UNDECODABLE_REQUEST = [
  /^parse binary: /,
  /^decompression failed$/,
  /^received compressed envelope, but do not know how to decompress/,
  /^received parsed JSON request body, but content-type indicates binary format/,
  /^protocol error: (missing|received extra) input message/,
];

/**
 * Errors connect-es raises itself, before any handler or interceptor runs (a
 * body that does not decode, a malformed timeout header, a message over the
 * size limit), carry no details. connect-es hands every error it is about to
 * answer to the handler context's `abort` first, so this wraps `abort` to give
 * that very error object the code the caller's fault calls for (undecodable →
 * invalid_argument), ErrorInfo (PROTOCOL_ERROR), RequestInfo and
 * LocalizedMessage (and BadRequest for invalid_argument), and to hand it to
 * `report` for logging. (The context's signal would tell only the first
 * reason: a deadline that passed before the body was decoded hid the decoding
 * error that was then answered.) Errors of our own already carry a reason.
 */
export function detailProtocolErrors(
  ctx: HandlerContext,
  rc: RequestContext,
  report: (err: ConnectError) => void,
): void {
  const controller = ctx as HandlerContext & { abort(reason?: unknown): void };
  const abort = controller.abort.bind(controller);
  controller.abort = (reason?: unknown) => {
    if (reason instanceof ConnectError && reasonOf(reason) === undefined) {
      if (UNDECODABLE_REQUEST.some((words) => words.test(reason.rawMessage))) {
        (reason as { code: Code }).code = Code.InvalidArgument;
      }
      // connect-es names the field it could not decode: "cannot decode field pkg.Message.h3_res from JSON".
      const field = /cannot decode field [\w.]+\.(\w+) from/.exec(reason.rawMessage)?.[1] ?? "";
      reason.details.push(...protocolError(reason.code, reason.rawMessage, rc, field).details);
      report(reason);
    }
    abort(reason);
  };
}

/**
 * Refuses a Connect GET whose `message` parameter is not base64 (reported, then
 * thrown), before connect-es decodes it: connect-es's decoder throws a plain
 * Error there, which it answers as a bare "internal error" without details.
 */
export function checkConnectGet(ctx: HandlerContext, rc: RequestContext, report: (err: ConnectError) => void): void {
  if (ctx.requestMethod !== "GET") return;
  const query = new URL(ctx.url, "http://localhost").searchParams;
  if (query.get("base64") !== "1") return;
  try {
    base64Decode(query.get("message") ?? "");
  } catch {
    const err = protocolError(Code.InvalidArgument, "the message query parameter is not valid base64", rc);
    report(err);
    throw err;
  }
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
