import type { Code } from "@connectrpc/connect";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { HeatmapService } from "../src/gen/bazbii/feed/v1/heatmap_service_pb.js";
import { UserPostService } from "../src/gen/bazbii/post/v1/user_post_service_pb.js";
import {
  BadRequestSchema,
  ErrorInfoSchema,
  LocalizedMessageSchema,
  RequestInfoSchema,
  ResourceInfoSchema,
  RetryInfoSchema,
} from "../src/gen/google/rpc/error_details_pb.js";
import { allCodes, codeTable } from "../src/shared/code-table.js";
import { asGateway } from "./helpers/as-gateway.js";
import { detailOf } from "./helpers/details.js";
import { callRest } from "./helpers/rest-client.js";
import { type System, startSystem } from "./helpers/system.js";
import { callWire, closeGrpcClients, type Outcome, protocols } from "./helpers/wire-clients.js";

// Our own conformance suite (the official Connect runner cannot run here):
// every non-OK code x {Connect JSON, Connect binary, gRPC, gRPC-Web} x
// {direct to the API server, through the gateway}, and REST (google.api.http)
// through the gateway, whose answers are checked against /openapi.json too. Codes the domain never
// produces come from fault injection, which this system turns on and
// production configuration refuses.

let system: System;
beforeAll(async () => {
  system = await startSystem({ api: { faultInjection: true }, gateway: { faultInjection: true } });
});
afterAll(async () => {
  closeGrpcClients();
  await system?.close();
});

const RETRY_DELAY_MS = 1500;
const hops = ["api", "gateway"] as const;

async function everyWay(
  request: { id: string },
  headers: Record<string, string>,
): Promise<{ label: string; outcome: Exclude<Outcome, { ok: true }> }[]> {
  const results = [];
  for (const hop of hops) {
    const baseUrl = hop === "gateway" ? system.gateway.url : system.api.url;
    for (const protocol of protocols) {
      const direct = hop === "api" ? asGateway(UserPostService.method.get, undefined, headers["x-request-id"]) : {};
      const outcome = await callWire(protocol, baseUrl, UserPostService.method.get, request, {
        headers: { ...headers, ...direct },
      });
      if (outcome.ok) throw new Error(`${protocol} via ${hop} succeeded`);
      results.push({ label: `${protocol} via ${hop}`, outcome });
    }
  }
  const rest = await callRest(system.gateway.url, UserPostService.method.get, request, { headers });
  if (rest.ok) throw new Error("rest via gateway succeeded");
  results.push({ label: "rest via gateway", outcome: rest });
  return results;
}

describe.each(allCodes.map((code) => [codeTable[code].name, code] as const))("code %s", (name, code: Code) => {
  const requestId = `conformance-${name}-${crypto.randomUUID()}`;
  const withRetry = name === "unavailable" || name === "resource_exhausted";
  let results: Awaited<ReturnType<typeof everyWay>>;

  beforeAll(async () => {
    results = await everyWay(
      { id: "x" },
      {
        "x-request-id": requestId,
        "accept-language": "ja",
        "x-bazbii-fault-abort": name,
        ...(withRetry ? { "x-bazbii-fault-retry-delay-ms": String(RETRY_DELAY_MS) } : {}),
      },
    );
  });

  it("has the code, the message (with ';', ':' and '%') and, for Connect and REST, the HTTP status of the code table", () => {
    const message = `injected fault ${name}: requested with x-bazbii-fault-abort; 100% deliberate, nothing is broken`;
    for (const { label, outcome } of results) {
      expect({ label, code: outcome.code, message: outcome.message }).toEqual({ label, code: name, message });
      if (label.startsWith("connect-") || label.startsWith("rest")) {
        expect(outcome.httpStatus, label).toBe(codeTable[code].httpStatus);
      }
    }
  });

  it("carries the same detail bytes on every protocol and hop, one of each type", () => {
    const [first, ...rest] = results;
    for (const { label, outcome } of rest) expect(outcome.details, label).toEqual(first?.outcome.details);
    const details = first?.outcome.details ?? [];
    expect(new Set(details.map((d) => d.type)).size).toBe(details.length);
    expect(detailOf(details, ErrorInfoSchema)).toMatchObject({
      reason: "FAULT_INJECTED",
      domain: "bazbii.dev",
      metadata: { code: name },
    });
    expect(detailOf(details, RequestInfoSchema)?.requestId).toBe(requestId);
    expect(detailOf(details, LocalizedMessageSchema)).toMatchObject({
      locale: "ja",
      message: `注入された障害 ${name}: x-bazbii-fault-abort で要求されました。意図的なもので、故障ではありません`,
    });
    const retry = detailOf(details, RetryInfoSchema);
    if (withRetry) expect(retry?.retryDelay).toMatchObject({ seconds: 1n, nanos: 500_000_000 });
    else expect(retry).toBeUndefined();
  });

  it("passes allowed metadata (retry-after, grpc-retry-pushback-ms; REST: Retry-After) through, and no hop's protocol headers", () => {
    for (const { label, outcome } of results) {
      const headers = outcome.headerText.toLowerCase();
      if (withRetry) {
        expect(headers, label).toMatch(/^retry-after: 2$/m);
        if (label.startsWith("rest")) expect(headers, label).not.toContain("grpc-");
        else expect(headers, label).toMatch(/^grpc-retry-pushback-ms: 1500$/m);
      } else {
        expect(headers, label).not.toContain("retry-after");
      }
      if (label.startsWith("connect-") || label.startsWith("rest")) {
        expect(headers, label).not.toMatch(/grpc-status|grpc-message/);
        expect(headers.match(/^content-type:/gm), label).toHaveLength(1);
      }
    }
  });

  it("is logged once per call and process, at the code's level", () => {
    const level = codeTable[code].logLevel;
    const api = system.apiLogs.forRequest(requestId);
    const gateway = system.gatewayLogs.forRequest(requestId);
    expect(api.map((l) => [l.log_id, l.level])).toEqual(Array.from({ length: 9 }, () => ["REQ_003", level]));
    expect(gateway.map((l) => [l.log_id, l.level])).toEqual(Array.from({ length: 5 }, () => ["REQ_012", level]));
  });
});

