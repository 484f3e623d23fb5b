import type { IncomingHttpHeaders } from "node:http";
import { errorCatalog } from "../shared/errors/catalog.js";
import { publicError } from "../shared/errors/public-error.js";
import { headerValue } from "../shared/http/header-value.js";
import { logmsg } from "../shared/logging/log-catalog.js";
import type { Logger } from "../shared/logging/logger.js";
import { newRequestContext } from "../shared/request-context.js";
import { connectUnary } from "./wire/connect-unary.js";
import { wireProtocolOf } from "./wire/wire-protocol.js";
import { type AnyResponse, writeOwnError } from "./wire/write-response.js";

/**
 * Answers an RPC to a method the gateway does not serve with `unimplemented`
 * (METHOD_NOT_FOUND) in the caller's own protocol, with a request id, as gRPC
 * and Connect clients expect, instead of a bare HTTP 404 they can only report
 * as "HTTP status 404". Returns false for a request that is no RPC.
 */
export function answerUnknownMethod(
  req: {
    readonly headers: IncomingHttpHeaders;
    readonly url?: string | undefined;
    readonly method?: string | undefined;
  },
  res: object,
  log: Logger,
): boolean {
  const contentType = headerValue(req.headers, "content-type");
  const [path = "/", query = ""] = (req.url ?? "/").split("?", 2);
  const isConnectGet = req.method === "GET" && new URLSearchParams(query).get("connect") === "v1";
  const protocol = isConnectGet ? connectUnary : req.method === "POST" ? wireProtocolOf(contentType) : undefined;
  if (protocol === undefined) return false;
  const header = (name: string) => headerValue(req.headers, name) ?? null;
  const rc = newRequestContext(log, path.slice(1), header);
  const reason = errorCatalog.METHOD_NOT_FOUND.reason;
  const err = publicError(errorCatalog.METHOD_NOT_FOUND, rc, { params: { path } });
  logmsg.RequestRejected.emitError(rc.log, err, { reason });
  writeOwnError(res as AnyResponse, protocol, contentType ?? "application/json", err);
  return true;
}
