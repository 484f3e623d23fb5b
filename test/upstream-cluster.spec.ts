import * as grpc from "@grpc/grpc-js";
import * as protoLoader from "@grpc/proto-loader";
import { afterEach, describe, expect, it } from "vitest";
import type { Resolve } from "../src/gateway/upstream/endpoint-set.js";
import { RetryBudget } from "../src/gateway/upstream/retry-budget.js";
import { UserPostService } from "../src/gen/bazbii/post/v1/user_post_service_pb.js";
import { metricValue } from "./helpers/load.js";
import { PROTO_INCLUDE_DIRS } from "./helpers/proto-dirs.js";
import { startApi, startGatewayFor } from "./helpers/system.js";
import { callWire, closeGrpcClients } from "./helpers/wire-clients.js";

// Several API servers behind one gateway, in this process: how the gateway
// spreads calls, finds its endpoints and spends its retries.

const cleanups: (() => Promise<unknown> | unknown)[] = [];
afterEach(async () => {
  closeGrpcClients();
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

async function apis(n: number, options: Parameters<typeof startApi>[0] = {}, slowFirst = false) {
  const started = [];
  for (let i = 0; i < n; i++) {
    const slow = slowFirst && i === 0;
    const api = await startApi({
      ...options,
      ...(slow
        ? {
            // Every read takes 40 ms on this one.
            wrapStorage: (storage) => ({
              ...storage,
              posts: {
                ...storage.posts,
                findById: async (id) => {
                  await new Promise((resolve) => setTimeout(resolve, 40));
                  return storage.posts.findById(id);
                },
              },
            }),
          }
        : {}),
    });
    cleanups.push(async () => {
      await api.api.close(0);
      await api.cleanup();
    });
    started.push(api.api);
  }
  return started;
}

async function callsPerEndpoint(gatewayUrl: string, ports: readonly number[]): Promise<number[]> {
  const counts = [];
  for (const port of ports) {
    let sum = 0;
    const text = await (await fetch(`${gatewayUrl}/metrics`)).text();
    for (const line of text.split("\n")) {
      if (line.startsWith("rpc_client_call_duration_seconds_count{") && line.includes(`server_port="${port}"`)) {
        sum += Number(line.slice(line.lastIndexOf(" ") + 1));
      }
    }
    counts.push(sum);
  }
  return counts;
}

describe("least request over three endpoints", () => {
  it("sends a slow endpoint at most 20% of the calls", async () => {
    const servers = await apis(3, {}, true);
    const { gateway } = await startGatewayFor(servers.map((s) => s.url).join(","), {
      rateLimit: { windowSeconds: 60, reads: 1e9, writes: 1e9, redisUrl: undefined, redisKeyPrefix: "x" },
    });
    cleanups.push(() => gateway.close(0));
    const until = performance.now() + 2_000;
    await Promise.all(
      Array.from({ length: 20 }, async () => {
        while (performance.now() < until)
          await callWire("connect-binary", gateway.url, UserPostService.method.get, { id: "x" });
      }),
    );
    const [slow = 0, ...fast] = await callsPerEndpoint(
      gateway.url,
      servers.map((s) => s.port),
    );
    const total = slow + fast.reduce((a, b) => a + b, 0);
    expect(total).toBeGreaterThan(200);
    expect(slow / total).toBeLessThanOrEqual(0.2);
  });
});

describe("gRPC over one client connection", () => {
  it("reaches all three endpoints: the gateway balances each call, not each connection", async () => {
    const servers = await apis(3);
    const { gateway } = await startGatewayFor(servers.map((s) => s.url).join(","));
    cleanups.push(() => gateway.close(0));
    const definition = protoLoader.loadSync("bazbii/post/v1/user_post_service.proto", {
      includeDirs: PROTO_INCLUDE_DIRS,
    });
    const Ctor = (
      grpc.loadPackageDefinition(definition) as unknown as {
        bazbii: { post: { v1: { UserPostService: grpc.ServiceClientConstructor } } };
      }
    ).bazbii.post.v1.UserPostService;
    const client = new Ctor(new URL(gateway.url).host, grpc.credentials.createInsecure());
    cleanups.push(() => client.close());
    for (let i = 0; i < 60; i++) {
      await new Promise<void>((resolve) =>
        (client as unknown as Record<string, (...a: unknown[]) => void>).Get?.({ id: `g${i}` }, () => resolve()),
      );
    }
    const counts = await callsPerEndpoint(
      gateway.url,
      servers.map((s) => s.port),
    );
    expect(counts.every((n) => n > 0)).toBe(true);
    expect(counts.reduce((a, b) => a + b, 0)).toBe(60);
  });
});

describe("endpoints from a host name", () => {
  it("are its addresses, re-resolved: a new address joins, a gone one is drained (its call in flight finishes)", async () => {
    // Three API servers on one port, each on an address of its own (127.0.0.x all reach this host).
    const first = await startApi({ api: { host: "127.0.0.1", port: 0, faultInjection: true } });
    cleanups.push(async () => {
      await first.api.close(0);
      await first.cleanup();
    });
    const port = first.api.port;
    const others = [];
    for (const host of ["127.0.0.2", "127.0.0.3"]) {
      const api = await startApi({ api: { host, port, faultInjection: true } });
      cleanups.push(async () => {
        await api.api.close(0);
        await api.cleanup();
      });
      others.push(api);
    }
    let addresses = ["127.0.0.1", "127.0.0.2"];
    const resolve: Resolve = async (host) => (host === "api.test" ? addresses : []);
    const { gateway, logs } = await startGatewayFor(
      `http://api.test:${port}`,
      { upstream: { resolveIntervalMs: 100 }, faultInjection: true },
      undefined,
      resolve,
    );
    cleanups.push(() => gateway.close(0));
    const healthy = (address: string) =>
      metricValue(gateway.url, "bazbii_upstream_endpoint_healthy", `endpoint="${address}:${port}"`);
    await expect.poll(() => healthy("127.0.0.1")).toBe(1);
    await expect.poll(() => healthy("127.0.0.2")).toBe(1);
    expect(await healthy("127.0.0.3")).toBeUndefined();

    // A slow call in flight on each endpoint, then the name moves from .1 to .3.
    const slow = Array.from({ length: 6 }, () =>
      callWire(
        "connect-json",
        gateway.url,
        UserPostService.method.get,
        { id: "x" },
        { headers: { "x-bazbii-fault-delay-ms": "600" } },
      ),
    );
    await new Promise((r) => setTimeout(r, 100));
    addresses = ["127.0.0.2", "127.0.0.3"];
    await expect.poll(() => healthy("127.0.0.3")).toBe(1);
    expect(logs.withLogId("GW_010").map((l) => l.endpoint)).toEqual([`127.0.0.1:${port}`]);
    // Drained, not cut: every call in flight got its answer from its endpoint.
    for (const outcome of await Promise.all(slow)) expect(outcome).toMatchObject({ ok: false, code: "not_found" });
    await expect.poll(() => healthy("127.0.0.1")).toBeUndefined();
    // New calls go to the addresses the name has now.
    for (let i = 0; i < 30; i++) await callWire("connect-json", gateway.url, UserPostService.method.get, { id: "x" });
    const [gone = 0, kept = 0, joined = 0] = await Promise.all(
      ["127.0.0.1", "127.0.0.2", "127.0.0.3"].map((a) =>
        metricValue(gateway.url, "rpc_client_call_duration_seconds_count", `server_address="${a}"`).then((v) => v ?? 0),
      ),
    );
    expect(joined).toBeGreaterThan(0);
    expect(gone + kept + joined).toBeGreaterThanOrEqual(36);
    expect(gone).toBeLessThanOrEqual(6);
  });
});

describe("the retry budget", () => {
  it("lets at most max(3, 20% of calls in flight) retries run at once; one over waits for a slot, within its deadline", async () => {
    const budget = new RetryBudget(20, 3, 200);
    for (let i = 0; i < 20; i++) budget.callStarted();
    const signal = new AbortController().signal;
    expect(await Promise.all([1, 2, 3, 4].map(() => budget.acquire(signal)))).toEqual([true, true, true, true]);
    const waiting = budget.acquire(signal);
    budget.retryEnded(); // hands the slot over
    expect(await waiting).toBe(true);
    const timedOut = budget.acquire(signal);
    expect(await timedOut).toBe(false); // no slot within 200 ms
    const gone = new AbortController();
    const abandoned = budget.acquire(gone.signal);
    gone.abort();
    expect(await abandoned).toBe(false);
  });
});
