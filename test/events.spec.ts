import { setTimeout as sleep } from "node:timers/promises";
import { connect } from "@nats-io/transport-node";
import { afterEach, describe, expect, it } from "vitest";
import { UserPostService } from "../src/gen/bazbii/post/v1/user_post_service_pb.js";
import { type System, startSystem } from "./helpers/system.js";
import { TcpProxy } from "./helpers/tcp-proxy.js";
import { callWire, closeGrpcClients } from "./helpers/wire-clients.js";

const NATS = { host: "127.0.0.1", port: 4222 };
const cleanups: (() => Promise<unknown> | unknown)[] = [];
afterEach(async () => {
  closeGrpcClients();
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

async function createWithBadCell(s: System, requestId: string) {
  return callWire(
    "connect-json",
    s.gateway.url,
    UserPostService.method.create,
    { h3Index: "nowhere", text: "x" },
    {
      headers: { authorization: `Bearer ${await s.token("eve")}`, "x-request-id": requestId },
    },
  );
}

describe("domain events on the real NATS at 127.0.0.1:4222", () => {
  it("publishes post.CreationFailedEvent{reason, actor_id} when a creation fails", async () => {
    const nc = await connect({ servers: `${NATS.host}:${NATS.port}` });
    cleanups.push(() => nc.close());
    const sub = nc.subscribe("bazbii.events.>");
    const s = await startSystem({
      api: { nats: { url: `nats://${NATS.host}:${NATS.port}`, maxReconnectAttempts: -1 } },
    });
    cleanups.push(() => s.close());
    await nc.flush();

    const requestId = `event-${crypto.randomUUID()}`;
    expect(await createWithBadCell(s, requestId)).toMatchObject({ ok: false, code: "invalid_argument" });
    for await (const msg of sub) {
      expect(msg.subject).toBe("bazbii.events.post.CreationFailedEvent");
      expect(msg.json()).toMatchObject({
        name: "post.CreationFailedEvent",
        reason: "invalid_h3_index",
        actorId: "eve",
      });
      break;
    }
    expect(s.apiLogs.forRequest(requestId).map((l) => l.log_id)).toEqual(["EVT_POST_003"]);
  });

  it("reports an event it cannot deliver (EVT_BUS_001 and a metric) without failing the request", async () => {
    const proxy = await TcpProxy.start(NATS);
    cleanups.push(() => proxy.cut());
    const s = await startSystem({ api: { nats: { url: `nats://127.0.0.1:${proxy.port}`, maxReconnectAttempts: 1 } } });
    cleanups.push(() => s.close());
    await proxy.cut(); // the connection is lost and its one reconnect attempt fails: it closes for good

    // Poll until the closed connection refuses a publish (bounded: about 5 s).
    let failedRequest: string | undefined;
    for (let i = 0; i < 50 && failedRequest === undefined; i++) {
      const requestId = `lost-${i}-${crypto.randomUUID()}`;
      expect(await createWithBadCell(s, requestId)).toMatchObject({ ok: false, code: "invalid_argument" });
      if (s.apiLogs.forRequest(requestId).some((l) => l.log_id === "EVT_BUS_001")) failedRequest = requestId;
      else await sleep(100);
    }
    expect(failedRequest).toBeDefined();
    const lines = s.apiLogs.forRequest(failedRequest as string);
    expect(lines.map((l) => l.log_id).sort()).toEqual(["EVT_BUS_001", "EVT_POST_003"]);
    expect(lines.find((l) => l.log_id === "EVT_BUS_001")).toMatchObject({
      level: "error",
      event: "post.CreationFailedEvent",
    });
    const metrics = await (await fetch(`${s.api.url}/metrics`)).text();
    expect(metrics).toMatch(
      /^bazbii_event_publish_failures_total\{[^}]*event="post.CreationFailedEvent"[^}]*\} [1-9]/m,
    );
  });
});
