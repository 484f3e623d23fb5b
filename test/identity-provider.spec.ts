import { randomUUID } from "node:crypto";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { base64url, type CryptoKey, exportJWK, exportSPKI, generateKeyPair, type JWK, SignJWT } from "jose";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { gatewayConfigFromEnv } from "../src/config/gateway-config.js";
import { createAuthenticator, mintToken, type TokenConfig } from "../src/gateway/auth.js";
import { JWKS_CACHE_MAX_AGE_MS, JWKS_COOLDOWN_MS } from "../src/gateway/jwks.js";
import { UserPostService } from "../src/gen/bazbii/post/v1/user_post_service_pb.js";
import { ErrorInfoSchema } from "../src/gen/google/rpc/error_details_pb.js";
import { detailOf, detailsText } from "./helpers/details.js";
import { startApi, startGatewayFor } from "./helpers/system.js";
import { callWire, type Outcome } from "./helpers/wire-clients.js";

const ISSUER = "https://id.example.test/";
const AUDIENCE = "bazbii-gateway";
const ALL_ALGORITHMS = ["RS256", "ES256", "EdDSA"] as const;
type Alg = (typeof ALL_ALGORITHMS)[number];

const defaults = gatewayConfigFromEnv({ NODE_ENV: "test" });

// ── The identity provider: keys made here, a JWKS served over real HTTP ──

interface SigningKey {
  readonly kid: string;
  readonly alg: Alg;
  readonly privateKey: CryptoKey;
  readonly publicKey: CryptoKey;
  /** The public key as the provider publishes it. */
  readonly jwk: JWK;
}

async function signingKey(alg: Alg, kid = `${alg.toLowerCase()}-${randomUUID()}`): Promise<SigningKey> {
  const { privateKey, publicKey } = await generateKeyPair(alg);
  return { kid, alg, privateKey, publicKey, jwk: { ...(await exportJWK(publicKey)), kid, alg, use: "sig" } };
}

/** A JWKS on 127.0.0.1 (ephemeral port, kept across a restart): its keys change, it stops, it comes back. */
class JwksServer {
  keys: JWK[];
  /** GETs it has answered: how often the gateway asked. */
  requests = 0;
  #server: Server | undefined;
  #port = 0;

  constructor(keys: readonly SigningKey[]) {
    this.keys = keys.map((k) => k.jwk);
  }

  get url(): string {
    return `http://127.0.0.1:${this.#port}/.well-known/jwks.json`;
  }

  async start(): Promise<this> {
    const server = createServer((_req, res) => {
      this.requests++;
      res.writeHead(200, { "content-type": "application/jwk-set+json" }).end(JSON.stringify({ keys: this.keys }));
    });
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen(this.#port, "127.0.0.1", resolve);
    });
    this.#port = (server.address() as AddressInfo).port;
    this.#server = server;
    return this;
  }

  /** Stops listening and drops kept-alive connections: the next fetch is refused. */
  async stop(): Promise<void> {
    const server = this.#server;
    if (server === undefined) return;
    this.#server = undefined;
    const closed = new Promise<void>((resolve) => server.close(() => resolve()));
    server.closeAllConnections();
    await closed;
  }
}

const now = () => Math.floor(Date.now() / 1000);

/** Claims of a good token; a claim set to undefined is left out. */
function claims(overrides: Record<string, unknown> = {}): Record<string, unknown> {
  const all: Record<string, unknown> = { sub: "alice", iss: ISSUER, aud: AUDIENCE, iat: now(), exp: now() + 600 };
  for (const [name, value] of Object.entries(overrides)) {
    if (value === undefined) delete all[name];
    else all[name] = value;
  }
  return all;
}

function token(key: SigningKey, overrides: Record<string, unknown> = {}, kid = key.kid): Promise<string> {
  return new SignJWT(claims(overrides)).setProtectedHeader({ alg: key.alg, kid, typ: "JWT" }).sign(key.privateKey);
}

