import { readFile } from "node:fs/promises";
import { ConnectError } from "@connectrpc/connect";
import * as grpc from "@grpc/grpc-js";
import * as protoLoader from "@grpc/proto-loader";
import { latLngToCell } from "h3-js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createNodeClient } from "../src/client/node.js";
import type { GiveUpEvent, RetryEvent, RetryOptions } from "../src/client/retry-interceptor.js";
import { RetryThrottle } from "../src/client/retry-throttle.js";
import { HeatmapService } from "../src/gen/bazbii/feed/v1/heatmap_service_pb.js";
import { UserPostService } from "../src/gen/bazbii/post/v1/user_post_service_pb.js";
import { PROTO_INCLUDE_DIRS } from "./helpers/proto-dirs.js";
import { type System, startSystem } from "./helpers/system.js";

// The retry-aware client against the real gateway and API server, with faults
// from the fault-injection headers (x-bazbii-fault-*), which count attempts
// by the grpc-previous-rpc-attempts header the client sends.

let system: System;
let existingPostId: string;
beforeAll(async () => {
  system = await startSystem({ api: { faultInjection: true }, gateway: { faultInjection: true } });
  const posts = createNodeClient(UserPostService, { baseUrl: system.gateway.url });
  const auth = { authorization: `Bearer ${await system.token("retry-author")}` };
  ({ id: existingPostId } = await posts.create(
    { h3Index: latLngToCell(48, 2, 9), text: "retry me" },
    { headers: auth },
  ));
});
afterAll(async () => {
  await system?.close();
});

function recorder(extra: RetryOptions = {}) {
  const retries: RetryEvent[] = [];
  const giveUps: GiveUpEvent[] = [];
  const retry: RetryOptions = { ...extra, onRetry: (e) => retries.push(e), onGiveUp: (e) => giveUps.push(e) };
  return { retries, giveUps, retry };
}

describe.each(["connect", "grpc", "grpc-web"] as const)("the retry-aware client over %s", (protocol) => {
  it("gets through two unavailables on attempt three, with backoff inside the ±20% jitter bounds", async () => {
    const { retries, retry } = recorder();
    const posts = createNodeClient(UserPostService, { baseUrl: system.gateway.url, protocol, retry });
    const { post } = await posts.get(
      { id: existingPostId },
      { headers: { "x-bazbii-fault-abort": "unavailable", "x-bazbii-fault-abort-attempts": "2" } },
    );
    expect(post?.id).toBe(existingPostId);
    expect(retries.map((r) => [r.attempt, r.error.code, r.delaySource])).toEqual([
      [1, 14, "backoff"],
      [2, 14, "backoff"],
    ]);
    const [first, second] = retries.map((r) => r.delayMs);
    expect(first).toBeGreaterThanOrEqual(80);
    expect(first).toBeLessThanOrEqual(120);
    expect(second).toBeGreaterThanOrEqual(160);
    expect(second).toBeLessThanOrEqual(240);
  });

  it("tries invalid_argument once", async () => {
    const { retries, giveUps, retry } = recorder();
    const heatmap = createNodeClient(HeatmapService, { baseUrl: system.gateway.url, protocol, retry });
    const requestId = `once-${protocol}-${crypto.randomUUID()}`;
    await expect(heatmap.getHeatmap({ h3Res: 16 }, { headers: { "x-request-id": requestId } })).rejects.toMatchObject({
      code: 3,
    });
    expect(retries).toEqual([]);
    expect(giveUps.map((g) => [g.attempts, g.reason])).toEqual([[1, "not-retryable"]]);
    expect(system.gatewayLogs.forRequest(requestId)).toHaveLength(1);
  });
});

describe("exactly-once Create", () => {
  it("retries a Create whose answer was lost after the post was stored, and gets the same id and one post", async () => {
    const { retries, retry } = recorder();
    const posts = createNodeClient(UserPostService, { baseUrl: system.gateway.url, protocol: "grpc", retry });
    const heatmap = createNodeClient(HeatmapService, { baseUrl: system.gateway.url });
    const cell = latLngToCell(-20 + Math.random() * 40, 100 + Math.random() * 40, 11);
    const request = { h3Index: cell, text: "exactly once" }; // no request_id: the client makes one
    const { id } = await posts.create(request, {
      headers: {
        authorization: `Bearer ${await system.token("once-only")}`,
        "x-bazbii-fault-at": "gateway-response",
        "x-bazbii-fault-abort": "unavailable",
        "x-bazbii-fault-abort-attempts": "1",
      },
    });
    expect(retries).toHaveLength(1);
    const { cells } = await heatmap.getHeatmap({ h3Res: 11, within: cell });
    expect(cells).toEqual([expect.objectContaining({ h3Index: cell, postCount: 1 })]);
    const { post } = await posts.get({ id });
    expect(post?.h3Index).toBe(cell);
  });
});

