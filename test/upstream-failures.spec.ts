import { create, toBinary } from "@bufbuild/protobuf";
import { decodeJwt } from "jose";
import { afterEach, describe, expect, it, vi } from "vitest";
import { HeatmapService } from "../src/gen/bazbii/feed/v1/heatmap_service_pb.js";
import { GetRequestSchema, UserPostService } from "../src/gen/bazbii/post/v1/user_post_service_pb.js";
import { ErrorInfoSchema, RetryInfoSchema } from "../src/gen/google/rpc/error_details_pb.js";
import { asGateway } from "./helpers/as-gateway.js";
import { detailOf } from "./helpers/details.js";
import { type PeerBehaviour, startFakeUpstream } from "./helpers/fake-upstream.js";
import { type RelayPath, relayPaths } from "./helpers/relay-paths.js";
import { type GatewayOverrides, startGatewayFor, startSystem } from "./helpers/system.js";
import { callWire, closeGrpcClients, type Outcome, protocols } from "./helpers/wire-clients.js";

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  closeGrpcClients();
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

function failure(outcome: Outcome) {
  if (outcome.ok) throw new Error("expected the call to fail");
  return { ...outcome, reason: detailOf(outcome.details, ErrorInfoSchema)?.reason };
}

/** Calls `path` in every protocol, each expected to fail with `code` and `reason`. */
async function expectEveryProtocolToFail(path: RelayPath, url: string, code: string, reason: string): Promise<void> {
  for (const protocol of protocols) {
    const outcome = failure(await path.call(protocol, url));
    expect({ protocol, code: outcome.code, reason: outcome.reason }).toEqual({ protocol, code, reason });
  }
}

describe("when the API server is down", () => {
  async function expectUnavailableEverywhere(
    system: Awaited<ReturnType<typeof startSystem>>,
    reason: string,
    logged: (line: Record<string, unknown>) => void,
  ): Promise<void> {
    const token = await system.token("alice");
    for (const protocol of protocols) {
      const requestId = `down-${protocol}-${crypto.randomUUID()}`;
      const outcome = failure(
        await callWire(
          protocol,
          system.gateway.url,
          UserPostService.method.get,
          { id: "x" },
          {
            headers: { "x-request-id": requestId, authorization: `Bearer ${token}` },
          },
        ),
      );
      expect({ protocol, code: outcome.code, reason: outcome.reason }).toEqual({
        protocol,
        code: "unavailable",
        reason,
      });
      // Not processed: any client may try it again, whatever the method.
      expect(detailOf(outcome.details, ErrorInfoSchema)?.metadata.processed).toBe("false");
      if (protocol.startsWith("connect-")) expect(outcome.httpStatus).toBe(503);
      const [line, ...more] = system.gatewayLogs.forRequest(requestId);
      expect(more).toEqual([]);
      expect(line).toMatchObject({
        log_id: "REQ_012",
        level: "error",
        msg: "API service call failed",
        service: "bazbii.post.v1.UserPostService",
        method: "Get",
        request_id: requestId,
        actor_id: "alice",
        code: "unavailable",
      });
      logged(line as Record<string, unknown>);
      expect(outcome.message).not.toContain("ECONNREFUSED");
    }
  }

  it("answers unavailable at once on every protocol, calling nothing: its health stream told the gateway (NO_HEALTHY_UPSTREAM)", async () => {
    const system = await startSystem();
    cleanups.push(() => system.close());
    await system.stopApi();
    await expect.poll(async () => (await fetch(`${system.gateway.url}/readyz`)).status).toBe(503);
    await expectUnavailableEverywhere(system, "NO_HEALTHY_UPSTREAM", (line) => expect(line.attempts).toBe(0));
  });

  it("without active health checks, finds the connection refused (UPSTREAM_UNREACHABLE), the cause in the log only", async () => {
    const system = await startSystem({
      gateway: { upstream: { healthIntervalMs: 0, outliers: { consecutiveFailures: 100 } } },
    });
    cleanups.push(() => system.close());
    await system.stopApi();
    await expectUnavailableEverywhere(system, "UPSTREAM_UNREACHABLE", (line) =>
      expect(JSON.stringify(line)).toContain("ECONNREFUSED"),
    );
  });
});

