import * as http from "node:http";
import * as http2 from "node:http2";
import { connect } from "node:net";
import { gzipSync } from "node:zlib";
import { create, toBinary } from "@bufbuild/protobuf";
import * as grpc from "@grpc/grpc-js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { gatewayConfigFromEnv } from "../src/config/gateway-config.js";
import { GetHeatmapRequestSchema } from "../src/gen/bazbii/feed/v1/heatmap_service_pb.js";
import { GetRequestSchema } from "../src/gen/bazbii/post/v1/user_post_service_pb.js";
import { ErrorInfoSchema, RequestInfoSchema } from "../src/gen/google/rpc/error_details_pb.js";
import { detailOf } from "./helpers/details.js";
import { envelope, type RawAnswer, type RawRequest, sendHttp1, sendHttp2 } from "./helpers/raw-rpc.js";
import { type System, startSystem } from "./helpers/system.js";
import { closeGrpcClients } from "./helpers/wire-clients.js";

// One test per defect found by generated malformed requests: each failed
// before its fix. The property-based suite is test/fuzz.spec.ts.

let system: System;
const agents: http.Agent[] = [];
const sessions: http2.ClientHttp2Session[] = [];
beforeAll(async () => {
  const limits = gatewayConfigFromEnv({ NODE_ENV: "test" }).limits;
  system = await startSystem({ gateway: { limits: { ...limits, maxRequestBytes: 4096, headersTimeoutMs: 500 } } });
});
afterAll(async () => {
  closeGrpcClients();
  for (const agent of agents) agent.destroy();
  for (const session of sessions) session.destroy();
  await system?.close();
});

/** A keep-alive agent with one connection: every call on it shares the connection. */
function oneConnection(): http.Agent {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  agents.push(agent);
  return agent;
}

function h2c(): http2.ClientHttp2Session {
  const session = http2.connect(system.gateway.url);
  session.on("error", () => {});
  sessions.push(session);
  return session;
}

const GET_PATH = "/bazbii.post.v1.UserPostService/Get";
const getMessage = (id: string) => toBinary(GetRequestSchema, create(GetRequestSchema, { id }));

function reasonOf(answer: RawAnswer): string | undefined {
  const info = answer.details.find((d) => d.type === ErrorInfoSchema.typeName);
  return info === undefined
    ? undefined
    : detailOf([{ ...info, value: Buffer.from(info.value).toString("base64") }], ErrorInfoSchema)?.reason;
}

function requestIdOf(answer: RawAnswer): string | undefined {
  const info = answer.details.find((d) => d.type === RequestInfoSchema.typeName);
  return info === undefined
    ? undefined
    : detailOf([{ ...info, value: Buffer.from(info.value).toString("base64") }], RequestInfoSchema)?.requestId;
}

/** Nested start-group tags, deeper than protobuf-es's recursion limit. */
function deeplyNestedGroups(depth: number): Buffer {
  // Field 15, wire type 3 (start group): (15 << 3) | 3 = 123; end group: (15 << 3) | 4 = 124.
  return Buffer.concat([Buffer.alloc(depth, 123), Buffer.alloc(depth, 124)]);
}

describe("an undecodable message is the caller's error: invalid_argument, logged at warn, never internal", () => {
  const undecodable: [string, (protocol: "grpc" | "grpc-web") => RawRequest][] = [
    [
      "garbage bytes",
      (p) => ({ protocol: p, path: GET_PATH, headers: {}, body: envelope(Buffer.from([0xff, 0xff, 0xff, 0xff])) }),
    ],
    [
      "a length prefix that lies",
      (p) => ({ protocol: p, path: GET_PATH, headers: {}, body: envelope(getMessage("x"), 0, 13) }),
    ],
    [
      "protobuf nested past the recursion limit",
      (p) => ({ protocol: p, path: GET_PATH, headers: {}, body: envelope(deeplyNestedGroups(200)) }),
    ],
    [
      "bad gzip",
      (p) => ({
        protocol: p,
        path: GET_PATH,
        headers: { "grpc-encoding": "gzip" },
        body: envelope(Buffer.from("not gzip at all"), 1),
      }),
    ],
    [
      "the compressed flag without an encoding",
      (p) => ({ protocol: p, path: GET_PATH, headers: {}, body: envelope(getMessage("x"), 1) }),
    ],
  ];

  it.each(undecodable)("%s, over gRPC, gRPC-Web and Connect binary", async (_name, request) => {
    const before = [...system.apiLogs.lines, ...system.gatewayLogs.lines].length;
    const grpc = await sendHttp2(h2c(), withContentType(request("grpc"), "application/grpc"));
    const web = await sendHttp1(
      system.gateway.url,
      oneConnection(),
      withContentType(request("grpc-web"), "application/grpc-web+proto"),
    );
    for (const answer of [grpc, web]) {
      expect(answer.code).toBe("invalid_argument");
      expect(reasonOf(answer)).toBe("PROTOCOL_ERROR");
    }
    const lines = [...system.apiLogs.lines, ...system.gatewayLogs.lines].slice(before);
    expect(lines.filter((l) => l.level === "error")).toEqual([]);
  });

  it("over Connect binary: HTTP 400, not 500", async () => {
    for (const body of [Buffer.from([0xff, 0xff, 0xff]), deeplyNestedGroups(200)]) {
      const answer = await sendHttp1(system.gateway.url, oneConnection(), {
        protocol: "connect",
        path: GET_PATH,
        headers: { "content-type": "application/proto" },
        body,
      });
      expect({ status: answer.httpStatus, code: answer.code }).toEqual({ status: 400, code: "invalid_argument" });
    }
    const gzipped = await sendHttp1(system.gateway.url, oneConnection(), {
      protocol: "connect",
      path: GET_PATH,
      headers: { "content-type": "application/proto", "content-encoding": "gzip" },
      body: gzipSync(Buffer.from([0xff, 0xff])).subarray(0, 10),
    });
    expect({ status: gzipped.httpStatus, code: gzipped.code }).toEqual({ status: 400, code: "invalid_argument" });
  });
});

