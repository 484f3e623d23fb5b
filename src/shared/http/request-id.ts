import { acceptRequestId, REQUEST_ID_HEADER } from "../request-context.js";
import type { RequestListener } from "./dual-protocol-server.js";
import { headerValue } from "./header-value.js";

/**
 * Gives every request its id before anything else sees it: the caller's
 * `x-request-id` when well-formed, else a new one, written back into the
 * request's headers (so every path that reads it agrees) and into the answer's,
 * whatever answers: an RPC, a health check, a 404 or a 415.
 */
export function tagRequestId(req: Parameters<RequestListener>[0], res: Parameters<RequestListener>[1]): void {
  const requestId = acceptRequestId(headerValue(req.headers, REQUEST_ID_HEADER) ?? null);
  req.headers[REQUEST_ID_HEADER] = requestId;
  res.setHeader(REQUEST_ID_HEADER, requestId);
}
