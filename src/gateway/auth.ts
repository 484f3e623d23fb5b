import { errors, jwtVerify, SignJWT } from "jose";
import { errorCatalog } from "../shared/errors/catalog.js";
import { publicError } from "../shared/errors/public-error.js";
import type { RequestContext } from "../shared/request-context.js";

/** Tokens are HS256 JWTs; any other algorithm, `none` included, is refused. */
const ALGORITHM = "HS256";
const BEARER = /^Bearer\s+([A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*)\s*$/i;
/**
 * The subject becomes the actor header sent upstream, so it must be
 * header-safe. (The domain checks its own actor-id rule again.)
 */
const SUBJECT = /^[\x21-\x7e]{1,128}$/;

/** Whether `actorId` may be a token's subject (and so an actor the gateway forwards). */
export function isValidSubject(actorId: string): boolean {
  return SUBJECT.test(actorId);
}

function iso(epochSeconds: unknown): string {
  return typeof epochSeconds === "number" ? new Date(epochSeconds * 1000).toISOString() : "unknown";
}

export type Authenticate = (authorization: string | null, rc: RequestContext) => Promise<string | undefined>;

/** Which bearer tokens the gateway accepts. */
export interface TokenConfig {
  /** HS256 secret (AUTH_JWT_SECRET): tokens signed with it are accepted when no JWKS is configured. */
  readonly hs256Secret: string;
  /** An identity provider's JWKS (JWT_JWKS_URL): tokens signed by its keys, with `algorithms`. */
  readonly jwksUrl: string | undefined;
  /** `iss` every token must have (JWT_ISSUER; required with a JWKS). */
  readonly issuer: string | undefined;
  /** `aud` every token must have (JWT_AUDIENCE; required with a JWKS). */
  readonly audience: string | undefined;
  /** Leeway for exp and nbf (JWT_CLOCK_SKEW_S). */
  readonly clockSkewSeconds: number;
  /** Algorithms accepted from the JWKS (JWT_ALGORITHMS): asymmetric only, never `none` or HMAC. */
  readonly algorithms: readonly string[];
}

/**
 * Verifies `Authorization: Bearer <JWT>` and returns the actor (the `sub`
 * claim); undefined when no header was sent. A header that is sent but not
 * acceptable is always `unauthenticated`, with what is wrong and what to do.
 */
export function createAuthenticator(config: TokenConfig): Authenticate {
  const key = new TextEncoder().encode(config.hs256Secret);
  return async (authorization, rc) => {
    if (authorization === null) return undefined;
    const token = BEARER.exec(authorization)?.[1];
    if (token === undefined) throw publicError(errorCatalog.TOKEN_MALFORMED, rc);
    const invalid = (problem: string, cause?: unknown) =>
      publicError(errorCatalog.TOKEN_INVALID, rc, { params: { problem }, cause });
    let payload: Record<string, unknown>;
    try {
      ({ payload } = await jwtVerify(token, key, { algorithms: [ALGORITHM] }));
    } catch (err) {
      if (err instanceof errors.JWTExpired) {
        throw publicError(errorCatalog.TOKEN_EXPIRED, rc, { params: { expiredAt: iso(err.payload.exp) }, cause: err });
      }
      if (err instanceof errors.JWTClaimValidationFailed && err.claim === "nbf") {
        throw publicError(errorCatalog.TOKEN_NOT_YET_VALID, rc, {
          params: { notBefore: iso(err.payload.nbf) },
          cause: err,
        });
      }
      if (err instanceof errors.JOSEAlgNotAllowed || err instanceof errors.JOSENotSupported) {
        throw invalid(`only ${ALGORITHM} tokens are accepted`, err);
      }
      if (err instanceof errors.JWSSignatureVerificationFailed) throw invalid("its signature does not verify", err);
      if (err instanceof errors.JWTClaimValidationFailed) throw invalid(`its ${err.claim} claim is not valid`, err);
      throw publicError(errorCatalog.TOKEN_MALFORMED, rc, { cause: err });
    }
    if (typeof payload.sub !== "string" || !isValidSubject(payload.sub)) {
      throw invalid("its sub claim must be 1 to 128 printable ASCII characters");
    }
    return payload.sub;
  };
}

/** A token for development and tests: HS256, `sub` = actor, valid for `ttlSeconds`. */
export function mintToken(secret: string, actorId: string, ttlSeconds = 12 * 60 * 60): Promise<string> {
  return new SignJWT({})
    .setProtectedHeader({ alg: ALGORITHM, typ: "JWT" })
    .setSubject(actorId)
    .setIssuedAt()
    .setExpirationTime(`${ttlSeconds}s`)
    .sign(new TextEncoder().encode(secret));
}
