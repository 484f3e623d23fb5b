import { jwtVerify } from "jose";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { apiConfigFromEnv } from "../src/config/api-config.js";
import { DEVELOPMENT_INTERNAL_AUTH_SECRET } from "../src/config/env.js";
import { gatewayConfigFromEnv } from "../src/config/gateway-config.js";
import { UserPostService } from "../src/gen/bazbii/post/v1/user_post_service_pb.js";
import { ErrorInfoSchema } from "../src/gen/google/rpc/error_details_pb.js";
import { ASSERTION_HEADER, signAssertion, verifyAssertion } from "../src/shared/internal-assertion.js";
import { asGateway } from "./helpers/as-gateway.js";
import { detailOf } from "./helpers/details.js";
import { type System, startSystem } from "./helpers/system.js";
import { callWire, closeGrpcClients, type Outcome, protocols } from "./helpers/wire-clients.js";

// The API server believes an actor only from a gateway's signed assertion for
// that very call: a caller that reaches its port without a gateway gets nothing.

let system: System;
let alicePost: string;
beforeAll(async () => {
  system = await startSystem();
  const created = await callWire(
    "connect-json",
    system.gateway.url,
    UserPostService.method.create,
    { h3Index: "8928308280fffff", text: "alice's" },
    { headers: { authorization: `Bearer ${await system.token("alice")}` } },
  );
  if (!created.ok) throw new Error("setup failed");
  alicePost = (created.response as { id: string }).id;
});
afterAll(async () => {
  closeGrpcClients();
  await system?.close();
});

const reasonOf = (o: Outcome) => (o.ok ? undefined : detailOf(o.details, ErrorInfoSchema)?.reason);
const deleteMethod = UserPostService.method.delete;

describe("a call straight to the API server's port", () => {
  const forgeries: [string, () => Record<string, string>][] = [
    ["an actor header and no assertion", () => ({ "x-bazbii-actor-id": "alice" })],
    [
      "an assertion signed with another secret",
      () => {
        const requestId = crypto.randomUUID();
        const rpcMethod = "bazbii.post.v1.UserPostService/Delete";
        const token = signAssertion("not-the-secret-not-the-secret-not", { actorId: "alice", rpcMethod, requestId });
        return { "x-request-id": requestId, [ASSERTION_HEADER]: token };
      },
    ],
    [
      "an assertion for another method (Get), replayed",
      () => asGateway(UserPostService.method.get, "alice", "replayed-1"),
    ],
    [
      "an assertion for another request, replayed",
      () => ({ ...asGateway(deleteMethod, "alice", "first-request"), "x-request-id": "second-request" }),
    ],
    [
      "an expired assertion",
      () => {
        const requestId = crypto.randomUUID();
        const rpcMethod = "bazbii.post.v1.UserPostService/Delete";
        const token = signAssertion(
          DEVELOPMENT_INTERNAL_AUTH_SECRET,
          { actorId: "alice", rpcMethod, requestId },
          Date.now() - 10 * 60_000,
        );
        return { "x-request-id": requestId, [ASSERTION_HEADER]: token };
      },
    ],
    [
      "a tampered assertion (another actor, the same signature)",
      () => {
        const headers = asGateway(deleteMethod, "mallory");
        const [h, p, sig] = String(headers[ASSERTION_HEADER]).split(".");
        const claims = JSON.parse(Buffer.from(p as string, "base64url").toString());
        const forged = Buffer.from(JSON.stringify({ ...claims, sub: "alice" })).toString("base64url");
        return { ...headers, [ASSERTION_HEADER]: `${h}.${forged}.${sig}` };
      },
    ],
  ];

  it.each(forgeries)(
    "with %s is refused (unauthenticated, REQ_004) in every protocol, and deletes nothing",
    async (_name, headersOf) => {
      for (const protocol of protocols) {
        const outcome = await callWire(
          protocol,
          system.api.url,
          deleteMethod,
          { id: alicePost },
          { headers: headersOf() },
        );
        expect({ protocol, ok: outcome.ok, code: outcome.ok ? "ok" : outcome.code, reason: reasonOf(outcome) }).toEqual(
          {
            protocol,
            ok: false,
            code: "unauthenticated",
            reason: "INTERNAL_CALL_UNAUTHENTICATED",
          },
        );
      }
      expect(system.apiLogs.withLogId("REQ_004").length).toBeGreaterThan(0);
      // The post is still there.
      expect(
        await callWire("connect-json", system.gateway.url, UserPostService.method.get, { id: alicePost }),
      ).toMatchObject({
        ok: true,
      });
    },
  );

  it("is served with the assertion a gateway signs for it, and health needs none", async () => {
    const get = await callWire(
      "grpc",
      system.api.url,
      UserPostService.method.get,
      { id: alicePost },
      {
        headers: asGateway(UserPostService.method.get),
      },
    );
    expect(get).toMatchObject({ ok: true });
    const health = await fetch(`${system.api.url}/grpc.health.v1.Health/Check`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: "{}",
    });
    expect(await health.json()).toEqual({ status: "SERVING" });
  });
});

describe("the assertion", () => {
  it("is a standard HS256 JWT that jose verifies, naming the actor, the method and the request", async () => {
    const token = signAssertion("a-secret-of-thirty-two-bytes-abc", {
      actorId: "alice",
      rpcMethod: "bazbii.post.v1.UserPostService/Delete",
      requestId: "r-1",
    });
    const { payload, protectedHeader } = await jwtVerify(
      token,
      new TextEncoder().encode("a-secret-of-thirty-two-bytes-abc"),
    );
    expect(protectedHeader.alg).toBe("HS256");
    expect(payload).toMatchObject({ sub: "alice", rpc: "bazbii.post.v1.UserPostService/Delete", rid: "r-1" });
    expect(Number(payload.exp) - Number(payload.iat)).toBe(60);
    expect(
      verifyAssertion("a-secret-of-thirty-two-bytes-abc", token, {
        rpcMethod: "bazbii.post.v1.UserPostService/Delete",
        requestId: "r-1",
      }),
    ).toEqual({ actorId: "alice" });
  });

  it("has a development default that production refuses, in both processes", () => {
    for (const read of [apiConfigFromEnv, gatewayConfigFromEnv]) {
      expect(() => read({ NODE_ENV: "production", AUTH_JWT_SECRET: "x".repeat(40) })).toThrow(/INTERNAL_AUTH_SECRET/);
      expect(() =>
        read({
          NODE_ENV: "production",
          AUTH_JWT_SECRET: "x".repeat(40),
          INTERNAL_AUTH_SECRET: "y".repeat(40),
          DEV_TOKENS: "false",
        }),
      ).not.toThrow();
    }
  });
});
