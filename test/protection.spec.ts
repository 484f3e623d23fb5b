import { connect } from "node:net";
import { setTimeout as sleep } from "node:timers/promises";
import { latLngToCell } from "h3-js";
import { afterEach, describe, expect, it } from "vitest";
import { gatewayConfigFromEnv } from "../src/config/gateway-config.js";
import { HeatmapService } from "../src/gen/bazbii/feed/v1/heatmap_service_pb.js";
import { UserPostService } from "../src/gen/bazbii/post/v1/user_post_service_pb.js";
import { ErrorInfoSchema, QuotaFailureSchema, RetryInfoSchema } from "../src/gen/google/rpc/error_details_pb.js";
import { detailOf } from "./helpers/details.js";
import { startFakeUpstream } from "./helpers/fake-upstream.js";
import { relayPaths } from "./helpers/relay-paths.js";
import { type System, startGatewayFor, startSystem } from "./helpers/system.js";
import { TcpProxy } from "./helpers/tcp-proxy.js";
import { callWire, closeGrpcClients, type Outcome } from "./helpers/wire-clients.js";

const REDIS = { host: "127.0.0.1", port: 6379 };
const cleanups: (() => Promise<unknown> | unknown)[] = [];
afterEach(async () => {
  closeGrpcClients();
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

async function system(options: Parameters<typeof startSystem>[0] = {}): Promise<System> {
  const s = await startSystem(options);
  cleanups.push(() => s.close());
  return s;
}

function reasonOf(outcome: Outcome): string | undefined {
  return outcome.ok ? undefined : detailOf(outcome.details, ErrorInfoSchema)?.reason;
}

const retryDelayMs = (outcome: Outcome) => {
  if (outcome.ok) return undefined;
  const d = detailOf(outcome.details, RetryInfoSchema)?.retryDelay;
  return d === undefined ? undefined : Number(d.seconds) * 1000 + d.nanos / 1e6;
};

function create(s: { gateway: { url: string } }, token: string): Promise<Outcome> {
  return callWire(
    "connect-json",
    s.gateway.url,
    UserPostService.method.create,
    {
      h3Index: latLngToCell(20, 20, 9),
      text: "limited",
    },
    { headers: { authorization: `Bearer ${token}` } },
  );
}

describe("rate limiting", () => {
  it("answers resource_exhausted with QuotaFailure, RetryInfo and Retry-After, and lets the caller in again after it", async () => {
    const s = await system({
      gateway: { rateLimit: { windowSeconds: 1, reads: 100, writes: 3, redisUrl: undefined, redisKeyPrefix: "t" } },
    });
    const token = await s.token("busy-bee");
    for (let i = 0; i < 3; i++) expect((await create(s, token)).ok).toBe(true);
    const refused = await create(s, token);
    if (refused.ok) throw new Error("not limited");
    expect(refused).toMatchObject({ code: "resource_exhausted", httpStatus: 429 });
    expect(reasonOf(refused)).toBe("RATE_LIMITED");
    expect(detailOf(refused.details, QuotaFailureSchema)?.violations).toEqual([
      expect.objectContaining({ subject: "actor:busy-bee" }),
    ]);
    const delay = retryDelayMs(refused) ?? 0;
    expect(delay).toBeGreaterThan(0);
    expect(delay).toBeLessThanOrEqual(1000);
    expect(refused.headerText).toMatch(/^retry-after: 1$/m);
    // Other callers and other method classes have their own budgets.
    expect((await create(s, await s.token("someone-else"))).ok).toBe(true);
    expect((await callWire("grpc", s.gateway.url, HeatmapService.method.getHeatmap, { h3Res: 2 })).ok).toBe(true);
    // Honouring the delay is enough.
    await sleep(delay + 50);
    expect((await create(s, token)).ok).toBe(true);
    expect(s.gatewayLogs.withLogId("REQ_002").some((l) => l.reason === "RATE_LIMITED" && l.level === "warn")).toBe(
      true,
    );
    expect(await (await fetch(`${s.gateway.url}/metrics`)).text()).toMatch(
      /^bazbii_rate_limit_rejections_total\{[^}]*rpc_method="Create"[^}]*limit="writes"[^}]*\} 1$/m,
    );
  });

  it("is one shared limit for two gateway replicas using the real Redis", async () => {
    const s = await system();
    const rateLimit = {
      windowSeconds: 30,
      reads: 100,
      writes: 3,
      redisUrl: `redis://${REDIS.host}:${REDIS.port}`,
      redisKeyPrefix: `test:${crypto.randomUUID()}`,
    };
    const a = await startGatewayFor(s.api.url, { rateLimit });
    const b = await startGatewayFor(s.api.url, { rateLimit });
    cleanups.push(
      () => a.gateway.close(0),
      () => b.gateway.close(0),
    );
    const token = await a.token("shared");
    expect((await create(a, token)).ok).toBe(true);
    expect((await create(b, token)).ok).toBe(true);
    expect((await create(a, token)).ok).toBe(true);
    expect(reasonOf(await create(b, token))).toBe("RATE_LIMITED");
    expect(reasonOf(await create(a, token))).toBe("RATE_LIMITED");
  });

  it("keeps serving on in-memory limits when Redis becomes unreachable, and says so once in the log", async () => {
    const s = await system();
    const proxy = await TcpProxy.start(REDIS);
    cleanups.push(() => proxy.cut());
    const g = await startGatewayFor(s.api.url, {
      rateLimit: {
        windowSeconds: 30,
        reads: 100,
        writes: 100,
        redisUrl: `redis://127.0.0.1:${proxy.port}`,
        redisKeyPrefix: `test:${crypto.randomUUID()}`,
      },
    });
    cleanups.push(() => g.gateway.close(0));
    const token = await g.token("resilient");
    expect((await create(g, token)).ok).toBe(true);
    await proxy.cut();
    for (let i = 0; i < 5; i++) expect((await create(g, token)).ok, `call ${i} with Redis gone`).toBe(true);
    expect(g.logs.withLogId("GW_001")).toHaveLength(1);
  });
});