describe("a message with non-ASCII text and characters gRPC percent-encodes", () => {
  it("arrives unchanged on every protocol and hop", async () => {
    const id = "投稿-100%;a/b:c?é 😀";
    const results = await everyWay({ id }, { "x-request-id": `nasty-${crypto.randomUUID()}` });
    const [first, ...rest] = results;
    for (const { label, outcome } of results) {
      expect({ label, code: outcome.code, message: outcome.message }).toEqual({
        label,
        code: "not_found",
        message: `post not found: ${id}`,
      });
    }
    for (const { label, outcome } of rest) expect(outcome.details, label).toEqual(first?.outcome.details);
    expect(detailOf(first?.outcome.details ?? [], ResourceInfoSchema)).toMatchObject({
      resourceType: "bazbii.post.v1.Post",
      resourceName: id,
    });
  });
});

describe("fault injection switched off", () => {
  it("ignores the fault headers", async () => {
    const plain = await startSystem();
    try {
      for (const baseUrl of [plain.gateway.url, plain.api.url]) {
        const direct = baseUrl === plain.api.url ? asGateway(UserPostService.method.get) : {};
        const outcome = await callWire(
          "connect-json",
          baseUrl,
          UserPostService.method.get,
          { id: "x" },
          {
            headers: { "x-bazbii-fault-abort": "internal", "x-bazbii-fault-at": "gateway", ...direct },
          },
        );
        expect(outcome).toMatchObject({ ok: false, code: "not_found" });
      }
    } finally {
      await plain.close();
    }
  });
});

describe("errors the protocol layer raises before any handler runs", () => {
  it("a body that does not decode: invalid_argument with ErrorInfo, RequestInfo, LocalizedMessage and BadRequest, logged once", async () => {
    for (const [baseUrl, logs, logId] of [
      [system.gateway.url, system.gatewayLogs, "REQ_002"],
      [system.api.url, system.apiLogs, "REQ_003"],
    ] as const) {
      const requestId = `malformed-${crypto.randomUUID()}`;
      const direct =
        baseUrl === system.api.url ? asGateway(HeatmapService.method.getHeatmap, undefined, requestId) : {};
      const res = await fetch(`${baseUrl}/bazbii.feed.v1.HeatmapService/GetHeatmap`, {
        method: "POST",
        headers: { "content-type": "application/json", "x-request-id": requestId, "accept-language": "ja", ...direct },
        body: JSON.stringify({ h3Res: "sixteen" }),
      });
      expect(res.status).toBe(400);
      const body = (await res.json()) as { code: string; message: string; details: { type: string; value: string }[] };
      expect(body.code).toBe("invalid_argument");
      expect(body.message).toContain("cannot decode field bazbii.feed.v1.GetHeatmapRequest.h3_res from JSON");
      const details = body.details.map((d) => ({
        type: d.type,
        value: Buffer.from(d.value, "base64").toString("base64"),
      }));
      expect(detailOf(details, ErrorInfoSchema)?.reason).toBe("PROTOCOL_ERROR");
      expect(detailOf(details, RequestInfoSchema)?.requestId).toBe(requestId);
      expect(detailOf(details, LocalizedMessageSchema)?.locale).toBe("ja");
      expect(detailOf(details, BadRequestSchema)?.fieldViolations[0]?.field).toBe("h3_res");
      expect(logs.forRequest(requestId).map((l) => [l.log_id, l.level, l.reason])).toEqual([
        [logId, "warn", "PROTOCOL_ERROR"],
      ]);
    }
  });

  it.each(protocols)("a message over the size limit, over %s: resource_exhausted with details", async (protocol) => {
    for (const baseUrl of [system.gateway.url, system.api.url]) {
      const headers = baseUrl === system.api.url ? asGateway(UserPostService.method.get) : {};
      const outcome = await callWire(
        protocol,
        baseUrl,
        UserPostService.method.get,
        { id: "x".repeat(1_100_000) },
        { headers },
      );
      if (outcome.ok) throw new Error("accepted an oversized message");
      expect(outcome.code).toBe("resource_exhausted");
      expect(detailOf(outcome.details, ErrorInfoSchema)?.reason).toBe("PROTOCOL_ERROR");
      expect(detailOf(outcome.details, RequestInfoSchema)?.requestId).toMatch(/.+/);
    }
  });
});