/** HS256 "signed" with `secret` (what an attacker does with a public key), naming `kid`. */
function hmacToken(secret: string, kid: string): Promise<string> {
  return new SignJWT(claims())
    .setProtectedHeader({ alg: "HS256", kid, typ: "JWT" })
    .sign(new TextEncoder().encode(secret));
}

function unsignedToken(kid: string): string {
  const part = (value: unknown) => base64url.encode(JSON.stringify(value));
  return `${part({ alg: "none", kid, typ: "JWT" })}.${part(claims())}.`;
}

function providerTokens(jwksUrl: string, more: Partial<TokenConfig> = {}): { tokens: TokenConfig } {
  return {
    tokens: {
      ...defaults.tokens,
      jwksUrl,
      issuer: ISSUER,
      audience: AUDIENCE,
      algorithms: [...ALL_ALGORITHMS],
      ...more,
    },
  };
}

// ── The system: one API server, a gateway per describe ──

let apiUrl: string;
const cleanups: (() => Promise<void>)[] = [];
beforeAll(async () => {
  const { api, cleanup } = await startApi();
  apiUrl = api.url;
  cleanups.push(async () => {
    await api.close(0);
    await cleanup();
  });
});
afterAll(async () => {
  vi.useRealTimers();
  for (const cleanup of cleanups.reverse()) await cleanup();
});

async function gatewayWith(overrides: { tokens: TokenConfig }): Promise<string> {
  const { gateway } = await startGatewayFor(apiUrl, overrides);
  cleanups.push(() => gateway.close(0));
  return gateway.url;
}

async function jwksServing(...keys: SigningKey[]): Promise<JwksServer> {
  const server = await new JwksServer(keys).start();
  cleanups.push(() => server.stop());
  return server;
}

function createPost(gatewayUrl: string, bearer: string): Promise<Outcome> {
  return callWire(
    "connect-json",
    gatewayUrl,
    UserPostService.method.create,
    { h3Index: "8928308280fffff", text: "hello", requestId: randomUUID() },
    { headers: { authorization: `Bearer ${bearer}` } },
  );
}

async function expectAccepted(gatewayUrl: string, bearer: string): Promise<void> {
  const outcome = await createPost(gatewayUrl, bearer);
  if (!outcome.ok) throw new Error(`refused: ${outcome.code} ${outcome.message}`);
}

/** What a refusal must never show a caller: the provider's address, jose's or the network's wording. */
const INTERNALS = /127\.0\.0\.1|jwks\.json|ERR_|ECONNREFUSED|fetch failed|JWKS|JOSE|claim timestamp/;

function expectRefused(outcome: Outcome, reason: string, message: RegExp): void {
  if (outcome.ok) throw new Error("accepted a token it must refuse");
  expect(outcome).toMatchObject({ code: "unauthenticated", httpStatus: 401 });
  expect(detailOf(outcome.details, ErrorInfoSchema)?.reason).toBe(reason);
  expect(outcome.message).toMatch(message);
  expect(`${outcome.message}\n${detailsText(outcome.details)}`).not.toMatch(INTERNALS);
}

// ── The tests ──