/** A gateway in front of a misbehaving peer that outlier detection leaves in, to see each failure's own answer. */
function gatewayFor(url: string, overrides: GatewayOverrides = {}) {
  return startGatewayFor(url, {
    ...overrides,
    upstream: { ...overrides.upstream, outliers: { consecutiveFailures: 1_000 } },
  });
}

describe("against a misbehaving upstream peer", () => {
  it("passes Get on in the caller's own protocol, its bytes unchanged; decodes GetHeatmap into the configured one", async () => {
    const seen: { contentType: string | undefined; body: Buffer; httpVersion: string }[] = [];
    const peer = await startFakeUpstream((call) => {
      const chunks: Buffer[] = [];
      call.req.on("data", (chunk: Buffer) => chunks.push(chunk));
      call.req.on("end", () => {
        seen.push({
          contentType: call.headers["content-type"],
          body: Buffer.concat(chunks),
          httpVersion: call.httpVersion,
        });
        call.respond(503, { "content-type": "text/html" }, "<html>down</html>");
      });
    });
    cleanups.push(() => peer.close());
    const { gateway } = await gatewayFor(peer.url, { upstream: { pool: { protocol: "connect" } } });
    cleanups.push(() => gateway.close(0));
    for (const protocol of protocols) {
      await callWire(protocol, gateway.url, UserPostService.method.get, { id: "p-1" });
    }
    await callWire("connect-json", gateway.url, HeatmapService.method.getHeatmap, { h3Res: 3 });

    const message = Buffer.from(toBinary(GetRequestSchema, create(GetRequestSchema, { id: "p-1" })));
    const enveloped = Buffer.concat([Buffer.from([0, 0, 0, 0, message.length]), message]);
    expect(seen.map((s) => s.contentType)).toEqual([
      "application/json",
      "application/proto",
      "application/grpc",
      "application/grpc-web+proto",
      "application/proto",
    ]);
    // gRPC needs HTTP/2; the byte relay sends Connect and gRPC-Web calls over HTTP/1.1.
    expect(seen.map((s) => s.httpVersion)).toEqual(["1.1", "1.1", "2", "1.1", "2"]);
    expect(JSON.parse(seen[0]?.body.toString() ?? "")).toEqual({ id: "p-1" });
    expect(seen.slice(1, 4).map((s) => s.body.toString("hex"))).toEqual(
      [message, enveloped, enveloped].map((b) => b.toString("hex")),
    );
  });

  it("propagates the deadline, the request id and the actor, and never the caller's token or actor header", async () => {
    const peer = await startFakeUpstream((call) => call.cancel());
    cleanups.push(() => peer.close());
    const { gateway, token } = await gatewayFor(peer.url);
    cleanups.push(() => gateway.close(0));
    await callWire(
      "connect-json",
      gateway.url,
      UserPostService.method.create,
      { h3Index: "x", text: "y" },
      {
        timeoutMs: 5_000,
        headers: {
          authorization: `Bearer ${await token("alice")}`,
          "x-request-id": "propagated-id",
          "x-bazbii-actor-id": "mallory",
          "accept-language": "ja",
        },
      },
    );
    const [headers] = peer.requests;
    expect(headers?.[":path"]).toBe("/bazbii.post.v1.UserPostService/Create");
    expect(headers?.["x-request-id"]).toBe("propagated-id");
    // The actor travels only in the gateway's signed assertion, for this method and this request.
    expect(headers?.["x-bazbii-actor-id"]).toBeUndefined();
    expect(decodeJwt(String(headers?.["x-bazbii-assertion"]))).toMatchObject({
      sub: "alice",
      rpc: "bazbii.post.v1.UserPostService/Create",
      rid: "propagated-id",
    });
    expect(headers?.["accept-language"]).toBe("ja");
    expect(headers?.authorization).toBeUndefined();
    const remaining = Number(headers?.["connect-timeout-ms"]);
    expect(remaining).toBeGreaterThan(4_000);
    expect(remaining).toBeLessThanOrEqual(5_000);
  });

  it.each(relayPaths)(
    "answers deadline_exceeded when the upstream is slower than the caller's deadline ($name)",
    async (path) => {
      const peer = await startFakeUpstream(() => {}); // never answers
      cleanups.push(() => peer.close());
      const { gateway } = await gatewayFor(peer.url);
      cleanups.push(() => gateway.close(0));
      for (const protocol of protocols) {
        const started = performance.now();
        const outcome = failure(await path.call(protocol, gateway.url, { timeoutMs: 300 }));
        const elapsed = performance.now() - started;
        expect({ protocol, code: outcome.code }).toEqual({ protocol, code: "deadline_exceeded" });
        expect(elapsed).toBeGreaterThanOrEqual(290);
        expect(elapsed).toBeLessThan(2_000);
      }
    },
  );

  it.each(relayPaths)(
    "cancels the upstream call when the caller goes away, and logs it as canceled ($name)",
    async (path) => {
      const upstreamEnded = Promise.withResolvers<string>();
      const peer = await startFakeUpstream((call) => {
        call.ended.then(upstreamEnded.resolve); // never answers
      });
      cleanups.push(() => peer.close());
      const { gateway, logs } = await gatewayFor(peer.url);
      cleanups.push(() => gateway.close(0));
      const caller = new AbortController();
      const call = fetch(`${gateway.url}${path.route}`, {
        method: "POST",
        headers: { "content-type": "application/json", "x-request-id": "gone-away" },
        body: path.json,
        signal: caller.signal,
      });
      await vi.waitFor(() => expect(peer.requests).toHaveLength(1));
      caller.abort();
      await expect(call).rejects.toThrow();
      // Connect calls are relayed over HTTP/1.1, whose only way to give up is to close the connection.
      expect(await upstreamEnded.promise).toBe(
        path.name.startsWith("byte relay") ? "connection closed" : "RST_STREAM CANCEL",
      );
      await vi.waitFor(() =>
        expect(logs.forRequest("gone-away")).toEqual([
          expect.objectContaining({ log_id: "REQ_012", level: "info", code: "canceled" }),
        ]),
      );
      expect((await fetch(`${gateway.url}/healthz`)).status).toBe(200);
    },
  );

  it.each(relayPaths)("answers unavailable when the upstream's connection drops mid-response ($name)", async (path) => {
    const peer = await startFakeUpstream((call) => {
      call
        .startAnswer(200, { "content-type": "application/proto" }, Buffer.from([0x0a]))
        .then(() => call.dropConnection());
    });
    cleanups.push(() => peer.close());
    const { gateway } = await gatewayFor(peer.url);
    cleanups.push(() => gateway.close(0));
    await expectEveryProtocolToFail(path, gateway.url, "unavailable", "UPSTREAM_CONNECTION_LOST");
  });
});

