import type { ConnectError } from "@connectrpc/connect";
import { errors, type JWTPayload, type JWTVerifyGetKey, type JWTVerifyOptions, jwtVerify, SignJWT } from "jose";
import { errorCatalog } from "../shared/errors/catalog.js";
import { publicError } from "../shared/errors/public-error.js";
import type { RequestContext } from "../shared/request-context.js";
import { ProviderUnreachable, providerKeys } from "./jwks.js";

/** Development tokens (AUTH_JWT_SECRET, no JWKS configured) are HS256 JWTs; any other algorithm is refused. */
const ALGORITHM = "HS256";
const BEARER = /^Bearer\s+([A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*)\s*$/i;
/** Algorithms that must never verify a provider's token: `none`, and HMAC (its "secret" would be a public key). */
const NOT_ASYMMETRIC = /^(none|HS\d+)$/i;
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

/** How tokens are verified: built once at start-up, shared by every call. */
interface Verifier {
  readonly key: Uint8Array | JWTVerifyGetKey;
  readonly options: Readonly<JWTVerifyOptions>;
  /** The accepted algorithms, as told to a caller whose token uses another. */
  readonly accepted: string;
}

function hs256Verifier(config: TokenConfig): Verifier {
  return {
    key: new TextEncoder().encode(config.hs256Secret),
    options: Object.freeze({
      algorithms: [ALGORITHM],
      clockTolerance: config.clockSkewSeconds,
      ...(config.issuer === undefined ? {} : { issuer: config.issuer }),
      ...(config.audience === undefined ? {} : { audience: config.audience }),
    }),
    accepted: ALGORITHM,
  };
}

function providerVerifier(config: TokenConfig, jwksUrl: string): Verifier {
  // The configuration refuses these already; a token verifier does not rely on that.
  const refused = config.algorithms.filter((alg) => NOT_ASYMMETRIC.test(alg));
  if (config.algorithms.length === 0 || refused.length > 0) {
    throw new Error(
      `a JWKS is verified with asymmetric algorithms only (got: ${config.algorithms.join(", ") || "no algorithm"})`,
    );
  }
  if (config.issuer === undefined || config.audience === undefined) {
    throw new Error("a JWKS needs both an issuer and an audience to check");
  }
  return {
    key: providerKeys(jwksUrl),
    options: Object.freeze({
      algorithms: [...config.algorithms],
      issuer: config.issuer,
      audience: config.audience,
      clockTolerance: config.clockSkewSeconds,
      // A provider's token without an expiry would be good forever.
      requiredClaims: ["exp"],
    }),
    accepted: config.algorithms.join(", "),
  };
}

async function verify(token: string, { key, options }: Verifier): Promise<JWTPayload> {
  try {
    return (await jwtVerify(token, key, options)).payload;
  } catch (err) {
    if (!(err instanceof errors.JWKSMultipleMatchingKeys)) throw err;
    // Several published keys fit the header (no kid, say): jose's documented way is to try each of them.
    for await (const candidate of err) {
      try {
        return (await jwtVerify(token, candidate, options)).payload;
      } catch (inner) {
        if (!(inner instanceof errors.JWSSignatureVerificationFailed)) throw inner;
      }
    }
    throw new errors.JWSSignatureVerificationFailed(undefined, { cause: err });
  }
}

function claimProblem(err: errors.JWTClaimValidationFailed): string {
  const missing = err.reason === "missing";
  switch (err.claim) {
    case "iss":
      return missing ? "it names no issuer" : "it was issued by an issuer this service does not trust";
    case "aud":
      return missing ? "it names no audience" : "it was issued for another audience";
    case "exp":
      return missing ? "it has no expiry (exp)" : "its exp claim is not valid";
    default:
      return `its ${err.claim} claim is not valid`;
  }
}

/**
 * The public error for a token that did not verify: always `unauthenticated`
 * (whatever went wrong, even the identity provider being down), saying what
 * is wrong in words a caller can act on, never jose's or the network's.
 */
function refusal(err: unknown, rc: RequestContext, accepted: string): ConnectError {
  const invalid = (problem: string) => publicError(errorCatalog.TOKEN_INVALID, rc, { params: { problem }, cause: err });
  if (err instanceof errors.JWTExpired) {
    return publicError(errorCatalog.TOKEN_EXPIRED, rc, { params: { expiredAt: iso(err.payload.exp) }, cause: err });
  }
  if (err instanceof errors.JWTClaimValidationFailed) {
    if (err.claim === "nbf") {
      return publicError(errorCatalog.TOKEN_NOT_YET_VALID, rc, {
        params: { notBefore: iso(err.payload.nbf) },
        cause: err,
      });
    }
    return invalid(claimProblem(err));
  }
  if (err instanceof errors.JOSEAlgNotAllowed || err instanceof errors.JOSENotSupported) {
    return invalid(`only ${accepted} tokens are accepted`);
  }
  if (err instanceof errors.JWSSignatureVerificationFailed) return invalid("its signature does not verify");
  if (err instanceof errors.JWKSNoMatchingKey)
    return invalid("it is signed with a key the identity provider does not publish");
  if (err instanceof ProviderUnreachable) {
    return invalid("its signing key is not known and the identity provider cannot be reached");
  }
  if (err instanceof errors.JWSInvalid || err instanceof errors.JWTInvalid) {
    return publicError(errorCatalog.TOKEN_MALFORMED, rc, { cause: err });
  }
  return invalid("it could not be verified");
}

/**
 * Verifies `Authorization: Bearer <JWT>` and returns the actor (the `sub`
 * claim); undefined when no header was sent. A header that is sent but not
 * acceptable is always `unauthenticated`, with what is wrong and what to do.
 *
 * With a JWKS (`jwksUrl`) tokens must be signed by one of the identity
 * provider's keys with one of `algorithms`, and carry `issuer`, `audience`
 * and an expiry; HS256 tokens are then not accepted at all. Without one, HS256
 * tokens signed with `hs256Secret` are (development), with `issuer` and
 * `audience` checked when set. Either way exp and nbf get `clockSkewSeconds`.
 */
export function createAuthenticator(config: TokenConfig): Authenticate {
  const verifier = config.jwksUrl === undefined ? hs256Verifier(config) : providerVerifier(config, config.jwksUrl);
  return async (authorization, rc) => {
    if (authorization === null) return undefined;
    const token = BEARER.exec(authorization)?.[1];
    if (token === undefined) throw publicError(errorCatalog.TOKEN_MALFORMED, rc);
    let payload: JWTPayload;
    try {
      payload = await verify(token, verifier);
    } catch (err) {
      throw refusal(err, rc, verifier.accepted);
    }
    if (typeof payload.sub !== "string" || !isValidSubject(payload.sub)) {
      throw publicError(errorCatalog.TOKEN_INVALID, rc, {
        params: { problem: "its sub claim must be 1 to 128 printable ASCII characters" },
      });
    }
    return payload.sub;
  };
}

/**
 * A token for development and tests: HS256, `sub` = actor, valid for
 * `ttlSeconds`, with the issuer and audience the gateway checks when they are
 * configured without a JWKS.
 */
export function mintToken(
  secret: string,
  actorId: string,
  ttlSeconds = 12 * 60 * 60,
  checked: { readonly issuer?: string | undefined; readonly audience?: string | undefined } = {},
): Promise<string> {
  const jwt = new SignJWT({})
    .setProtectedHeader({ alg: ALGORITHM, typ: "JWT" })
    .setSubject(actorId)
    .setIssuedAt()
    .setExpirationTime(`${ttlSeconds}s`);
  if (checked.issuer !== undefined) jwt.setIssuer(checked.issuer);
  if (checked.audience !== undefined) jwt.setAudience(checked.audience);
  return jwt.sign(new TextEncoder().encode(secret));
}
