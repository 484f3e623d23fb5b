import { randomBytes } from "node:crypto";
import { latLngToCell } from "h3-js";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { apiConfigFromEnv } from "../src/config/api-config.js";
import { gatewayConfigFromEnv } from "../src/config/gateway-config.js";
import type { TelemetryConfig } from "../src/config/telemetry-env.js";
import { HeatmapService } from "../src/gen/bazbii/feed/v1/heatmap_service_pb.js";
import { UserPostService } from "../src/gen/bazbii/post/v1/user_post_service_pb.js";
import type { LogCapture } from "./helpers/log-capture.js";
import { OtlpReceiver, type ReceivedSpan } from "./helpers/otlp-receiver.js";
import { freePort } from "./helpers/process.js";
import { type System, startApi, startGatewayFor, startSystem } from "./helpers/system.js";
import { callWire, closeGrpcClients, type Outcome } from "./helpers/wire-clients.js";

// Traces as a collector sees them: real gateway and API servers exporting
// over OTLP/HTTP to a real HTTP server that decodes with the official schemas.

/** The telemetry both processes read from these variables (as from their environment). */
function telemetry(env: Record<string, string>): { gateway: TelemetryConfig; api: TelemetryConfig } {
  return {
    gateway: gatewayConfigFromEnv({ NODE_ENV: "test", ...env }).telemetry,
    api: apiConfigFromEnv({ NODE_ENV: "test", ...env }).telemetry,
  };
}

/** Exports every 20 ms, so that tests wait for spans a moment rather than the default 5 s. */
const QUICK_EXPORT = { OTEL_BSP_SCHEDULE_DELAY: "20", ACCESS_LOG: "on" };

/** A sampled traceparent of a new trace, as a caller that traces sends it. */
function newTrace(): { traceId: string; parentId: string; traceparent: string } {
  const traceId = randomBytes(16).toString("hex");
  const parentId = randomBytes(8).toString("hex");
  return { traceId, parentId, traceparent: `00-${traceId}-${parentId}-01` };
}

function one(spans: readonly ReceivedSpan[], where: Partial<Pick<ReceivedSpan, "service" | "kind">>): ReceivedSpan {
  const found = spans.filter(
    (s) =>
      (where.service === undefined || s.service === where.service) &&
      (where.kind === undefined || s.kind === where.kind),
  );
  expect(found, JSON.stringify(where)).toHaveLength(1);
  return found[0] as ReceivedSpan;
}

/** The access line (REQ_005) of a request, in one process's log. */
function accessLine(logs: LogCapture, requestId: string): Record<string, unknown> | undefined {
  return logs.forRequest(requestId).find((l) => l.log_id === "REQ_005");
}

let receiver: OtlpReceiver;
let system: System;
let token: string;

beforeAll(async () => {
  receiver = await OtlpReceiver.start();
  const { gateway, api } = telemetry({ ...QUICK_EXPORT, OTEL_EXPORTER_OTLP_ENDPOINT: receiver.url });
  system = await startSystem({
    gateway: { telemetry: gateway, faultInjection: true },
    api: { telemetry: api, faultInjection: true },
  });
  token = await system.token("tracy");
});
afterAll(async () => {
  closeGrpcClients();
  await system?.close();
  await receiver?.close();
});

