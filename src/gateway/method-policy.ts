import type { DescMethod } from "@bufbuild/protobuf";
import { HeatmapService } from "../gen/bazbii/feed/v1/heatmap_service_pb.js";
import { UserPostService } from "../gen/bazbii/post/v1/user_post_service_pb.js";
import { errorCatalog } from "../shared/errors/catalog.js";
import { publicError } from "../shared/errors/public-error.js";
import type { RequestContext } from "../shared/request-context.js";

/** The services the gateway relays, as the API server serves them. */
export const relayedServices = [HeatmapService, UserPostService] as const;

/** Methods that act for someone: a call without a token never reaches the API server. */
const tokenRequired: ReadonlySet<DescMethod> = new Set([UserPostService.method.create, UserPostService.method.delete]);

export function needsToken(method: DescMethod): boolean {
  return tokenRequired.has(method);
}

/**
 * Methods whose request message the gateway reads (for validateBeforeUpstream);
 * the byte relay passes every other call on without decoding it.
 */
export function inspectsMessage(method: DescMethod): boolean {
  return method === HeatmapService.method.getHeatmap;
}

/**
 * Checks the gateway can make before any upstream call, with the very error
 * the API server would give, so a bad request costs no upstream round trip.
 */
export function validateBeforeUpstream(method: DescMethod, message: unknown, rc: RequestContext): void {
  if (method === HeatmapService.method.getHeatmap) {
    const { h3Res, within } = message as { h3Res: number; within: string };
    // With `within` set too, the API server, which knows the area rule, answers
    // with every violation of the request in one error.
    if ((h3Res < 0 || h3Res > 15) && within === "") {
      throw publicError(errorCatalog.H3_RES_OUT_OF_RANGE, rc, { params: { h3Res: String(h3Res) } });
    }
  }
}
