import type { DescMethod } from "@bufbuild/protobuf";
import { DEVELOPMENT_INTERNAL_AUTH_SECRET } from "../../src/config/env.js";
import { ASSERTION_HEADER, signAssertion } from "../../src/shared/internal-assertion.js";

/**
 * The headers a gateway vouches for a call with (its request id and a signed
 * assertion, for the actor if any), for tests that call an API server
 * directly, as the gateway does.
 */
export function asGateway(
  method: DescMethod,
  actorId?: string,
  requestId = `direct-${crypto.randomUUID()}`,
): Record<string, string> {
  const rpcMethod = `${method.parent.typeName}/${method.name}`;
  return {
    "x-request-id": requestId,
    [ASSERTION_HEADER]: signAssertion(DEVELOPMENT_INTERNAL_AUTH_SECRET, { actorId, rpcMethod, requestId }),
  };
}
