import {
  createLocalJWKSet,
  createRemoteJWKSet,
  type ExportedJWKSCache,
  errors,
  type JWKSCacheInput,
  type JWTVerifyGetKey,
  jwksCache,
  type LocalJWKSet,
} from "jose";

/**
 * After a successful fetch, a token whose `kid` is not in the set makes the
 * provider be asked again at most this often (jose's cooldownDuration), so a
 * stream of made-up kids cannot turn the gateway into a load generator
 * against the identity provider.
 */
export const JWKS_COOLDOWN_MS = 30_000;
/** How long a fetched set is used before it is fetched again (in the background, see below). */
export const JWKS_CACHE_MAX_AGE_MS = 10 * 60_000;
/** A provider slower than this counts as down for that fetch. */
export const JWKS_TIMEOUT_MS = 3_000;
/**
 * After a failed fetch the provider is not asked again for this long: with
 * keys already fetched, JWKS_COOLDOWN_MS (they keep working meanwhile); with
 * none yet (a provider down when the gateway started), sooner, since until
 * then no provider token can be accepted at all.
 */
const RETRY_WITHOUT_KEYS_MS = 5_000;

/** No key for the token is known and the identity provider could not be reached to look for one. */
export class ProviderUnreachable extends Error {
  override readonly name = "ProviderUnreachable";
}

/** jose's errors that say "no usable key for this token in this set", not "the set could not be fetched". */
function isKeySelectionError(err: unknown): boolean {
  return (
    err instanceof errors.JWKSNoMatchingKey ||
    err instanceof errors.JWKSMultipleMatchingKeys ||
    err instanceof errors.JOSENotSupported ||
    err instanceof errors.JWKInvalid
  );
}

/**
 * The key resolver for `jwtVerify` that verifies tokens with the keys an
 * identity provider publishes at `jwksUrl`. Built once at start-up; per call
 * it only looks a key up in an already-built set.
 *
 * jose's createRemoteJWKSet does the fetching, caching, cooldown for unknown
 * kids, timeout and in-flight deduplication. What it does not do is keep the
 * cached keys working while the provider is down: once its cache is older
 * than cacheMaxAge, every lookup awaits a refetch and fails when that fails,
 * even for a kid it has cached. So this wraps it:
 *
 * - jose writes every successfully fetched set, with its time, into the
 *   object passed as its `jwksCache` option (its documented hook for an
 *   external cache, read here rather than written). From it a local set
 *   (createLocalJWKSet, jose's own key selection) is built once per fetched
 *   set — never per call — and used as the fallback: only keys the provider
 *   itself published at its last successful fetch, so falling back never
 *   trusts anything the remote set would not have.
 * - When the cache is past its age, a kid it holds is verified from it at
 *   once while the refetch runs in the background (so the hot path never
 *   waits for the provider just because time passed); a kid it does not hold
 *   goes to jose, which awaits that same refetch.
 * - When a fetch fails, the provider is not asked again for a while (jose
 *   would retry on every call once its cache is stale, each up to the
 *   timeout); meanwhile cached kids verify and unknown ones are refused with
 *   ProviderUnreachable.
 */
export function providerKeys(jwksUrl: string): JWTVerifyGetKey {
  const fetched: Partial<ExportedJWKSCache> = {};
  const remote = createRemoteJWKSet(new URL(jwksUrl), {
    timeoutDuration: JWKS_TIMEOUT_MS,
    cooldownDuration: JWKS_COOLDOWN_MS,
    cacheMaxAge: JWKS_CACHE_MAX_AGE_MS,
    [jwksCache]: fetched as JWKSCacheInput,
  });
  let fallback: { readonly uat: number; readonly keys: LocalJWKSet } | undefined;
  let failingUntil = 0;
  let lastFailure: unknown;

  const cachedKeys = (): LocalJWKSet | undefined => {
    if (fetched.uat === undefined || fetched.jwks === undefined) return undefined;
    if (fallback?.uat !== fetched.uat) fallback = { uat: fetched.uat, keys: createLocalJWKSet(fetched.jwks) };
    return fallback.keys;
  };
  const failed = (err: unknown): void => {
    lastFailure = err;
    failingUntil = Date.now() + (fetched.uat === undefined ? RETRY_WITHOUT_KEYS_MS : JWKS_COOLDOWN_MS);
  };
  const { origin, pathname } = new URL(jwksUrl); // for the log line: no credentials or query from the URL
  const unreachable = (cause: unknown) =>
    new ProviderUnreachable(`no cached key matches and the JWKS at ${origin}${pathname} could not be fetched`, {
      cause,
    });
  /** A lookup in the cached set, where "no such key" means the provider could not be asked. */
  const fromCache = async (keys: LocalJWKSet, ...args: Parameters<JWTVerifyGetKey>) => {
    try {
      return await keys(...args);
    } catch (err) {
      throw err instanceof errors.JWKSNoMatchingKey ? unreachable(lastFailure ?? err) : err;
    }
  };

  return async (header, token) => {
    const keys = cachedKeys();
    const failing = Date.now() < failingUntil;
    if (keys === undefined) {
      if (failing) throw unreachable(lastFailure);
    } else if (failing) {
      return fromCache(keys, header, token);
    } else if (!remote.fresh) {
      if (!remote.reloading) remote.reload().catch(failed);
      try {
        return await keys(header, token);
      } catch (err) {
        if (!(err instanceof errors.JWKSNoMatchingKey)) throw err;
        // Not cached: jose awaits the refetch just started and looks again.
      }
    }
    try {
      return await remote(header, token);
    } catch (err) {
      if (isKeySelectionError(err)) throw err;
      // The fetch failed (refused, timed out, not 200, not a JWKS).
      failed(err);
      const cached = cachedKeys();
      if (cached === undefined) throw unreachable(err);
      return fromCache(cached, header, token);
    }
  };
}