describe("a gateway trusting an identity provider's JWKS (RS256, ES256, EdDSA allowed)", () => {
  const keys = {} as Record<Alg, SigningKey>;
  let stranger: SigningKey;
  let gatewayUrl: string;
  beforeAll(async () => {
    for (const alg of ALL_ALGORITHMS) keys[alg] = await signingKey(alg);
    stranger = await signingKey("RS256", "stranger");
    const jwks = await jwksServing(keys.RS256, keys.ES256, keys.EdDSA);
    gatewayUrl = await gatewayWith(providerTokens(jwks.url));
  });

  it.each(ALL_ALGORITHMS)(
    "accepts a %s token signed by a published key: the post is created as its subject",
    async (alg) => {
      const sub = `user-${alg}`;
      const created = await createPost(gatewayUrl, await token(keys[alg], { sub }));
      if (!created.ok) throw new Error(`refused: ${created.code} ${created.message}`);
      const read = await callWire("connect-json", gatewayUrl, UserPostService.method.get, {
        id: (created.response as { id: string }).id,
      });
      expect(read).toMatchObject({ ok: true, response: { post: { actorId: sub } } });
    },
  );

  it("refuses the gateway's own HS256 development token: with a JWKS only the provider's tokens count", async () => {
    expectRefused(
      await createPost(gatewayUrl, await mintToken(defaults.jwtSecret, "alice")),
      "TOKEN_INVALID",
      /only RS256, ES256, EdDSA tokens are accepted/,
    );
  });

  /** What is wrong, the ErrorInfo reason, what the message says, the token. */
  const refused: [string, string, RegExp, () => Promise<string>][] = [
    [
      "a wrong issuer",
      "TOKEN_INVALID",
      /issuer this service does not trust/,
      () => token(keys.RS256, { iss: "https://evil.example.test/" }),
    ],
    ["no issuer", "TOKEN_INVALID", /names no issuer/, () => token(keys.ES256, { iss: undefined })],
    ["a wrong audience", "TOKEN_INVALID", /another audience/, () => token(keys.EdDSA, { aud: "another-service" })],
    ["no audience", "TOKEN_INVALID", /names no audience/, () => token(keys.RS256, { aud: undefined })],
    [
      "expired beyond the 30 s skew",
      "TOKEN_EXPIRED",
      /expired at 20\d\d-/,
      () => token(keys.ES256, { exp: now() - 60 }),
    ],
    [
      "nbf beyond the 30 s skew",
      "TOKEN_NOT_YET_VALID",
      /not valid before 20\d\d-/,
      () => token(keys.EdDSA, { nbf: now() + 60 }),
    ],
    ["no expiry", "TOKEN_INVALID", /no expiry/, () => token(keys.RS256, { exp: undefined })],
    [
      "alg none naming a published kid",
      "TOKEN_INVALID",
      /only RS256, ES256, EdDSA tokens are accepted/,
      async () => unsignedToken(keys.RS256.kid),
    ],
    [
      "HS256 signed with the published RSA key's PEM as the secret",
      "TOKEN_INVALID",
      /only RS256, ES256, EdDSA tokens are accepted/,
      async () => hmacToken(await exportSPKI(keys.RS256.publicKey), keys.RS256.kid),
    ],
    [
      "HS256 signed with the published EC key's JWK as the secret",
      "TOKEN_INVALID",
      /only RS256, ES256, EdDSA tokens are accepted/,
      async () => hmacToken(JSON.stringify(keys.ES256.jwk), keys.ES256.kid),
    ],
    [
      "a key the provider does not publish",
      "TOKEN_INVALID",
      /signed with a key the identity provider does not publish/,
      () => token(stranger),
    ],
    [
      "another key claiming a published kid",
      "TOKEN_INVALID",
      /signature does not verify/,
      () => token(stranger, {}, keys.RS256.kid),
    ],
    ["a subject that cannot be an actor", "TOKEN_INVALID", /sub claim/, () => token(keys.RS256, { sub: "has space" })],
  ];

  it.each(refused)("refuses %s → unauthenticated %s, never internal", async (_name, reason, message, make) => {
    expectRefused(await createPost(gatewayUrl, await make()), reason, message);
  });

  it("refuses a bad token on Get too, a method that needs no token", async () => {
    const get = (headers: Record<string, string> = {}) =>
      callWire("connect-json", gatewayUrl, UserPostService.method.get, { id: randomUUID() }, { headers });
    expect(await get()).toMatchObject({ ok: false, code: "not_found" });
    expectRefused(
      await get({ authorization: `Bearer ${await token(keys.ES256, { iss: "https://evil.example.test/" })}` }),
      "TOKEN_INVALID",
      /issuer this service does not trust/,
    );
  });

  it("allows the 30 s clock skew: a token expired 10 s ago and one valid only from 10 s ahead are accepted", async () => {
    await expectAccepted(gatewayUrl, await token(keys.RS256, { exp: now() - 10 }));
    await expectAccepted(gatewayUrl, await token(keys.EdDSA, { nbf: now() + 10 }));
  });
});