describe("outlier detection, with one endpoint", () => {
  it.each(relayPaths)(
    "ejects it after consecutive unavailable answers, fails fast while it is out, and takes it back as soon as a probe answers ($name)",
    async (path) => {
      let healthy = false;
      const peer = await startFakeUpstream((call) => {
        if (healthy)
          call.respond(200, { "content-type": "application/proto" }); // an empty response message
        else call.respond(503, { "content-type": "text/html" }, "<h1>503</h1>");
      });
      cleanups.push(() => peer.close());
      const g = await startGatewayFor(peer.url, {
        upstream: { outliers: { consecutiveFailures: 3, baseEjectionMs: 300 } },
      });
      cleanups.push(() => g.gateway.close(0));
      const call = () => path.call("connect-binary", g.gateway.url);

      for (let i = 0; i < 3; i++) expect(reasonOf(await call())).toBe("UPSTREAM_UNAVAILABLE");
      const fast = await call();
      expect(fast).toMatchObject({ ok: false, code: "unavailable" });
      expect(reasonOf(fast)).toBe("NO_HEALTHY_UPSTREAM");
      expect(fast.ok ? undefined : detailOf(fast.details, ErrorInfoSchema)?.metadata.processed).toBe("false");
      expect(retryDelayMs(fast)).toBeLessThanOrEqual(300);
      expect(peer.requests).toHaveLength(3); // nothing went to the ejected endpoint
      expect(g.logs.withLogId("GW_007")).toHaveLength(1);
      expect(await (await fetch(`${g.gateway.url}/metrics`)).text()).toMatch(
        /^bazbii_upstream_endpoint_healthy\{[^}]*\} 0$/m,
      );

      healthy = true;
      await sleep((retryDelayMs(fast) ?? 300) + 100); // the probe the gateway announced
      expect(await call()).toMatchObject({ ok: true });
      expect(g.logs.withLogId("GW_008")).toHaveLength(1);
      expect(await (await fetch(`${g.gateway.url}/metrics`)).text()).toMatch(
        /^bazbii_upstream_endpoint_healthy\{[^}]*\} 1$/m,
      );
    },
  );
});