describe("one call through the gateway", () => {
  it("is one trace: the gateway's server span, its upstream attempt, the API server's span, and the storage query, each the child of the one before", async () => {
    const { traceId, parentId, traceparent } = newTrace();
    const requestId = `trace-${crypto.randomUUID()}`;
    const created = await callWire(
      "connect-json",
      system.gateway.url,
      UserPostService.method.create,
      { h3Index: latLngToCell(35.6, 139.7, 9), text: "a post that is never an attribute", requestId: "t-1" },
      { headers: { traceparent, "x-request-id": requestId, authorization: `Bearer ${token}` } },
    );
    expect(created.ok).toBe(true);
    await expect.poll(() => receiver.trace(traceId).length).toBeGreaterThanOrEqual(4);
    const spans = receiver.trace(traceId);

    const server = one(spans, { service: "bazbii-gateway", kind: "SERVER" });
    expect(server).toMatchObject({
      name: "bazbii.post.v1.UserPostService/Create",
      parentSpanId: parentId, // the caller's span
      status: { code: "UNSET" },
      attributes: {
        "rpc.system": "connect_rpc",
        "rpc.service": "bazbii.post.v1.UserPostService",
        "rpc.method": "Create",
        "rpc.response.status_code": "ok",
        "client.address": "127.0.0.1",
        "bazbii.request_id": requestId,
      },
    });
    const attempt = one(spans, { service: "bazbii-gateway", kind: "CLIENT" });
    expect(attempt).toMatchObject({
      name: "bazbii.post.v1.UserPostService/Create",
      parentSpanId: server.spanId,
      attributes: { "server.address": "127.0.0.1", "server.port": system.api.port, "rpc.method": "Create" },
    });
    expect(attempt.attributes).not.toHaveProperty("http.request.resend_count");
    const apiServer = one(spans, { service: "bazbii-api", kind: "SERVER" });
    expect(apiServer).toMatchObject({ name: "bazbii.post.v1.UserPostService/Create", parentSpanId: attempt.spanId });
    const queries = spans.filter((s) => s.service === "bazbii-api" && s.kind === "CLIENT");
    expect(queries.length).toBeGreaterThanOrEqual(1);
    for (const query of queries) {
      expect(query.parentSpanId).toBe(apiServer.spanId);
      expect(query.attributes["db.system.name"]).toBe("postgresql");
    }
    expect(queries[0]).toMatchObject({
      name: "INSERT posts",
      attributes: { "db.operation.name": "INSERT", "db.collection.name": "posts" },
    });
    // The trace id of every log line of the call is the trace's.
    expect(accessLine(system.gatewayLogs, requestId)?.trace_id).toBe(traceId);
    expect(accessLine(system.apiLogs, requestId)?.trace_id).toBe(traceId);
  });

  it("is one trace on the decoding path too (GetHeatmap over gRPC), its id made by the SDK when the caller sent none, and the same in the logs", async () => {
    const requestId = `trace-${crypto.randomUUID()}`;
    const outcome = await callWire(
      "grpc",
      system.gateway.url,
      HeatmapService.method.getHeatmap,
      { h3Res: 3 },
      { headers: { "x-request-id": requestId } },
    );
    expect(outcome.ok).toBe(true);
    await expect.poll(() => accessLine(system.gatewayLogs, requestId)).toBeDefined();
    const traceId = String(accessLine(system.gatewayLogs, requestId)?.trace_id);
    await expect.poll(() => receiver.trace(traceId).length).toBeGreaterThanOrEqual(4);
    const spans = receiver.trace(traceId);
    const server = one(spans, { service: "bazbii-gateway", kind: "SERVER" });
    expect(server).toMatchObject({
      name: "bazbii.feed.v1.HeatmapService/GetHeatmap",
      parentSpanId: "",
      attributes: { "rpc.system": "grpc", "rpc.grpc.status_code": 0 },
    });
    const attempt = one(spans, { service: "bazbii-gateway", kind: "CLIENT" });
    expect(attempt.parentSpanId).toBe(server.spanId);
    const apiServer = one(spans, { service: "bazbii-api", kind: "SERVER" });
    expect(apiServer.parentSpanId).toBe(attempt.spanId);
    const query = one(spans, { service: "bazbii-api", kind: "CLIENT" });
    expect(query).toMatchObject({ name: "SELECT posts", parentSpanId: apiServer.spanId });
    expect(accessLine(system.apiLogs, requestId)?.trace_id).toBe(traceId);
  });

  it("shows a domain event's publish as a PRODUCER span of the API server's call", async () => {
    const { traceId, traceparent } = newTrace();
    const outcome = await callWire(
      "connect-json",
      system.gateway.url,
      UserPostService.method.create,
      { h3Index: "not-a-cell", text: "x", requestId: "t-event" },
      { headers: { traceparent, authorization: `Bearer ${token}` } },
    );
    expect(outcome.ok).toBe(false);
    await expect.poll(() => receiver.trace(traceId).some((s) => s.kind === "PRODUCER")).toBe(true);
    const spans = receiver.trace(traceId);
    const publish = one(spans, { kind: "PRODUCER" });
    expect(publish).toMatchObject({
      service: "bazbii-api",
      name: "send bazbii.events.post.CreationFailedEvent",
      parentSpanId: one(spans, { service: "bazbii-api", kind: "SERVER" }).spanId,
      attributes: {
        "messaging.system": "in_process",
        "messaging.destination.name": "bazbii.events.post.CreationFailedEvent",
      },
    });
  });

  it("links a slow bucket to it: the histograms' exemplars name the spans of a real call", async () => {
    const { traceId, traceparent } = newTrace();
    await callWire(
      "connect-binary",
      system.gateway.url,
      UserPostService.method.get,
      { id: "exemplar" },
      { headers: { traceparent } },
    );
    await expect.poll(() => receiver.trace(traceId).length).toBeGreaterThanOrEqual(3);
    const spans = receiver.trace(traceId);
    const scrape = async (url: string) =>
      (await fetch(`${url}/metrics`, { headers: { accept: "application/openmetrics-text" } })).text();
    const gateway = await scrape(system.gateway.url);
    const server = one(spans, { service: "bazbii-gateway", kind: "SERVER" });
    const attempt = one(spans, { service: "bazbii-gateway", kind: "CLIENT" });
    expect(gateway).toContain(`# {trace_id="${traceId}",span_id="${server.spanId}"}`);
    expect(gateway).toMatch(
      new RegExp(
        `^rpc_client_call_duration_seconds_bucket\\{.*# \\{trace_id="${traceId}",span_id="${attempt.spanId}"\\}`,
        "m",
      ),
    );
    const api = await scrape(system.api.url);
    expect(api).toContain(
      `# {trace_id="${traceId}",span_id="${one(spans, { service: "bazbii-api", kind: "SERVER" }).spanId}"}`,
    );
  });
});

