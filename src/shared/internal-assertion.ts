import { createHmac, timingSafeEqual } from "node:crypto";

/** The request header the gateway's signed assertion travels in to the API server. */
export const ASSERTION_HEADER = "x-bazbii-assertion";

/** What the gateway vouches for on one call to the API server. */
export interface Assertion {
  /** The verified actor (the bearer token's subject), when the call has one. */
  readonly actorId: string | undefined;
  /** Fully qualified method, e.g. bazbii.post.v1.UserPostService/Create. */
  readonly rpcMethod: string;
  readonly requestId: string;
}

/** How long an assertion is good for: a call's longest deadline (MAX_TIMEOUT_MS) and its retries fit in it. */
const TTL_SECONDS = 60;
/** Clock difference tolerated between a gateway and an API server. */
const SKEW_SECONDS = 5;

/** The JWS header of every assertion, encoded once. */
const HEADER = Buffer.from(JSON.stringify({ alg: "HS256", typ: "JWT" })).toString("base64url");

/**
 * The gateway's per-call assertion to the API server: a JWT (RFC 7519, HS256,
 * INTERNAL_AUTH_SECRET) naming the actor, the method and the request id, good
 * for a minute. The API server believes an actor only from it, and only for
 * that method and that request: taken from one call, it is worth nothing on
 * another.
 *
 * Signed and verified with node:crypto's HMAC rather than jose: jose signs
 * through WebCrypto, asynchronously, and this is on every call's path in both
 * processes; the format is standard, so jose reads these tokens (a test checks).
 */
export function signAssertion(secret: string, assertion: Assertion, now = Date.now()): string {
  const iat = Math.floor(now / 1000);
  const claims: Record<string, unknown> = {
    iss: "bazbii-gateway",
    rpc: assertion.rpcMethod,
    rid: assertion.requestId,
    iat,
    exp: iat + TTL_SECONDS,
  };
  if (assertion.actorId !== undefined) claims.sub = assertion.actorId;
  const signingInput = `${HEADER}.${Buffer.from(JSON.stringify(claims)).toString("base64url")}`;
  return `${signingInput}.${createHmac("sha256", secret).update(signingInput).digest("base64url")}`;
}

/** Why an assertion was refused, for the log line; the caller learns only that it was. */
export type AssertionProblem = "missing" | "malformed" | "signature" | "expired" | "another method" | "another request";

/**
 * The actor an assertion vouches for on this call (undefined: a call with no
 * actor), or the problem that makes it worthless here.
 */
export function verifyAssertion(
  secret: string,
  token: string | null,
  call: { readonly rpcMethod: string; readonly requestId: string },
  now = Date.now(),
): { readonly actorId: string | undefined } | { readonly problem: AssertionProblem } {
  if (token === null || token === "") return { problem: "missing" };
  const parts = token.split(".");
  if (parts.length !== 3 || parts[0] !== HEADER) return { problem: "malformed" };
  const signingInput = `${parts[0]}.${parts[1]}`;
  const expected = createHmac("sha256", secret).update(signingInput).digest();
  const given = Buffer.from(parts[2] as string, "base64url");
  if (given.length !== expected.length || !timingSafeEqual(given, expected)) return { problem: "signature" };
  let claims: { rpc?: unknown; rid?: unknown; exp?: unknown; sub?: unknown };
  try {
    claims = JSON.parse(Buffer.from(parts[1] as string, "base64url").toString("utf8"));
  } catch {
    return { problem: "malformed" };
  }
  if (typeof claims.exp !== "number" || claims.exp + SKEW_SECONDS < now / 1000) return { problem: "expired" };
  if (claims.rpc !== call.rpcMethod) return { problem: "another method" };
  if (claims.rid !== call.requestId) return { problem: "another request" };
  return { actorId: typeof claims.sub === "string" ? claims.sub : undefined };
}