describe("server pushback and deadlines", () => {
  it("waits at least the delay the server gives with resource_exhausted", async () => {
    const { retries, retry } = recorder();
    const posts = createNodeClient(UserPostService, { baseUrl: system.gateway.url, retry });
    const started = performance.now();
    await posts.get(
      { id: existingPostId },
      {
        headers: {
          "x-bazbii-fault-abort": "resource_exhausted",
          "x-bazbii-fault-retry-delay-ms": "300",
          "x-bazbii-fault-abort-attempts": "1",
        },
      },
    );
    expect(performance.now() - started).toBeGreaterThanOrEqual(300);
    expect(retries.map((r) => [r.delayMs, r.delaySource])).toEqual([[300, "grpc-retry-pushback-ms"]]);
  });

  it("never runs past a 300 ms deadline by more than a scheduling quantum, however many failures", async () => {
    const { giveUps, retry } = recorder({ initialBackoffMs: 20 });
    const posts = createNodeClient(UserPostService, { baseUrl: system.gateway.url, retry });
    const started = performance.now();
    const failure = await posts
      .get({ id: existingPostId }, { timeoutMs: 300, headers: { "x-bazbii-fault-abort": "unavailable" } })
      .catch((e: unknown) => ConnectError.from(e));
    const elapsed = performance.now() - started;
    expect(failure).toBeInstanceOf(ConnectError);
    expect(elapsed).toBeLessThan(300 + 40);
    expect(giveUps.at(-1)?.reason).toMatch(/deadline|attempts-exhausted/);
  });
});

describe("throttling", () => {
  it("stops retrying after repeated failures, and retries again after successes", async () => {
    const throttle = new RetryThrottle(10, 0.1);
    const { retries, giveUps, retry } = recorder({ throttle, initialBackoffMs: 5, maxBackoffMs: 10 });
    const posts = createNodeClient(UserPostService, { baseUrl: system.gateway.url, retry });
    const failing = { headers: { "x-bazbii-fault-abort": "unavailable" } };
    const attempt = () => posts.get({ id: existingPostId }, failing).catch(() => undefined);

    await attempt(); // 4 attempts: tokens 10 → 6
    await attempt(); // 1 attempt: tokens 6 → 5, at half: no retry
    expect(giveUps.map((g) => [g.attempts, g.reason])).toEqual([
      [4, "attempts-exhausted"],
      [1, "throttled"],
    ]);
    const retriesBefore = retries.length;
    await attempt(); // still throttled
    expect(retries.length).toBe(retriesBefore);

    await posts.get({ id: existingPostId }); // a success gives back 0.1: 4.x → still at or below half
    for (let i = 0; i < 20; i++) await posts.get({ id: existingPostId });
    expect(throttle.allowsRetry()).toBe(true);
    await attempt();
    expect(retries.length).toBeGreaterThan(retriesBefore);
  });
});

describe("a grpc-js client loading the generated service config", () => {
  it("retries unavailable against the gateway, and its attempts show in the server's metrics", async () => {
    const serviceConfig = await readFile("src/gen/service_config.json", "utf8");
    const definition = protoLoader.loadSync("bazbii/post/v1/user_post_service.proto", {
      includeDirs: PROTO_INCLUDE_DIRS,
    });
    const root = grpc.loadPackageDefinition(definition) as unknown as {
      bazbii: { post: { v1: { UserPostService: grpc.ServiceClientConstructor } } };
    };
    const client = new root.bazbii.post.v1.UserPostService(
      new URL(system.gateway.url).host,
      grpc.credentials.createInsecure(),
      {
        "grpc.service_config": serviceConfig,
        "grpc.enable_retries": 1,
      },
    );
    try {
      const metadata = new grpc.Metadata();
      metadata.set("x-bazbii-fault-abort", "unavailable");
      metadata.set("x-bazbii-fault-abort-attempts", "2");
      const response = await new Promise<{ post: { id: string } }>((resolve, reject) =>
        (client as unknown as Record<string, (...a: unknown[]) => void>).Get?.(
          { id: existingPostId },
          metadata,
          (err: Error | null, res: { post: { id: string } }) => (err ? reject(err) : resolve(res)),
        ),
      );
      expect(response.post.id).toBe(existingPostId);
      const metrics = await (await fetch(`${system.gateway.url}/metrics`)).text();
      const retried = /^rpc_server_retried_calls_total\{[^}]*rpc_method="Get"[^}]*\} (\d+)/m.exec(metrics);
      expect(Number(retried?.[1])).toBeGreaterThanOrEqual(2);
    } finally {
      client.close();
    }
  });
});