describe("a call that fails", () => {
  it("carries its code on every span; only the client spans, and server spans of server-side codes, are errors", async () => {
    // not_found: the API server did its job; the gateway's attempt did not get what it asked for.
    const notFound = newTrace();
    await callWire(
      "grpc",
      system.gateway.url,
      UserPostService.method.get,
      { id: "missing" },
      {
        headers: { traceparent: notFound.traceparent },
      },
    );
    await expect.poll(() => receiver.trace(notFound.traceId).length).toBeGreaterThanOrEqual(4);
    let spans = receiver.trace(notFound.traceId);
    for (const span of spans.filter((s) => s.kind === "SERVER" || s.service === "bazbii-gateway")) {
      expect(span.attributes, span.name).toMatchObject({
        "rpc.grpc.status_code": 5,
        "rpc.response.status_code": "not_found",
        "error.type": "POST_NOT_FOUND",
      });
      expect(span.status.code, `${span.service} ${span.kind}`).toBe(span.kind === "CLIENT" ? "ERROR" : "UNSET");
    }

    // internal (a fault the API server raises): an error on both sides.
    const broken = newTrace();
    const outcome = await callWire(
      "connect-json",
      system.gateway.url,
      UserPostService.method.get,
      { id: "x" },
      {
        headers: { traceparent: broken.traceparent, "x-bazbii-fault-abort": "internal" },
      },
    );
    expect((outcome as Extract<Outcome, { ok: false }>).code).toBe("internal");
    await expect.poll(() => receiver.trace(broken.traceId).length).toBeGreaterThanOrEqual(3);
    spans = receiver.trace(broken.traceId);
    for (const span of spans) {
      expect(span.attributes, `${span.service} ${span.kind}`).toMatchObject({
        "rpc.connect_rpc.error_code": "internal",
        "rpc.response.status_code": "internal",
      });
      expect(span.status, `${span.service} ${span.kind}`).toEqual({ code: "ERROR", message: "FAULT_INJECTED" });
    }
  });

  it("puts no token, assertion, secret or message in any attribute", () => {
    const text = JSON.stringify(receiver.spans);
    expect(text).not.toContain(token.split(".")[2]);
    expect(text).not.toMatch(/bearer/i);
    expect(text).not.toContain("never an attribute");
    expect(text).not.toContain(system.gatewayConfig.internalAuthSecret);
    expect(text).not.toContain("x-bazbii-assertion");
  });
});

