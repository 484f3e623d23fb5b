import type { DescField, DescMethod } from "@bufbuild/protobuf";
import { HeatmapService } from "../gen/bazbii/feed/v1/heatmap_service_pb.js";
import { UserPostService } from "../gen/bazbii/post/v1/user_post_service_pb.js";
import { bazbiiServices } from "../gen/bazbii_services.js";
import { errorCatalog } from "../shared/errors/catalog.js";
import { publicError } from "../shared/errors/public-error.js";
import type { RequestContext } from "../shared/request-context.js";
import { retryPolicies, UNKNOWN_METHOD_POLICY } from "../shared/retry-policies.js";

/** The services the gateway relays: every service of the schema (generated), as the API server serves them. */
export const relayedServices = bazbiiServices;

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
  return method === HeatmapService.method.getHeatmap || method === HeatmapService.method.watchHeatmap;
}

/**
 * Checks the gateway can make before any upstream call, with the very error
 * the API server would give, so a bad request costs no upstream round trip.
 */
export function validateBeforeUpstream(method: DescMethod, message: unknown, rc: RequestContext): void {
  if (method === HeatmapService.method.getHeatmap || method === HeatmapService.method.watchHeatmap) {
    const { h3Res, within } = message as { h3Res: number; within: string };
    // With `within` set too, the API server, which knows the area rule, answers
    // with every violation of the request in one error.
    if ((h3Res < 0 || h3Res > 15) && within === "") {
      throw publicError(errorCatalog.H3_RES_OUT_OF_RANGE, rc, { params: { h3Res: String(h3Res) } });
    }
  }
}

/**
 * When the gateway may send a call again after it may have reached the
 * application (its connection lost, or an unavailable answer), from the
 * schema: always for NO_SIDE_EFFECTS and IDEMPOTENT methods; for a keyed
 * method (Create) only when its idempotency key field is set, which `keySet`
 * tells for this call; never for a method marked never, or any other.
 */
export interface RepeatRule {
  readonly always: boolean;
  /** The idempotency key field, when the method is safe to repeat only with it set. */
  readonly keyField: DescField | undefined;
}

export function repeatRuleOf(method: DescMethod): RepeatRule {
  const policy = retryPolicies[`${method.parent.typeName}/${method.name}`] ?? UNKNOWN_METHOD_POLICY;
  if (policy.never) return { always: false, keyField: undefined };
  if (policy.idempotency !== "UNKNOWN") return { always: true, keyField: undefined };
  const keyField = method.input.fields.find((f) => f.localName === policy.idempotencyKeyField);
  return { always: false, keyField };
}