describe("upstream connections", () => {
  const byteRelay = relayPaths.find((p) => p.name.startsWith("byte relay"));

  it("lets an idle HTTP/1.1 connection to the API server go at half IDLE_TIMEOUT_MS, before the API server would", async () => {
    let connectionClosed: Promise<number> | undefined;
    const peer = await startFakeUpstream((call) => {
      connectionClosed = call.connectionClosed;
      call.respond(200, { "content-type": "application/proto" });
    });
    cleanups.push(() => peer.close());
    const { limits } = gatewayConfigFromEnv({ NODE_ENV: "test", API_URL: peer.url, IDLE_TIMEOUT_MS: "600" });
    const g = await startGatewayFor(peer.url, { limits });
    cleanups.push(() => g.gateway.close(0));
    expect(await byteRelay?.call("connect-binary", g.gateway.url)).toMatchObject({ ok: true });
    const answered = performance.now();
    const idleFor = (await connectionClosed) ?? 0;
    expect(idleFor - answered).toBeGreaterThanOrEqual(250);
    expect(idleFor - answered).toBeLessThan(600);
  });

  it("keeps at most UPSTREAM_MAX_CONNECTIONS HTTP/1.1 connections to the API server; more calls wait for one", async () => {
    const connections = new Set<unknown>();
    const held: (() => void)[] = [];
    const peer = await startFakeUpstream((call) => {
      connections.add(call.req.socket);
      // Answered in pairs, so that calls overlap at the API server.
      held.push(() => call.respond(200, { "content-type": "application/proto" }));
      if (held.length === 2) for (const answer of held.splice(0)) answer();
    });
    cleanups.push(() => peer.close());
    const g = await startGatewayFor(peer.url, { upstream: { pool: { maxConnections: 2 } } });
    cleanups.push(() => g.gateway.close(0));
    const outcomes = await Promise.all(
      Array.from({ length: 6 }, () => byteRelay?.call("connect-binary", g.gateway.url)),
    );
    expect(outcomes.map((o) => o?.ok)).toEqual([true, true, true, true, true, true]);
    expect(peer.requests).toHaveLength(6);
    expect(connections.size).toBe(2);
  });

  it("ends a call waiting for a free connection at its deadline, and serves the next one once a connection is free", async () => {
    let answerFirst: (() => void) | undefined;
    const peer = await startFakeUpstream((call) => {
      if (answerFirst === undefined) answerFirst = () => call.respond(200, { "content-type": "application/proto" });
      else call.respond(200, { "content-type": "application/proto" });
    });
    cleanups.push(() => peer.close());
    // The gateway's own deadline, so that the answer is the gateway's, given while the call waits.
    const g = await startGatewayFor(peer.url, { upstream: { pool: { maxConnections: 1 } }, defaultTimeoutMs: 300 });
    cleanups.push(() => g.gateway.close(0));
    const first = byteRelay?.call("connect-binary", g.gateway.url, { timeoutMs: 10_000 });
    await expect.poll(() => peer.requests.length).toBe(1);
    const waiting = await byteRelay?.call("connect-binary", g.gateway.url);
    expect(waiting).toMatchObject({ ok: false, code: "deadline_exceeded" });
    answerFirst?.();
    expect(await first).toMatchObject({ ok: true });
    expect(await byteRelay?.call("connect-binary", g.gateway.url, { timeoutMs: 10_000 })).toMatchObject({ ok: true });
    // The call that gave up waiting never reached the API server.
    expect(peer.requests).toHaveLength(2);
  });
});

describe("deadlines", () => {
  it.each(relayPaths)(
    "clamps a caller's deadline to MAX_TIMEOUT_MS and gives calls without one DEFAULT_TIMEOUT_MS ($name)",
    async (path) => {
      const peer = await startFakeUpstream((call) => call.respond(200, { "content-type": "application/proto" }));
      cleanups.push(() => peer.close());
      const g = await startGatewayFor(peer.url, { maxTimeoutMs: 2_000, defaultTimeoutMs: 700 });
      cleanups.push(() => g.gateway.close(0));
      await path.call("connect-binary", g.gateway.url, { timeoutMs: 60_000 });
      await path.call("connect-binary", g.gateway.url);
      const [clamped, defaulted] = peer.requests.map((h) => Number(h["connect-timeout-ms"]));
      expect(clamped).toBeGreaterThan(1_900);
      expect(clamped).toBeLessThanOrEqual(2_000);
      expect(defaulted).toBeGreaterThan(600);
      expect(defaulted).toBeLessThanOrEqual(700);
    },
  );
});