describe("a call the gateway retries", () => {
  const cleanups: (() => Promise<void>)[] = [];
  afterEach(async () => {
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
  });

  it("shows both attempts: the refused one, an error on the endpoint that refused, then the one that answered", async () => {
    const api = await startApi({
      api: { telemetry: telemetry({ ...QUICK_EXPORT, OTEL_EXPORTER_OTLP_ENDPOINT: receiver.url }).api },
    });
    cleanups.push(async () => {
      await api.api.close(0);
      await api.cleanup();
    });
    const deadPort = await freePort(); // nothing listens there: every connection is refused
    const { gateway, logs } = await startGatewayFor(`http://127.0.0.1:${deadPort},${api.api.url}`, {
      telemetry: telemetry({ ...QUICK_EXPORT, OTEL_EXPORTER_OTLP_ENDPOINT: receiver.url }).gateway,
      // No health checks and no ejection: the dead endpoint stays in the rotation, as one that just died does.
      upstream: { healthIntervalMs: 0, outliers: { consecutiveFailures: 1_000 } },
    });
    cleanups.push(() => gateway.close(0));

    // The balancer picks either endpoint first; call until a call met the dead one first.
    let retried: { traceId: string; requestId: string } | undefined;
    for (let i = 0; i < 40 && retried === undefined; i++) {
      const { traceId, traceparent } = newTrace();
      const requestId = `retry-${i}-${crypto.randomUUID()}`;
      const outcome = await callWire(
        "connect-json",
        gateway.url,
        UserPostService.method.get,
        { id: "r" },
        {
          headers: { traceparent, "x-request-id": requestId },
        },
      );
      expect((outcome as Extract<Outcome, { ok: false }>).code).toBe("not_found"); // the live one's answer
      await expect.poll(() => logs.forRequest(requestId).some((l) => l.log_id === "REQ_005")).toBe(true);
      if (accessLine(logs, requestId)?.attempts === 2) retried = { traceId, requestId };
    }
    if (retried === undefined) throw new Error("no call met the dead endpoint first in 40 calls");
    expect(accessLine(logs, retried.requestId)).toMatchObject({ attempts: 2, endpoint: `127.0.0.1:${api.api.port}` });

    const traceId = retried.traceId;
    await expect.poll(() => receiver.trace(traceId).length).toBeGreaterThanOrEqual(4);
    const spans = receiver.trace(traceId);
    const server = one(spans, { service: "bazbii-gateway", kind: "SERVER" });
    const attempts = spans.filter((s) => s.service === "bazbii-gateway" && s.kind === "CLIENT");
    expect(attempts).toHaveLength(2);
    const [refused, answered] = [...attempts].sort(
      (a, b) =>
        Number(a.attributes["http.request.resend_count"] ?? 0) - Number(b.attributes["http.request.resend_count"] ?? 0),
    ) as [ReceivedSpan, ReceivedSpan];
    expect(refused).toMatchObject({
      parentSpanId: server.spanId,
      status: { code: "ERROR" },
      attributes: { "server.port": deadPort, "rpc.connect_rpc.error_code": "unavailable" },
    });
    expect(refused.attributes).not.toHaveProperty("http.request.resend_count");
    expect(answered).toMatchObject({
      parentSpanId: server.spanId,
      attributes: {
        "server.port": api.api.port,
        "http.request.resend_count": 1,
        "rpc.connect_rpc.error_code": "not_found",
      },
    });
    // The API server's span hangs under the attempt that reached it.
    expect(one(spans, { service: "bazbii-api", kind: "SERVER" }).parentSpanId).toBe(answered.spanId);
  });
});