function withContentType(req: RawRequest, contentType: string): RawRequest {
  return { ...req, headers: { ...req.headers, "content-type": contentType } };
}

describe("a Connect GET whose message is not base64", () => {
  it("is invalid_argument with its request id, not a bare internal error", async () => {
    const answer = await sendHttp1(system.gateway.url, oneConnection(), {
      protocol: "connect-get",
      path: `${GET_PATH}?connect=v1&encoding=proto&base64=1&message=!!!`,
      headers: { "x-request-id": "get-not-base64" },
      body: new Uint8Array(),
    });
    expect({ status: answer.httpStatus, code: answer.code }).toEqual({ status: 400, code: "invalid_argument" });
    expect(reasonOf(answer)).toBe("PROTOCOL_ERROR");
    expect(requestIdOf(answer)).toBe("get-not-base64");
    expect(answer.headers["x-request-id"]).toBe("get-not-base64");
  });
});

describe("a connection after a refusal", () => {
  it.each([
    ["announced by content-length", {}],
    ["chunked", { "transfer-encoding": "chunked" }],
  ])("serves the next call at once after a gRPC-Web message over MAX_REQUEST_BYTES (%s)", async (_name, framing) => {
    const agent = oneConnection();
    const tooLarge = envelope(getMessage("x".repeat(2_000_000)));
    const refused = await sendHttp1(system.gateway.url, agent, {
      protocol: "grpc-web",
      path: GET_PATH,
      headers: { "content-type": "application/grpc-web+proto", ...framing },
      body: tooLarge,
    });
    expect(refused.code).toBe("resource_exhausted");
    const next = await sendHttp1(
      system.gateway.url,
      agent,
      {
        protocol: "grpc-web",
        path: GET_PATH,
        headers: { "content-type": "application/grpc-web+proto" },
        body: envelope(getMessage("x")),
      },
      2_000,
    );
    expect(next.code).toBe("not_found");
  });

  it("answers a compressed message with no or an unknown grpc-encoding at once, and serves the next call", async () => {
    const agent = oneConnection();
    for (const encoding of [undefined, "zstd-or-whatever"]) {
      const answer = await sendHttp1(
        system.gateway.url,
        agent,
        {
          protocol: "grpc-web",
          path: GET_PATH,
          headers: { "content-type": "application/grpc-web+proto", ...(encoding ? { "grpc-encoding": encoding } : {}) },
          body: envelope(getMessage("x"), 1),
        },
        2_000,
      );
      expect(answer.code).toBe(encoding === undefined ? "invalid_argument" : "unimplemented");
    }
  });
});

describe("gRPC-Web text", () => {
  const text = (message: Uint8Array, path = GET_PATH): RawRequest => ({
    protocol: "grpc-web-text",
    path,
    headers: { "content-type": "application/grpc-web-text+proto", accept: "application/grpc-web-text" },
    body: Buffer.from(envelope(message).toString("base64")),
  });

  it("is served: base64 both ways, errors in the trailer frame, on the byte relay and the decoding relay", async () => {
    const notFound = await sendHttp1(system.gateway.url, oneConnection(), text(getMessage("nope")));
    expect(notFound.headers["content-type"]).toMatch(/^application\/grpc-web-text/);
    expect({ code: notFound.code, message: notFound.message, reason: reasonOf(notFound) }).toEqual({
      code: "not_found",
      message: "post not found: nope",
      reason: "POST_NOT_FOUND",
    });
    const heatmap = await sendHttp1(
      system.gateway.url,
      oneConnection(),
      text(
        toBinary(GetHeatmapRequestSchema, create(GetHeatmapRequestSchema, { h3Res: 3 })),
        "/bazbii.feed.v1.HeatmapService/GetHeatmap",
      ),
    );
    expect(heatmap.code).toBe("ok");
  });

  it("decodes a body sent in base64 pieces, each padded", async () => {
    const frame = envelope(getMessage("padded"));
    const pieces = [frame.subarray(0, 4), frame.subarray(4)].map((p) => p.toString("base64")).join("");
    const answer = await sendHttp1(system.gateway.url, oneConnection(), {
      ...text(new Uint8Array()),
      body: Buffer.from(pieces),
    });
    expect(answer.message).toBe("post not found: padded");
  });
});

