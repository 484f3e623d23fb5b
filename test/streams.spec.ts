import { cellToParent, latLngToCell } from "h3-js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { HeatmapService } from "../src/gen/bazbii/feed/v1/heatmap_service_pb.js";
import { UserPostService } from "../src/gen/bazbii/post/v1/user_post_service_pb.js";
import { asGateway } from "./helpers/as-gateway.js";
import { metricValue, timeUntil } from "./helpers/load.js";
import { freshPostgresSchema } from "./helpers/postgres.js";
import { type StreamEnd, streamProtocols, type WatchMessage, watchHeatmap } from "./helpers/stream-clients.js";
import { type System, startApi, startGatewayFor, startSystem } from "./helpers/system.js";
import { callWire, closeGrpcClients } from "./helpers/wire-clients.js";

afterAll(() => closeGrpcClients());

const NATS_URL = "nats://127.0.0.1:4222";

/** A post somewhere random (so tests running at once do not share cells), and its cell at `res`. */
function somewhere(res: number): { h3Index: string; cell: string } {
  const h3Index = latLngToCell(-60 + Math.random() * 120, -170 + Math.random() * 340, 9);
  return { h3Index, cell: cellToParent(h3Index, res) };
}

async function createPost(baseUrl: string, token: string, h3Index: string): Promise<string> {
  const outcome = await callWire(
    "connect-json",
    baseUrl,
    UserPostService.method.create,
    { h3Index, text: "live", requestId: crypto.randomUUID() },
    { headers: { authorization: `Bearer ${token}` } },
  );
  if (!outcome.ok) throw new Error(`Create failed: ${JSON.stringify(outcome)}`);
  return (outcome.response as { id: string }).id;
}

const countIn = (m: WatchMessage, cell: string) => m.cells.find((c) => c.h3Index === cell)?.postCount;

describe("WatchHeatmap through the gateway", () => {
  let s: System;

  beforeAll(async () => {
    s = await startSystem({
      api: { faultInjection: true },
      gateway: { faultInjection: true, streamLimits: { maxStreams: 1000, maxStreamsPerCaller: 1000 } },
    });
  });

  afterAll(async () => s?.close());

  it("sends the snapshot, then each change within 1 s, in every protocol", async () => {
    const token = await s.token("watcher");
    const { h3Index, cell } = somewhere(5);
    await createPost(s.gateway.url, token, h3Index);
    const watches = streamProtocols.map((p) => watchHeatmap(p, s.gateway.url, { h3Res: 5 }));
    for (const watch of watches) {
      const snapshot = await watch.message((m) => m.snapshot);
      expect(countIn(snapshot, cell)).toBe(1);
    }
    const created = performance.now();
    const second = await createPost(s.gateway.url, token, h3Index);
    for (const watch of watches) {
      const update = await watch.message((m) => !m.snapshot && countIn(m, cell) === 2, 1_000);
      expect(update.cells).toEqual([{ h3Index: cell, postCount: 2 }]);
    }
    expect(performance.now() - created).toBeLessThan(1_000);
    // A deletion empties nothing yet; the count goes down.
    await callWire(
      "connect-json",
      s.gateway.url,
      UserPostService.method.delete,
      { id: second },
      { headers: { authorization: `Bearer ${token}` } },
    );
    for (const watch of watches) await watch.message((m) => !m.snapshot && countIn(m, cell) === 1, 1_000);
    for (const watch of watches) watch.close();
  });

  it("answers a bad request before the first message with invalid_argument in every protocol", async () => {
    for (const protocol of streamProtocols) {
      const watch = watchHeatmap(protocol, s.gateway.url, { h3Res: 16 });
      const end = await watch.ended;
      expect({ protocol, messages: watch.messages.length, ...end }).toMatchObject({
        protocol,
        messages: 0,
        ok: false,
        code: "invalid_argument",
        message: "h3_res must be between 0 and 15",
      });
    }
  });

  it("passes an error mid-stream on with the code, message and details the API server sent, in every protocol", async () => {
    const headers = (requestId: string) => ({
      "x-request-id": requestId,
      "x-bazbii-fault-abort": "unavailable",
      "x-bazbii-fault-abort-after-messages": "1",
      "x-bazbii-fault-retry-delay-ms": "750",
    });
    for (const protocol of streamProtocols) {
      const requestId = `mid-stream-${crypto.randomUUID()}`;
      const direct = watchHeatmap(
        protocol,
        s.api.url,
        { h3Res: 3 },
        {
          headers: { ...headers(requestId), ...asGateway(HeatmapService.method.watchHeatmap, undefined, requestId) },
        },
      );
      const relayed = watchHeatmap(protocol, s.gateway.url, { h3Res: 3 }, { headers: headers(requestId) });
      const [directEnd, relayedEnd] = await Promise.all([direct.ended, relayed.ended]);
      expect({ protocol, messages: relayed.messages.length }).toEqual({ protocol, messages: 1 });
      expect({ protocol, messages: direct.messages.length }).toEqual({ protocol, messages: 1 });
      expect(directEnd).toMatchObject({ ok: false, code: "unavailable" });
      expect({ protocol, ...relayedEnd }).toEqual({ protocol, ...directEnd });
      expect((directEnd as Extract<StreamEnd, { ok: false }>).details.map((d) => d.type)).toContain(
        "google.rpc.RetryInfo",
      );
    }
  });

  it("releases the API server's subscription within 100 ms of the caller going away", async () => {
    const open = () => metricValue(s.api.url, "bazbii_heatmap_watches_open", "") as Promise<number>;
    const before = await open();
    const watch = watchHeatmap("connect-web", s.gateway.url, { h3Res: 4 });
    await watch.message((m) => m.snapshot);
    expect(await open()).toBe(before + 1);
    const closed = performance.now();
    watch.close();
    await timeUntil(async () => (await open()) === before, 100);
    expect(performance.now() - closed).toBeLessThan(100);
  });
});

