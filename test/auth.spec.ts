import { base64url, SignJWT } from "jose";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { UserPostService } from "../src/gen/bazbii/post/v1/user_post_service_pb.js";
import { ErrorInfoSchema } from "../src/gen/google/rpc/error_details_pb.js";
import { detailOf } from "./helpers/details.js";
import { type System, startSystem } from "./helpers/system.js";
import { callWire, closeGrpcClients } from "./helpers/wire-clients.js";

let system: System;
let secret: Uint8Array;
beforeAll(async () => {
  system = await startSystem();
  secret = new TextEncoder().encode(system.gatewayConfig.jwtSecret);
});
afterAll(async () => {
  closeGrpcClients();
  await system?.close();
});

const now = () => Math.floor(Date.now() / 1000);
const sign = (alg: "HS256" | "HS384" | "HS512", claims: Record<string, unknown>, key = secret) =>
  new SignJWT(claims).setProtectedHeader({ alg }).sign(key);
const unsigned = (claims: Record<string, unknown>) =>
  `${base64url.encode(JSON.stringify({ alg: "none", typ: "JWT" }))}.${base64url.encode(JSON.stringify(claims))}.`;

describe("bearer tokens the gateway refuses, each with unauthenticated and a clear message", () => {
  const cases: [string, () => Promise<string>, string, RegExp][] = [
    ["alg none", async () => `Bearer ${unsigned({ sub: "mallory", exp: now() + 60 })}`, "TOKEN_INVALID", /only HS256/],
    [
      "another algorithm (HS512)",
      async () => `Bearer ${await sign("HS512", { sub: "a", exp: now() + 60 })}`,
      "TOKEN_INVALID",
      /only HS256/,
    ],
    [
      "a bad signature",
      async () =>
        `Bearer ${await sign("HS256", { sub: "a" }, new TextEncoder().encode("some other secret of 32 bytes!!!"))}`,
      "TOKEN_INVALID",
      /signature does not verify/,
    ],
    [
      "an expired token",
      async () => `Bearer ${await sign("HS256", { sub: "a", exp: now() - 120 })}`,
      "TOKEN_EXPIRED",
      /expired at 20\d\d-/,
    ],
    [
      "a token not valid yet",
      async () => `Bearer ${await sign("HS256", { sub: "a", nbf: now() + 3600 })}`,
      "TOKEN_NOT_YET_VALID",
      /not valid before 20\d\d-/,
    ],
    ["no subject", async () => `Bearer ${await sign("HS256", { exp: now() + 60 })}`, "TOKEN_INVALID", /sub claim/],
    ["not a JWT", async () => "Bearer not-a-token", "TOKEN_MALFORMED", /Bearer <token>/],
    ["another scheme", async () => "Basic YWxpY2U6c2VjcmV0", "TOKEN_MALFORMED", /Bearer <token>/],
  ];

  it.each(cases)("%s", async (_name, header, reason, message) => {
    const outcome = await callWire(
      "connect-json",
      system.gateway.url,
      UserPostService.method.create,
      { h3Index: "x", text: "y" },
      {
        headers: { authorization: await header() },
      },
    );
    if (outcome.ok) throw new Error("accepted a bad token");
    expect(outcome).toMatchObject({ code: "unauthenticated", httpStatus: 401 });
    expect(outcome.message).toMatch(message);
    expect(detailOf(outcome.details, ErrorInfoSchema)?.reason).toBe(reason);
  });

  it("never reaches the API server with a refused token", () => {
    expect(system.apiLogs.lines.filter((l) => l.log_id !== "SYS_001")).toEqual([]);
  });
});

describe("an actor header sent by a caller", () => {
  it("is not trusted: without a token the call is unauthenticated", async () => {
    const outcome = await callWire(
      "grpc",
      system.gateway.url,
      UserPostService.method.delete,
      { id: "x" },
      {
        headers: { "x-bazbii-actor-id": "alice" },
      },
    );
    expect(outcome).toMatchObject({ ok: false, code: "unauthenticated", message: "actor_id not found in context" });
  });
});
