import * as http2 from "node:http2";
import { afterEach, describe, expect, it } from "vitest";
import { HeatmapService } from "../src/gen/bazbii/feed/v1/heatmap_service_pb.js";
import { UserPostService } from "../src/gen/bazbii/post/v1/user_post_service_pb.js";
import { ErrorInfoSchema } from "../src/gen/google/rpc/error_details_pb.js";
import { detailOf } from "./helpers/details.js";
import { startFakeUpstream } from "./helpers/fake-upstream.js";
import { startGatewayFor, startSystem } from "./helpers/system.js";
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

describe("when the API server is down", () => {
  it("answers unavailable (never unknown or internal) on every protocol and logs REQ_012", async () => {
    const system = await startSystem();
    cleanups.push(() => system.close());
    await system.stopApi();
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
        reason: "UPSTREAM_UNREACHABLE",
      });
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
      // The cause is in the log, not in the answer.
      expect(JSON.stringify(line)).toContain("ECONNREFUSED");
      expect(outcome.message).not.toContain("ECONNREFUSED");
    }
  });
});

describe("against a misbehaving upstream peer", () => {
  it("propagates the deadline, the request id and the actor, and never the caller's token or actor header", async () => {
    const peer = await startFakeUpstream((stream) => stream.close(http2.constants.NGHTTP2_CANCEL));
    cleanups.push(() => peer.close());
    const { gateway, token } = await startGatewayFor(peer.url);
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
    expect(headers?.["x-bazbii-actor-id"]).toBe("alice");
    expect(headers?.["accept-language"]).toBe("ja");
    expect(headers?.authorization).toBeUndefined();
    const remaining = Number(headers?.["connect-timeout-ms"]);
    expect(remaining).toBeGreaterThan(4_000);
    expect(remaining).toBeLessThanOrEqual(5_000);
  });

  it("answers deadline_exceeded when the upstream is slower than the caller's deadline", async () => {
    const peer = await startFakeUpstream(() => {}); // never answers
    cleanups.push(() => peer.close());
    const { gateway } = await startGatewayFor(peer.url);
    cleanups.push(() => gateway.close(0));
    for (const protocol of protocols) {
      const started = performance.now();
      const outcome = failure(
        await callWire(protocol, gateway.url, HeatmapService.method.getHeatmap, { h3Res: 3 }, { timeoutMs: 300 }),
      );
      const elapsed = performance.now() - started;
      expect({ protocol, code: outcome.code }).toEqual({ protocol, code: "deadline_exceeded" });
      expect(elapsed).toBeGreaterThanOrEqual(290);
      expect(elapsed).toBeLessThan(2_000);
    }
  });

  it("answers unavailable when the upstream's connection is reset mid-response", async () => {
    const peer = await startFakeUpstream((stream) => {
      stream.respond({ ":status": 200, "content-type": "application/proto" });
      stream.write(Buffer.from([0x0a]));
      // A TCP RST, as from a crashed process or a dropped connection.
      const socket = stream.session?.socket as unknown as { resetAndDestroy(): void } | undefined;
      setImmediate(() => socket?.resetAndDestroy());
    });
    cleanups.push(() => peer.close());
    const { gateway } = await startGatewayFor(peer.url);
    cleanups.push(() => gateway.close(0));
    for (const protocol of protocols) {
      const outcome = failure(await callWire(protocol, gateway.url, HeatmapService.method.getHeatmap, { h3Res: 3 }));
      expect({ protocol, code: outcome.code, reason: outcome.reason }).toEqual({
        protocol,
        code: "unavailable",
        reason: "UPSTREAM_CONNECTION_LOST",
      });
    }
  });
});