describe("an algorithm allow-list narrower than the published keys (ES256 only)", () => {
  let rs: SigningKey;
  let es: SigningKey;
  let gatewayUrl: string;
  beforeAll(async () => {
    rs = await signingKey("RS256");
    es = await signingKey("ES256");
    const jwks = await jwksServing(rs, es);
    gatewayUrl = await gatewayWith(providerTokens(jwks.url, { algorithms: ["ES256"] }));
  });

  it("refuses an RS256 token although its key is published", async () => {
    expectRefused(await createPost(gatewayUrl, await token(rs)), "TOKEN_INVALID", /only ES256 tokens are accepted/);
  });

  it("accepts an ES256 token", async () => {
    await expectAccepted(gatewayUrl, await token(es));
  });
});

/**
 * The provider is asked again only when time has passed (cooldown, cache
 * age), so these tests move a frozen Date instead of waiting: the gateway runs
 * in this process and jose reads Date.now().
 */
function onAFrozenClock(): void {
  beforeAll(() => {
    vi.setSystemTime(new Date());
  });
  afterAll(() => {
    vi.useRealTimers();
  });
}

const advanceClock = (ms: number) => vi.setSystemTime(Date.now() + ms);

describe("key rotation at the provider, without restarting the gateway", () => {
  onAFrozenClock();
  let first: SigningKey;
  let jwks: JwksServer;
  let gatewayUrl: string;
  beforeAll(async () => {
    first = await signingKey("RS256");
    jwks = await jwksServing(first);
    gatewayUrl = await gatewayWith(providerTokens(jwks.url));
  });

  it("fetches the key set once for any number of calls with a known kid", async () => {
    for (let i = 0; i < 5; i++) await expectAccepted(gatewayUrl, await token(first));
    expect(jwks.requests).toBe(1);
  });

  it("accepts a new kid once the 30 s refetch cooldown has passed; before that it is refused without asking the provider", async () => {
    const next = await signingKey("ES256");
    jwks.keys = [...jwks.keys, next.jwk];

    expectRefused(await createPost(gatewayUrl, await token(next)), "TOKEN_INVALID", /does not publish/);
    expect(jwks.requests).toBe(1);

    advanceClock(JWKS_COOLDOWN_MS + 1_000);
    await expectAccepted(gatewayUrl, await token(next));
    expect(jwks.requests).toBe(2);
    await expectAccepted(gatewayUrl, await token(first));
    expect(jwks.requests).toBe(2);
  });

  it("asks the provider at most once per cooldown, however many unknown kids arrive", async () => {
    advanceClock(JWKS_COOLDOWN_MS + 1_000);
    for (let i = 0; i < 5; i++) {
      const unknown = await signingKey("EdDSA");
      expectRefused(await createPost(gatewayUrl, await token(unknown)), "TOKEN_INVALID", /does not publish/);
    }
    expect(jwks.requests).toBe(3);
  });

  it("stops accepting a withdrawn key once the set has been fetched again", async () => {
    const third = await signingKey("EdDSA");
    jwks.keys = [third.jwk];
    advanceClock(JWKS_COOLDOWN_MS + 1_000);
    await expectAccepted(gatewayUrl, await token(third));
    expectRefused(await createPost(gatewayUrl, await token(first)), "TOKEN_INVALID", /does not publish/);
  });
});