describe("sampling and the collector's headers", () => {
  it("records nothing of a trace its caller did not sample, in either process, yet logs its trace id", async () => {
    const { traceId } = newTrace();
    const requestId = `unsampled-${crypto.randomUUID()}`;
    await callWire(
      "connect-json",
      system.gateway.url,
      UserPostService.method.get,
      { id: "u" },
      {
        headers: { traceparent: `00-${traceId}-${randomBytes(8).toString("hex")}-00`, "x-request-id": requestId },
      },
    );
    await expect.poll(() => accessLine(system.apiLogs, requestId)).toBeDefined();
    expect(accessLine(system.gatewayLogs, requestId)?.trace_id).toBe(traceId);
    expect(accessLine(system.apiLogs, requestId)?.trace_id).toBe(traceId);
    // A later call's spans arriving shows the exporter has had its turn since.
    const later = newTrace();
    await callWire(
      "connect-json",
      system.gateway.url,
      UserPostService.method.get,
      { id: "u" },
      {
        headers: { traceparent: later.traceparent },
      },
    );
    await expect.poll(() => receiver.trace(later.traceId).length).toBeGreaterThanOrEqual(3);
    expect(receiver.trace(traceId)).toEqual([]);
  });

  it("sends OTEL_EXPORTER_OTLP_HEADERS with every export, and logs them nowhere", async () => {
    const own = await OtlpReceiver.start();
    const { gateway, logs } = await startGatewayFor(system.api.url, {
      telemetry: telemetry({
        ...QUICK_EXPORT,
        OTEL_EXPORTER_OTLP_ENDPOINT: own.url,
        OTEL_EXPORTER_OTLP_HEADERS: "authorization=Bearer%20collector-key,x-tenant=bazbii",
        OTEL_SERVICE_NAME: "edge-gateway",
      }).gateway,
    });
    try {
      await callWire("connect-json", gateway.url, UserPostService.method.get, { id: "h" });
      await expect.poll(() => own.exports.length).toBeGreaterThan(0);
      expect(own.exports[0]?.headers).toMatchObject({ authorization: "Bearer collector-key", "x-tenant": "bazbii" });
      expect(own.spans.every((s) => s.service === "edge-gateway")).toBe(true);
      expect(logs.text()).not.toContain("collector-key");
    } finally {
      await gateway.close(0);
      await own.close();
    }
  });
});