describe("stream limits and ends", () => {
  it("refuses streams beyond MAX_STREAMS_PER_CALLER with resource_exhausted and RetryInfo, apart from unary calls", async () => {
    const s = await startSystem({
      gateway: { maxInFlight: 1, streamLimits: { maxStreams: 100, maxStreamsPerCaller: 2 } },
    });
    try {
      const open = [1, 2].map(() => watchHeatmap("connect-web", s.gateway.url, { h3Res: 2 }));
      for (const w of open) await w.message((m) => m.snapshot);
      const third = await watchHeatmap("grpc-js", s.gateway.url, { h3Res: 2 }).ended;
      expect(third).toMatchObject({ ok: false, code: "resource_exhausted" });
      expect((third as Extract<StreamEnd, { ok: false }>).details.map((d) => d.type)).toEqual(
        expect.arrayContaining(["google.rpc.QuotaFailure", "google.rpc.RetryInfo"]),
      );
      // Two streams open and MAX_IN_FLIGHT=1: unary calls are not held back by streams.
      const get = await callWire("grpc", s.gateway.url, UserPostService.method.get, { id: "nope" });
      expect(get).toMatchObject({ ok: false, code: "not_found" });
      for (const w of open) w.close();
      // A slot freed is a slot to take.
      await timeUntil(async () => {
        const w = watchHeatmap("connect-web", s.gateway.url, { h3Res: 2 });
        const first = await Promise.race([w.message((m) => m.snapshot).then(() => true), w.ended.then(() => false)]);
        w.close();
        return first;
      }, 1_000);
    } finally {
      await s.close();
    }
  });

  it("ends a stream at MAX_STREAM_DURATION_MS with unavailable and RetryInfo", async () => {
    const s = await startSystem({ gateway: { maxStreamDurationMs: 300 } });
    try {
      const watch = watchHeatmap("grpc-js", s.gateway.url, { h3Res: 2 });
      const end = await watch.ended;
      expect(watch.messages[0]?.snapshot).toBe(true);
      expect(end).toMatchObject({ ok: false, code: "unavailable" });
      expect((end as Extract<StreamEnd, { ok: false }>).message).toMatch(/longest duration of 300 ms/);
    } finally {
      await s.close();
    }
  });

  it.each(["gateway", "API server"] as const)(
    "ends every stream with unavailable and RetryInfo when the %s begins to drain",
    async (which) => {
      const s = await startSystem();
      try {
        const watches = streamProtocols.map((p) => watchHeatmap(p, s.gateway.url, { h3Res: 2 }));
        for (const w of watches) await w.message((m) => m.snapshot);
        (which === "gateway" ? s.gateway : s.api).drain();
        for (const w of watches) {
          const end = await w.ended;
          expect(end).toMatchObject({ ok: false, code: "unavailable" });
          expect((end as Extract<StreamEnd, { ok: false }>).message).toMatch(/restarting and ended this stream/);
        }
      } finally {
        await s.close();
      }
    },
  );
});

describe("WatchHeatmap across API server replicas (PostgreSQL and the real NATS)", () => {
  it("delivers a post created through one API server to watchers of another within 1 s, in every protocol", async () => {
    const schema = await freshPostgresSchema();
    const nats = { url: NATS_URL, maxReconnectAttempts: -1 };
    const first = await startApi({ database: "postgres", databaseUrl: schema.url, api: { nats } });
    const second = await startApi({ database: "postgres", databaseUrl: schema.url, api: { nats } });
    const viaFirst = await startGatewayFor(first.api.url);
    const viaSecond = await startGatewayFor(second.api.url);
    try {
      const watches = streamProtocols.map((p) => watchHeatmap(p, viaSecond.gateway.url, { h3Res: 6 }));
      for (const w of watches) await w.message((m) => m.snapshot);
      const { h3Index, cell } = somewhere(6);
      const created = performance.now();
      await createPost(viaFirst.gateway.url, await viaFirst.token("far-away"), h3Index);
      for (const w of watches) await w.message((m) => countIn(m, cell) === 1, 1_000);
      expect(performance.now() - created).toBeLessThan(1_000);
      for (const w of watches) w.close();
    } finally {
      await viaFirst.gateway.close(0);
      await viaSecond.gateway.close(0);
      await first.api.close(0);
      await second.api.close(0);
      await first.cleanup();
      await second.cleanup();
      await schema.drop();
    }
  });
});