describe("an identity provider that goes down", () => {
  onAFrozenClock();
  let known: SigningKey;
  let jwks: JwksServer;
  let gatewayUrl: string;
  beforeAll(async () => {
    known = await signingKey("ES256");
    jwks = await jwksServing(known);
    gatewayUrl = await gatewayWith(providerTokens(jwks.url));
    await expectAccepted(gatewayUrl, await token(known));
    expect(jwks.requests).toBe(1);
    await jwks.stop();
  });

  it("keeps verifying a known kid from the cached keys, also once they are older than their 10 min age", async () => {
    await expectAccepted(gatewayUrl, await token(known));
    advanceClock(JWKS_CACHE_MAX_AGE_MS + 60_000);
    await expectAccepted(gatewayUrl, await token(known));
    await expectAccepted(gatewayUrl, await token(known));
  });

  it("refuses an unknown kid as unauthenticated saying the provider cannot be reached, never internal", async () => {
    const unknown = await signingKey("ES256");
    const because = /signing key is not known and the identity provider cannot be reached/;
    expectRefused(await createPost(gatewayUrl, await token(unknown)), "TOKEN_INVALID", because);
    advanceClock(JWKS_COOLDOWN_MS + 1_000);
    expectRefused(await createPost(gatewayUrl, await token(unknown)), "TOKEN_INVALID", because);
    await expectAccepted(gatewayUrl, await token(known));
  });

  it("takes a new key once the provider is back, after its 30 s back-off", async () => {
    const rotated = await signingKey("RS256");
    jwks.keys = [...jwks.keys, rotated.jwk];
    await jwks.start();
    expectRefused(await createPost(gatewayUrl, await token(rotated)), "TOKEN_INVALID", /cannot be reached/);
    expect(jwks.requests).toBe(1);

    advanceClock(JWKS_COOLDOWN_MS + 1_000);
    await expectAccepted(gatewayUrl, await token(rotated));
    expect(jwks.requests).toBe(2);
    await expectAccepted(gatewayUrl, await token(known));
  });
});

describe("an identity provider that cannot be reached when the gateway starts", () => {
  let key: SigningKey;
  let gatewayUrl: string;
  beforeAll(async () => {
    key = await signingKey("EdDSA");
    const gone = await new JwksServer([key]).start();
    await gone.stop();
    gatewayUrl = await gatewayWith(providerTokens(gone.url));
  });

  it("refuses every token as unauthenticated (no key is known), never internal", async () => {
    for (let i = 0; i < 2; i++) {
      expectRefused(await createPost(gatewayUrl, await token(key)), "TOKEN_INVALID", /cannot be reached/);
    }
  });
});

describe("without a JWKS: HS256 development tokens, with issuer and audience checked when set", () => {
  const secret = new TextEncoder().encode(defaults.jwtSecret);
  const hs256 = (overrides: Record<string, unknown> = {}) =>
    new SignJWT(claims(overrides)).setProtectedHeader({ alg: "HS256" }).sign(secret);
  let gatewayUrl: string;
  beforeAll(async () => {
    gatewayUrl = await gatewayWith({ tokens: { ...defaults.tokens, issuer: ISSUER, audience: AUDIENCE } });
  });

  it("accepts an HS256 token with the issuer and audience", async () => {
    await expectAccepted(gatewayUrl, await hs256());
  });

  it("refuses one without the issuer, or for another audience", async () => {
    expectRefused(await createPost(gatewayUrl, await hs256({ iss: undefined })), "TOKEN_INVALID", /names no issuer/);
    expectRefused(
      await createPost(gatewayUrl, await hs256({ aud: "another-service" })),
      "TOKEN_INVALID",
      /another audience/,
    );
  });

  it("refuses a provider's RS256 token: only HS256 is accepted", async () => {
    expectRefused(
      await createPost(gatewayUrl, await token(await signingKey("RS256"))),
      "TOKEN_INVALID",
      /only HS256 tokens are accepted/,
    );
  });
});

describe("an allow-list that could verify a forged token", () => {
  const base = providerTokens("http://127.0.0.1:9/.well-known/jwks.json").tokens;

  it.each([[["RS256", "HS256"]], [["none"]], [["ES256", "hs512"]], [[]]])(
    "%j is refused when the authenticator is built, at start-up",
    (algorithms) => {
      expect(() => createAuthenticator({ ...base, algorithms })).toThrow(/asymmetric algorithms only/);
    },
  );
});
