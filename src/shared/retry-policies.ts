import { HeatmapServiceRetryPolicies } from "../gen/bazbii/feed/v1/heatmap_service_retry.js";
import { UserPostServiceRetryPolicies } from "../gen/bazbii/post/v1/user_post_service_retry.js";
import type { MethodRetryPolicy } from "./retry-rules.js";

/** Every method's retry policy, as generated from the schemas, keyed by "<service>/<method>". */
export const retryPolicies: Readonly<Record<string, MethodRetryPolicy>> = {
  ...HeatmapServiceRetryPolicies,
  ...UserPostServiceRetryPolicies,
};

/** Methods the schemas say nothing about are treated as not idempotent. */
export const UNKNOWN_METHOD_POLICY: MethodRetryPolicy = { idempotency: "UNKNOWN", never: false };
