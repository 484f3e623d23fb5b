import { createClient } from "@connectrpc/connect";
import { createConnectTransport, createGrpcTransport } from "@connectrpc/connect-node";
import { cellToParent, latLngToCell } from "h3-js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { HeatmapService } from "../src/gen/bazbii/feed/v1/heatmap_service_pb.js";
import { UserPostService } from "../src/gen/bazbii/post/v1/user_post_service_pb.js";
import { type System, startSystem } from "./helpers/system.js";
import { callWire, closeGrpcClients } from "./helpers/wire-clients.js";

let system: System;

beforeAll(async () => {
  system = await startSystem();
});
afterAll(async () => {
  closeGrpcClients();
  await system?.close();
});

describe.each([
  ["Connect over HTTP/1.1", () => createConnectTransport({ baseUrl: system.gateway.url, httpVersion: "1.1" })],
  ["gRPC over h2c", () => createGrpcTransport({ baseUrl: system.gateway.url })],
])("through the gateway with %s", (_name, transport) => {
  it("creates a post, reads it back, counts it in the heatmap, and deletes it", async () => {
    const posts = createClient(UserPostService, transport());
    const heatmap = createClient(HeatmapService, transport());
    const actor = `actor-${crypto.randomUUID()}`;
    const headers = { authorization: `Bearer ${await system.token(actor)}` };
    // A cell of its own for this test; its coarse parents (resolution 0 has only
    // 122 cells) may hold other tests' posts, so counts are compared with before.
    const cell = latLngToCell(-60 + Math.random() * 120, -170 + Math.random() * 340, 9);
    const resolutions = [9, 5, 0];
    const countAt = async (res: number) => {
      const { cells } = await heatmap.getHeatmap({ h3Res: res, within: cellToParent(cell, res) });
      return cells[0]?.postCount ?? 0;
    };
    const before = await Promise.all(resolutions.map(countAt));
    expect(before[0]).toBe(0);

    const { id } = await posts.create(
      { h3Index: cell, text: "こんにちは, Bazbii", requestId: crypto.randomUUID() },
      { headers },
    );
    expect(id).toMatch(/^[0-9a-f-]{36}$/);

    const { post } = await posts.get({ id });
    expect(post).toMatchObject({ id, actorId: actor, h3Index: cell, text: "こんにちは, Bazbii" });
    expect(Date.now() - Number(post?.createTime?.seconds) * 1000).toBeLessThan(60_000);

    for (const [i, res] of resolutions.entries()) {
      const parent = cellToParent(cell, res);
      const { cells } = await heatmap.getHeatmap({ h3Res: res, within: parent });
      expect(cells, `resolution ${res}`).toEqual([
        expect.objectContaining({ h3Index: parent, postCount: (before[i] ?? 0) + 1 }),
      ]);
    }

    await posts.delete({ id }, { headers });
    await expect(posts.get({ id })).rejects.toMatchObject({ rawMessage: `post not found: ${id}` });
    const after = await heatmap.getHeatmap({ h3Res: 9, within: cell });
    expect(after.cells).toEqual([]);
  });

  it("answers a repeated Create (same actor, same request_id) with the same id and stores one post", async () => {
    const posts = createClient(UserPostService, transport());
    const heatmap = createClient(HeatmapService, transport());
    const headers = { authorization: `Bearer ${await system.token("idempotent-actor")}` };
    const cell = latLngToCell(-60 + Math.random() * 120, -170 + Math.random() * 340, 10);
    const request = { h3Index: cell, text: "once", requestId: crypto.randomUUID() };

    const ids = await Promise.all([1, 2, 3].map(() => posts.create(request, { headers })));
    expect(new Set(ids.map((r) => r.id)).size).toBe(1);
    const { cells } = await heatmap.getHeatmap({ h3Res: 10, within: cell });
    expect(cells).toEqual([expect.objectContaining({ h3Index: cell, postCount: 1 })]);
  });
});

describe("request ids", () => {
  it("echoes a well-formed x-request-id and replaces a malformed one", async () => {
    const good = await callWire(
      "connect-json",
      system.gateway.url,
      HeatmapService.method.getHeatmap,
      { h3Res: 3 },
      {
        headers: { "x-request-id": "client-chosen.id-42" },
      },
    );
    expect(good.requestId).toBe("client-chosen.id-42");
    const bad = await callWire(
      "connect-json",
      system.gateway.url,
      HeatmapService.method.getHeatmap,
      { h3Res: 3 },
      {
        headers: { "x-request-id": "has spaces\tand tabs" },
      },
    );
    expect(bad.requestId).toMatch(/^[0-9a-f-]{36}$/);
  });
});

describe("GET /healthz and grpc.health.v1", () => {
  it("answers 200 SERVING on both servers", async () => {
    for (const url of [system.gateway.url, system.api.url]) {
      const res = await fetch(`${url}/healthz`);
      expect(res.status).toBe(200);
      expect(await res.json()).toEqual({ status: "SERVING" });
    }
  });
});