describe("exactly-once Create for a grpc-js client following the generated service config", () => {
  /** grpc-js with src/gen/service_config.json, as the README tells gRPC users to load it. */
  async function configuredClient() {
    const serviceConfig = await readFile("src/gen/service_config.json", "utf8");
    const definition = protoLoader.loadSync("bazbii/post/v1/user_post_service.proto", {
      includeDirs: PROTO_INCLUDE_DIRS,
    });
    const root = grpc.loadPackageDefinition(definition) as unknown as {
      bazbii: { post: { v1: { UserPostService: grpc.ServiceClientConstructor } } };
    };
    return new root.bazbii.post.v1.UserPostService(
      new URL(system.gateway.url).host,
      grpc.credentials.createInsecure(),
      {
        "grpc.service_config": serviceConfig,
        "grpc.enable_retries": 1,
      },
    );
  }

  async function postsIn(cell: string): Promise<number> {
    const heatmap = createNodeClient(HeatmapService, { baseUrl: system.gateway.url });
    const { cells } = await heatmap.getHeatmap({ h3Res: 9, within: cell });
    return cells.reduce((sum, c) => sum + c.postCount, 0);
  }

  it.each([
    ["without a request_id", ""],
    ["with a request_id", "grpc-js-key"],
  ])("%s, the first answer lost after the post was stored: one post", async (_name, key) => {
    const client = await configuredClient();
    const cell = latLngToCell(-30 + Math.random() * 60, Math.random() * 100, 9);
    const requestId = key === "" ? "" : `${key}-${crypto.randomUUID()}`;
    const create = (lose: boolean) => {
      const metadata = new grpc.Metadata();
      metadata.set("authorization", `Bearer ${token}`);
      if (lose) {
        metadata.set("x-bazbii-fault-at", "gateway-response");
        metadata.set("x-bazbii-fault-abort", "unavailable");
        metadata.set("x-bazbii-fault-abort-attempts", "1");
      }
      return new Promise<{ id: string } | grpc.ServiceError>((resolve) =>
        (client as unknown as Record<string, (...a: unknown[]) => void>).Create?.(
          { h3Index: cell, text: "once", requestId },
          metadata,
          (err: grpc.ServiceError | null, res: { id: string }) => resolve(err ?? res),
        ),
      );
    };
    const token = await system.token("grpc-js-user");
    try {
      const first = await create(true);
      // grpc-js does not retry Create on its own: the caller sees the lost answer as unavailable.
      expect((first as grpc.ServiceError).code).toBe(grpc.status.UNAVAILABLE);
      expect(await postsIn(cell)).toBe(1);
      if (requestId !== "") {
        // A caller that sent a key retries with it, and gets the post the first attempt stored.
        const again = await create(false);
        expect(again).toHaveProperty("id");
        expect(await postsIn(cell)).toBe(1);
      }
    } finally {
      client.close();
    }
  });
});

describe("what each attempt carries", () => {
  it("sends the time left of the one deadline and the number of earlier attempts, and honours a proxy's Retry-After", async () => {
    const { startFakeUpstream } = await import("./helpers/fake-upstream.js");
    let calls = 0;
    const peer = await startFakeUpstream((call) => {
      calls++;
      if (calls < 3) call.respond(503, { "content-type": "text/html", "retry-after": "0" }, "<h1>busy</h1>");
      else call.respond(200, { "content-type": "application/proto" });
    });
    try {
      const { retries, retry } = recorder();
      const heatmap = createNodeClient(HeatmapService, { baseUrl: peer.url, httpVersion: "2", retry });
      await heatmap.getHeatmap({ h3Res: 1 }, { timeoutMs: 2_000 });
      const budgets = peer.requests.map((h) => Number(h["connect-timeout-ms"]));
      expect(peer.requests.map((h) => h["grpc-previous-rpc-attempts"])).toEqual([undefined, "1", "2"]);
      expect(budgets[0]).toBeLessThanOrEqual(2_000);
      expect(budgets[1]).toBeLessThanOrEqual(budgets[0] as number);
      expect(budgets[2]).toBeLessThanOrEqual(budgets[1] as number);
      expect(budgets[2]).toBeGreaterThan(0);
      expect(retries.map((r) => [r.delayMs, r.delaySource])).toEqual([
        [0, "Retry-After"],
        [0, "Retry-After"],
      ]);
    } finally {
      await peer.close();
    }
  });
});

describe("per-attempt timeouts", () => {
  it("cuts each attempt at perAttemptTimeoutMs and retries an idempotent method on its deadline_exceeded", async () => {
    const { startFakeUpstream } = await import("./helpers/fake-upstream.js");
    const peer = await startFakeUpstream(() => {}); // never answers
    try {
      const { retries, giveUps, retry } = recorder({ perAttemptTimeoutMs: 150, initialBackoffMs: 10 });
      const heatmap = createNodeClient(HeatmapService, { baseUrl: peer.url, httpVersion: "2", retry });
      const started = performance.now();
      await expect(heatmap.getHeatmap({ h3Res: 1 }, { timeoutMs: 5_000 })).rejects.toMatchObject({ code: 4 });
      expect(performance.now() - started).toBeLessThan(2_000);
      expect(retries.map((r) => r.error.code)).toEqual([4, 4, 4]);
      expect(giveUps.map((g) => [g.attempts, g.reason])).toEqual([[4, "attempts-exhausted"]]);
      expect(peer.requests.map((h) => Number(h["connect-timeout-ms"]) <= 150)).toEqual([true, true, true, true]);
    } finally {
      await peer.close();
    }
  });
});
