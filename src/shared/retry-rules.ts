import { Code } from "@connectrpc/connect";
import { allCodes, codeTable } from "./code-table.js";

/** A method's idempotency, as its schema states it (google.protobuf.MethodOptions.idempotency_level). */
export type Idempotency = "NO_SIDE_EFFECTS" | "IDEMPOTENT" | "UNKNOWN";

/** What protoc-gen-retry-policy generates for each method. */
export interface MethodRetryPolicy {
  readonly idempotency: Idempotency;
  /** Request field (localName) holding an idempotency key: repeating the call with the same key is safe. */
  readonly idempotencyKeyField?: string;
  /** (bazbii.api.v1.retry).never: no automatic retries at all. */
  readonly never: boolean;
}

/**
 * Retry parameters shared by the generated gRPC service config and the client
 * library. gRFC A6: exponential backoff with ±20% jitter, at most 5 attempts,
 * a token bucket that stops retries when most calls fail.
 */
export const RETRY_DEFAULTS = {
  maxAttempts: 4,
  initialBackoffMs: 100,
  maxBackoffMs: 2_000,
  backoffMultiplier: 2,
  jitter: 0.2,
  throttleMaxTokens: 10,
  throttleTokenRatio: 0.1,
} as const;

/** Repeating the call cannot do its work twice: idempotent by schema, or carrying an idempotency key. */
export function isSafeToRepeat(policy: MethodRetryPolicy): boolean {
  return policy.idempotency !== "UNKNOWN" || policy.idempotencyKeyField !== undefined;
}

/**
 * Codes worth retrying for this method when nothing more is known than the
 * code (what a gRPC service config can express), from the code table's retry classes.
 */
export function retryableCodesOf(policy: MethodRetryPolicy): Code[] {
  if (policy.never || !isSafeToRepeat(policy)) return [];
  return allCodes.filter((c) => {
    const rc = codeTable[c].retryClass;
    return rc === "idempotent" || rc === "unavailable";
  });
}

/**
 * Codes a gRPC service config may list for this method: what any client that
 * follows the config may retry. Such a client sends the request as its caller
 * built it, and nothing makes that caller fill an idempotency key, so a method
 * made safe only by its key (Create and its request_id) is not retried there: a
 * lost answer would otherwise become a second post. Our client libraries fill
 * the key on every attempt and retry it (retryableCodesOf, mayRetry).
 */
export function serviceConfigRetryableCodesOf(policy: MethodRetryPolicy): Code[] {
  return policy.idempotency === "UNKNOWN" ? [] : retryableCodesOf(policy);
}

/** What an error tells besides its code. */
export interface FailureFacts {
  /** The error carries RetryInfo (or pushback): the server said when to come back. */
  readonly serverGaveDelay: boolean;
  /** The request certainly was not processed: refused before sending, or rejected before any work. */
  readonly notProcessed: boolean;
}

/** The retry decision: the code table's retry class applied to this method and this error. */
export function mayRetry(policy: MethodRetryPolicy, code: Code, facts: FailureFacts): boolean {
  if (policy.never) return false;
  switch (codeTable[code].retryClass) {
    case "never":
      return false;
    case "idempotent":
      return isSafeToRepeat(policy);
    case "after_delay":
      return facts.serverGaveDelay;
    case "unavailable":
      return isSafeToRepeat(policy) || facts.notProcessed;
  }
}

export { Code };