describe("answers without an RPC status, from a proxy or a broken peer", () => {
  const html = (status: number, headers: Record<string, string> = {}) =>
    ((call) =>
      call.respond(
        status,
        { "content-type": "text/html", ...headers },
        `<html><body><h1>${status}</h1>nginx</body></html>`,
      )) satisfies PeerBehaviour;

  it.each([
    [502, "unavailable", "UPSTREAM_UNAVAILABLE"],
    [503, "unavailable", "UPSTREAM_UNAVAILABLE"],
    [504, "unavailable", "UPSTREAM_UNAVAILABLE"],
    [429, "unavailable", "UPSTREAM_UNAVAILABLE"],
    [401, "unauthenticated", "UPSTREAM_HTTP_UNAUTHENTICATED"],
    [403, "permission_denied", "UPSTREAM_HTTP_PERMISSION_DENIED"],
    [404, "unimplemented", "UPSTREAM_METHOD_NOT_FOUND"],
    [400, "internal", "UPSTREAM_PROTOCOL_ERROR"],
    [418, "unknown", "UPSTREAM_HTTP_ERROR"],
  ])("an HTML %i page becomes %s (ERROR-MODEL.md's HTTP table)", async (status, code, reason) => {
    const peer = await startFakeUpstream(html(status));
    cleanups.push(() => peer.close());
    // Eight unavailable answers in a row: outlier detection (tested in protection.spec) stays out of the way.
    const { gateway } = await gatewayFor(peer.url, {
      upstream: { outliers: { consecutiveFailures: 100 } },
    });
    cleanups.push(() => gateway.close(0));
    for (const [path, protocol] of relayPaths.flatMap((p) => protocols.map((q) => [p, q] as const))) {
      const outcome = failure(await path.call(protocol, gateway.url));
      expect({ path: path.name, protocol, code: outcome.code, reason: outcome.reason }).toEqual({
        path: path.name,
        protocol,
        code,
        reason,
      });
      expect(outcome.message).not.toContain("nginx");
    }
  });

  it.each(relayPaths)("passes a proxy's Retry-After on as RetryInfo ($name)", async (path) => {
    const peer = await startFakeUpstream(html(503, { "retry-after": "7" }));
    cleanups.push(() => peer.close());
    const { gateway } = await gatewayFor(peer.url);
    cleanups.push(() => gateway.close(0));
    const outcome = failure(await path.call("connect-json", gateway.url));
    expect(detailOf(outcome.details, RetryInfoSchema)?.retryDelay?.seconds).toBe(7n);
    expect(detailOf(outcome.details, ErrorInfoSchema)?.metadata).toEqual({ httpStatus: "503" });
  });

  it.each(relayPaths)("a 200 whose body is not a message becomes internal ($name)", async (path) => {
    const peer = await startFakeUpstream((call) =>
      call.respond(200, { "content-type": "application/proto" }, Buffer.from([0xff, 0xff, 0xff, 0xff, 0x0f, 0x07])),
    );
    cleanups.push(() => peer.close());
    const { gateway } = await gatewayFor(peer.url);
    cleanups.push(() => gateway.close(0));
    await expectEveryProtocolToFail(path, gateway.url, "internal", "UPSTREAM_PROTOCOL_ERROR");
  });

  it.each(relayPaths)("a gRPC response that ends without grpc-status becomes internal ($name)", async (path) => {
    // One empty message, then no trailers at all.
    const peer = await startFakeUpstream((call) =>
      call.respond(200, { "content-type": "application/grpc" }, Buffer.from([0, 0, 0, 0, 0])),
    );
    cleanups.push(() => peer.close());
    const { gateway } = await gatewayFor(peer.url, { upstream: { pool: { protocol: "grpc" } } });
    cleanups.push(() => gateway.close(0));
    await expectEveryProtocolToFail(path, gateway.url, "internal", "UPSTREAM_PROTOCOL_ERROR");
  });

  it("relays a real gRPC upstream's errors unchanged (gRPC upstream transport)", async () => {
    const system = await startSystem({ gateway: { upstream: { pool: { protocol: "grpc" } } } });
    cleanups.push(() => system.close());
    const viaGateway = failure(
      await callWire(
        "grpc",
        system.gateway.url,
        UserPostService.method.get,
        { id: "q" },
        {
          headers: { "x-request-id": "grpc-upstream" },
        },
      ),
    );
    const direct = failure(
      await callWire(
        "grpc",
        system.api.url,
        UserPostService.method.get,
        { id: "q" },
        {
          headers: asGateway(UserPostService.method.get, undefined, "grpc-upstream"),
        },
      ),
    );
    expect(viaGateway).toMatchObject({ code: "not_found", message: "post not found: q", reason: "POST_NOT_FOUND" });
    expect(viaGateway.details).toEqual(direct.details);
  });
});