describe("a collector that is down or hangs", () => {
  /** n Get calls through a gateway, each answered not_found by the API server: the collector changes nothing. */
  async function calls(url: string, n: number): Promise<void> {
    for (let i = 0; i < n; i++) {
      const outcome = await callWire("connect-json", url, UserPostService.method.get, { id: `c-${i}` });
      expect((outcome as Extract<Outcome, { ok: false }>).code).toBe("not_found");
    }
  }
  const exportFailures = async (url: string) =>
    Number(
      /^bazbii_trace_export_failures_total(?:\{[^}]*\})? (\d+)/m.exec(
        await (await fetch(`${url}/metrics`)).text(),
      )?.[1] ?? 0,
    );

  it("down: every call answered as before, its lost batches counted, and one warning, not one per call", async () => {
    const nobody = `http://127.0.0.1:${await freePort()}`; // refuses every connection
    const { gateway, logs } = await startGatewayFor(system.api.url, {
      // The exporter retries a refused export until its timeout: 300 ms, not the default 10 s.
      telemetry: telemetry({ ...QUICK_EXPORT, OTEL_EXPORTER_OTLP_ENDPOINT: nobody, OTEL_EXPORTER_OTLP_TIMEOUT: "300" })
        .gateway,
    });
    try {
      await calls(gateway.url, 30);
      await expect.poll(() => exportFailures(gateway.url), { timeout: 10_000 }).toBeGreaterThanOrEqual(3);
      await calls(gateway.url, 30);
      await expect.poll(() => exportFailures(gateway.url), { timeout: 10_000 }).toBeGreaterThanOrEqual(6);
      expect(logs.withLogId("SYS_007")).toHaveLength(1);
      expect(logs.withLogId("SYS_007")[0]).toMatchObject({ level: "warn", endpoint: `${nobody}/v1/traces` });
      // The calls' own lines aside (not_found is logged at warn), that warning is the only one.
      expect(logs.lines.filter((l) => l.request_id === undefined && l.level !== "info")).toHaveLength(1);
    } finally {
      await gateway.close(0);
    }
  });

  it("hanging: at most two exports held open and a bounded queue, calls unaffected, and one line when it answers again", async () => {
    const slow = await OtlpReceiver.start();
    slow.hang();
    const { gateway, logs } = await startGatewayFor(system.api.url, {
      telemetry: telemetry({
        ...QUICK_EXPORT,
        OTEL_EXPORTER_OTLP_ENDPOINT: slow.url,
        OTEL_EXPORTER_OTLP_TIMEOUT: "200",
        OTEL_BSP_EXPORT_TIMEOUT: "200",
        OTEL_BSP_MAX_QUEUE_SIZE: "32",
      }).gateway,
    });
    try {
      await calls(gateway.url, 100); // 200 spans, for a queue of 32
      await expect.poll(() => logs.withLogId("SYS_007").length, { timeout: 10_000 }).toBe(1);
      expect(slow.maxOpen).toBeLessThanOrEqual(2);
      slow.release();
      await calls(gateway.url, 5);
      await expect.poll(() => logs.withLogId("SYS_008").length, { timeout: 10_000 }).toBe(1);
      const recovered = logs.withLogId("SYS_008")[0] as Record<string, unknown>;
      // What was lost is said once, in the line that ends the spell; the queue's bound dropped the rest.
      expect(Number(recovered.lost_spans)).toBeGreaterThan(0);
      expect(Number(recovered.lost_spans)).toBeLessThan(200);
      expect(logs.withLogId("SYS_007")).toHaveLength(1);
    } finally {
      await gateway.close(0);
      await slow.close();
    }
  });
});

describe("ACCESS_LOG", () => {
  it("on: one line per call, errors: only calls that did not end ok, off: none", async () => {
    const lines: Record<string, Record<string, unknown>[]> = {};
    for (const mode of ["on", "errors", "off"] as const) {
      const { gateway, logs } = await startGatewayFor(system.api.url, {
        telemetry: telemetry({ ACCESS_LOG: mode }).gateway,
      });
      try {
        await callWire("connect-json", gateway.url, HeatmapService.method.getHeatmap, { h3Res: 3 });
        await callWire("grpc", gateway.url, UserPostService.method.get, { id: "missing" });
      } finally {
        await gateway.close(0); // every call and its connection ended: every line that will be is written
      }
      lines[mode] = logs.withLogId("REQ_005");
    }
    expect(lines.on?.map((l) => [l.protocol, l["rpc.method"], l.code])).toEqual([
      ["connect", "bazbii.feed.v1.HeatmapService/GetHeatmap", "ok"],
      ["grpc", "bazbii.post.v1.UserPostService/Get", "not_found"],
    ]);
    expect(lines.on?.[1]).toMatchObject({
      level: "info",
      reason: "POST_NOT_FOUND",
      attempts: 1,
      endpoint: `127.0.0.1:${system.api.port}`,
      client_address: "127.0.0.1",
    });
    for (const field of ["request_id", "trace_id", "duration_ms", "request_bytes", "response_bytes"])
      expect(lines.on?.[1], field).toHaveProperty(field);
    expect(lines.errors?.map((l) => l.code)).toEqual(["not_found"]);
    expect(lines.off).toEqual([]);
  });
});