describe("an unknown method", () => {
  it("is unimplemented in the caller's own protocol, with a request id", async () => {
    const path = "/bazbii.post.v1.UserPostService/Nope";
    // A real gRPC client (grpc-js) sees the code, not "HTTP status 404".
    const client = new grpc.Client(new URL(system.gateway.url).host, grpc.credentials.createInsecure());
    const status = await new Promise<grpc.ServiceError>((resolve) =>
      client.makeUnaryRequest(
        path,
        (b: Buffer) => b,
        (b: Buffer) => b,
        Buffer.alloc(0),
        (err) => resolve(err as grpc.ServiceError),
      ),
    );
    client.close();
    expect({ code: status.code, requestId: typeof status.metadata.get("x-request-id")[0] }).toEqual({
      code: grpc.status.UNIMPLEMENTED,
      requestId: "string",
    });
    const answers = [
      await sendHttp2(h2c(), {
        protocol: "grpc",
        path,
        headers: { "content-type": "application/grpc" },
        body: envelope(new Uint8Array()),
      }),
      await sendHttp1(system.gateway.url, oneConnection(), {
        protocol: "connect",
        path,
        headers: { "content-type": "application/json" },
        body: Buffer.from("{}"),
      }),
      await sendHttp1(system.gateway.url, oneConnection(), {
        protocol: "grpc-web",
        path,
        headers: { "content-type": "application/grpc-web+proto" },
        body: envelope(new Uint8Array()),
      }),
    ];
    for (const answer of answers) {
      expect(answer.code).toBe("unimplemented");
      expect(reasonOf(answer)).toBe("METHOD_NOT_FOUND");
      expect(requestIdOf(answer)).toBe(answer.headers["x-request-id"]);
    }
    expect(answers[1]?.httpStatus).toBe(501);
  });
});

describe("x-request-id", () => {
  it("is on every answer: 404, 415, health, metrics, the page", async () => {
    const base = system.gateway.url;
    const answers = await Promise.all([
      fetch(`${base}/no/such/thing`),
      fetch(`${base}${GET_PATH}`, { method: "POST", headers: { "content-type": "text/plain" }, body: "x" }),
      fetch(`${base}/healthz`),
      fetch(`${base}/metrics`),
      fetch(`${system.api.url}/nothing-here`),
    ]);
    expect(answers.map((a) => a.status)).toEqual([404, 415, 200, 200, 404]);
    for (const a of answers) expect(a.headers.get("x-request-id")).toMatch(/^[0-9a-f-]{36}$/);
    const echoed = await fetch(`${base}/no/such/thing`, { headers: { "x-request-id": "quote-me-1" } });
    expect(echoed.headers.get("x-request-id")).toBe("quote-me-1");
  });
});

describe("slow headers", () => {
  it("closes a connection that drips its HTTP/2 preface, or half a HEADERS frame, within HEADERS_TIMEOUT_MS + 1 s", async () => {
    const port = Number(new URL(system.gateway.url).port);
    const preface = Buffer.from("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n");
    // An empty SETTINGS frame, then the first 5 of a HEADERS frame's 9 header bytes.
    const halfHeaders = Buffer.concat([
      preface,
      Buffer.from([0, 0, 0, 4, 0, 0, 0, 0, 0]),
      Buffer.from([0, 0, 10, 1, 4]),
    ]);
    const drips: [string, Buffer, number][] = [
      ["the preface a byte at a time", preface, 100],
      ["half a HEADERS frame", halfHeaders, 0],
    ];
    for (const [name, bytes, everyMs] of drips) {
      const started = performance.now();
      const socket = connect(port, "127.0.0.1");
      socket.on("error", () => {});
      let i = 0;
      const drip = setInterval(
        () => {
          if (i < bytes.length && !socket.destroyed)
            socket.write(bytes.subarray(i, everyMs === 0 ? bytes.length : i + 1));
          i = everyMs === 0 ? bytes.length : i + 1;
        },
        Math.max(everyMs, 1),
      );
      await new Promise<void>((resolve) => socket.once("close", () => resolve()).resume());
      clearInterval(drip);
      const closedAfterMs = performance.now() - started;
      expect({ name, atLeastTheTimeout: closedAfterMs >= 400, withinASecondMore: closedAfterMs < 1_500 }).toEqual({
        name,
        atLeastTheTimeout: true,
        withinASecondMore: true,
      });
    }
  });
});
