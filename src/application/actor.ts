import type { HandlerContext } from "@connectrpc/connect";
import { errorCatalog } from "../shared/errors/catalog.js";
import { publicError } from "../shared/errors/public-error.js";
import { requestContextOf } from "../shared/request-context.js";

/** The acting actor, as forwarded by the gateway; `unauthenticated` when there is none. */
export function requireActor(ctx: HandlerContext): string {
  const rc = requestContextOf(ctx.values);
  if (rc.actorId === undefined) throw publicError(errorCatalog.ACTOR_MISSING, rc);
  return rc.actorId;
}