describe("limits", () => {
  it.each(relayPaths)(
    "refuses a message larger than MAX_REQUEST_BYTES with resource_exhausted ($name)",
    async (path) => {
      const s = await system({ gateway: { limits: { ...(await defaultLimits()), maxRequestBytes: 1024 } } });
      // connect-web announces the body's length; grpc-js streams it without one.
      for (const protocol of ["connect-binary", "grpc"] as const) {
        const outcome = await path.call(protocol, s.gateway.url, {}, 5000);
        expect({ protocol, ...outcome }).toMatchObject({ protocol, ok: false, code: "resource_exhausted" });
        expect(reasonOf(outcome)).toBe("PROTOCOL_ERROR");
      }
      // Under the limit, the message reaches the API server, which answers for its content.
      const within = await path.call("grpc", s.gateway.url, {}, 500);
      expect(within.ok ? "ok" : within.code).not.toBe("resource_exhausted");
      expect(reasonOf(within)).not.toBe("PROTOCOL_ERROR");
    },
  );

  it("closes a connection that sends no bytes, or half a header, within the headers timeout", async () => {
    const s = await system({ gateway: { limits: { ...(await defaultLimits()), headersTimeoutMs: 300 } } });
    const port = new URL(s.gateway.url).port;
    for (const firstBytes of ["", "POST /bazbii.feed.v1.HeatmapService/GetHeatmap HTTP/1.1\r\nHost: x\r\nX-Slow: "]) {
      const started = performance.now();
      const socket = connect(Number(port), "127.0.0.1");
      if (firstBytes !== "") socket.write(firstBytes);
      await new Promise<void>((resolve) =>
        socket
          .once("close", () => resolve())
          .on("error", () => {})
          .resume(),
      );
      const closedAfter = performance.now() - started;
      expect(closedAfter).toBeGreaterThanOrEqual(250);
      expect(closedAfter).toBeLessThan(3_000);
    }
  });

  it("sheds calls beyond MAX_IN_FLIGHT with unavailable and RetryInfo instead of queueing them", async () => {
    const s = await system({ api: { faultInjection: true }, gateway: { faultInjection: true, maxInFlight: 2 } });
    const slow = { "x-bazbii-fault-delay-ms": "400" };
    const outcomes = await Promise.all(
      Array.from({ length: 6 }, () =>
        callWire("connect-json", s.gateway.url, UserPostService.method.get, { id: "x" }, { headers: slow }),
      ),
    );
    const shed = outcomes.filter((o) => reasonOf(o) === "OVERLOADED");
    expect(shed).toHaveLength(4);
    for (const o of shed) expect(o).toMatchObject({ code: "unavailable", httpStatus: 503 });
    expect(retryDelayMs(shed[0] as Outcome)).toBe(1000);
    expect(outcomes.filter((o) => reasonOf(o) === "POST_NOT_FOUND")).toHaveLength(2);
  });
});

describe("CORS", () => {
  it("answers a preflight from an allowed origin and refuses one from another", async () => {
    const s = await system({ gateway: { corsAllowedOrigins: ["https://app.bazbii.dev"] } });
    const preflight = (origin: string) =>
      fetch(`${s.gateway.url}/bazbii.post.v1.UserPostService/Create`, {
        method: "OPTIONS",
        headers: {
          origin,
          "access-control-request-method": "POST",
          "access-control-request-headers": "content-type,authorization,connect-protocol-version",
        },
      });
    const allowed = await preflight("https://app.bazbii.dev");
    expect(allowed.status).toBe(204);
    expect(allowed.headers.get("access-control-allow-origin")).toBe("https://app.bazbii.dev");
    expect(allowed.headers.get("access-control-allow-headers")).toContain("authorization");
    expect((await preflight("https://evil.example")).status).toBe(403);

    const res = await fetch(`${s.gateway.url}/bazbii.feed.v1.HeatmapService/GetHeatmap`, {
      method: "POST",
      headers: { origin: "https://app.bazbii.dev", "content-type": "application/json" },
      body: JSON.stringify({ h3Res: 16 }),
    });
    const exposed = (res.headers.get("access-control-expose-headers") ?? "").toLowerCase();
    for (const h of ["grpc-status", "grpc-message", "grpc-status-details-bin", "x-request-id", "retry-after"]) {
      expect(exposed).toContain(h);
    }
    const foreign = await fetch(`${s.gateway.url}/bazbii.feed.v1.HeatmapService/GetHeatmap`, {
      method: "POST",
      headers: { origin: "https://evil.example", "content-type": "application/json" },
      body: "{}",
    });
    expect(foreign.headers.get("access-control-allow-origin")).toBeNull();
  });
});

async function defaultLimits() {
  const { gatewayConfigFromEnv } = await import("../src/config/gateway-config.js");
  return gatewayConfigFromEnv({ NODE_ENV: "test" }).limits;
}
