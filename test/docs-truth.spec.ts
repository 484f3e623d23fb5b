import { execFile } from "node:child_process";
import { readFile } from "node:fs/promises";
import { promisify } from "node:util";
import type { DescMessage, DescMethodUnary, MessageInitShape } from "@bufbuild/protobuf";
import { SignJWT } from "jose";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DEVELOPMENT_JWT_SECRET } from "../src/config/gateway-config.js";
import { ErrStorageConflict, ErrStorageUnavailable } from "../src/domain/storage-errors.js";
import { HeatmapService } from "../src/gen/bazbii/feed/v1/heatmap_service_pb.js";
import { UserPostService } from "../src/gen/bazbii/post/v1/user_post_service_pb.js";
import { ErrorInfoSchema, LocalizedMessageSchema } from "../src/gen/google/rpc/error_details_pb.js";
import { Health } from "../src/gen/health/v1/health_pb.js";
import { codeTable } from "../src/shared/code-table.js";
import { asGateway } from "./helpers/as-gateway.js";
import { detailOf } from "./helpers/details.js";
import { startFakeUpstream } from "./helpers/fake-upstream.js";
import type { LogCapture } from "./helpers/log-capture.js";
import { freePort } from "./helpers/process.js";
import { restOutcome } from "./helpers/rest-client.js";
import { type StreamEnd, watchHeatmap } from "./helpers/stream-clients.js";
import { type System, startApi, startGatewayFor, startSystem } from "./helpers/system.js";
import { callWire, closeGrpcClients, type Outcome } from "./helpers/wire-clients.js";

// What docs/errors.md, docs/log-ids.md and the README say, checked against real
// answers and real log lines of the running servers: every public error the
// docs list is raised here for real (or its absence explained), and its code,
// HTTP status, details and log line must be what its row says.

interface ErrorRow {
  readonly code: string;
  readonly http: string;
  readonly logs: { api?: string; gateway?: string };
  /** The level of its log line where it is not its code's ("at warn"). */
  readonly level: string | undefined;
  readonly details: readonly string[];
  readonly retired: boolean;
}

/** docs/errors.md's table, by reason. */
async function errorRows(): Promise<Map<string, ErrorRow>> {
  const rows = new Map<string, ErrorRow>();
  for (const line of (await readFile("docs/errors.md", "utf8")).split("\n")) {
    const cells = line.split(" | ");
    const reason = /^\| `([A-Z0-9_]+)`( \(retired\))?$/.exec(cells[0] ?? "");
    if (reason === null || cells.length < 9) continue;
    const logs: { api?: string; gateway?: string } = {};
    for (const [, where, id] of (cells[4] ?? "").matchAll(/(API|gateway): `(\w+)`/g)) {
      if (where === "API") logs.api = id;
      else logs.gateway = id;
    }
    rows.set(reason[1] as string, {
      code: (cells[1] ?? "").replaceAll("`", ""),
      http: cells[2] ?? "",
      logs,
      level: /at (\w+)/.exec(cells[4] ?? "")?.[1],
      details: (cells[8] ?? "")
        .replace(/ \|$/, "")
        .split(", ")
        .map((d) => d.split(" ")[0] as string),
      retired: reason[2] !== undefined,
    });
  }
  return rows;
}

/** docs/log-ids.md's table: message and level of each ID. */
async function logIdRows(): Promise<Map<string, { msg: string; level: string }>> {
  const rows = new Map<string, { msg: string; level: string }>();
  for (const line of (await readFile("docs/log-ids.md", "utf8")).split("\n")) {
    const m = /^\| `(\w+)` \| ([^|]+) \| ([^|]+) \|/.exec(line);
    if (m !== null) rows.set(m[1] as string, { msg: (m[2] as string).trim(), level: (m[3] as string).trim() });
  }
  return rows;
}

const SECRET = DEVELOPMENT_JWT_SECRET;
const key = new TextEncoder().encode(SECRET);
const STORAGE_DOWN = "storage-down";
const STORAGE_CONFLICT = "storage-conflict";
const BROKEN = "force-internal";

let system: System;
const cleanups: (() => Promise<unknown>)[] = [];
let aliceToken: string;
let alicePost: string;

beforeAll(async () => {
  system = await startSystem({
    api: { faultInjection: true },
    gateway: { faultInjection: true },
    wrapStorage: (storage) => ({
      ...storage,
      posts: {
        ...storage.posts,
        findById: (id) => {
          if (id === STORAGE_DOWN) return Promise.reject(ErrStorageUnavailable.wrap("down"));
          if (id === STORAGE_CONFLICT) return Promise.reject(ErrStorageConflict.wrap("conflict"));
          if (id === BROKEN) return Promise.reject(new Error("a bug"));
          return storage.posts.findById(id);
        },
      },
    }),
  });
  aliceToken = await system.token("alice");
  const created = await callWire(
    "connect-json",
    system.gateway.url,
    UserPostService.method.create,
    { h3Index: "8928308280fffff", text: "alice's", requestId: "docs-truth-1" },
    { headers: { authorization: `Bearer ${aliceToken}` } },
  );
  if (!created.ok) throw new Error("setup failed");
  alicePost = (created.response as { id: string }).id;
});
afterAll(async () => {
  closeGrpcClients();
  for (const cleanup of cleanups.reverse()) await cleanup();
  await system?.close();
});

/** One real occurrence of a documented error, and where its log line is. */
interface Occurrence {
  readonly outcome: Outcome;
  readonly requestId: string;
  /** The process that raised it and its logs; a failed Create is logged under its event's ID. */
  readonly raisedBy: "api" | "gateway";
  readonly logs: LogCapture;
  readonly logIdOverride?: string;
}

function call<I extends DescMessage, O extends DescMessage>(
  baseUrl: string,
  method: DescMethodUnary<I, O>,
  request: MessageInitShape<I>,
  headers: Record<string, string> = {},
  timeoutMs?: number,
): Promise<{ outcome: Outcome; requestId: string }> {
  const requestId = headers["x-request-id"] ?? `docs-${crypto.randomUUID()}`;
  return callWire("connect-json", baseUrl, method, request, {
    headers: { "x-request-id": requestId, ...headers },
    ...(timeoutMs === undefined ? {} : { timeoutMs }),
  }).then((outcome) => ({ outcome, requestId }));
}

const bearer = (token: string) => ({ authorization: `Bearer ${token}` });
const viaGateway = (r: { outcome: Outcome; requestId: string }, raisedBy: "api" | "gateway"): Occurrence => ({
  ...r,
  raisedBy,
  logs: raisedBy === "api" ? system.apiLogs : system.gatewayLogs,
});

/** How each documented reason is raised for real. */
const scenarios: Record<string, () => Promise<Occurrence>> = {
  H3_RES_OUT_OF_RANGE: async () =>
    viaGateway(await call(system.gateway.url, HeatmapService.method.getHeatmap, { h3Res: 16 }), "gateway"),
  INVALID_AREA_CELL: async () =>
    viaGateway(await call(system.gateway.url, HeatmapService.method.getHeatmap, { h3Res: 3, within: "x" }), "api"),
  ...Object.fromEntries(
    (
      [
        ["INVALID_H3_INDEX", { h3Index: "nope", text: "t" }],
        ["TEXT_EMPTY", { h3Index: "8928308280fffff", text: " " }],
        ["TEXT_TOO_LONG", { h3Index: "8928308280fffff", text: "x".repeat(281) }],
        ["TEXT_HAS_CONTROL_CHARACTERS", { h3Index: "8928308280fffff", text: "a\u0007" }],
        ["INVALID_REQUEST_ID", { h3Index: "8928308280fffff", text: "t", requestId: "has space" }],
      ] as const
    ).map(([reason, request]) => [
      reason,
      async () => ({
        ...viaGateway(
          await call(system.gateway.url, UserPostService.method.create, request, bearer(aliceToken)),
          "api",
        ),
        logIdOverride: "EVT_POST_003",
      }),
    ]),
  ),
  REQUEST_ID_REUSED: async () => ({
    ...viaGateway(
      await call(
        system.gateway.url,
        UserPostService.method.create,
        { h3Index: "8928308280fffff", text: "another text", requestId: "docs-truth-1" },
        bearer(aliceToken),
      ),
      "api",
    ),
    logIdOverride: "EVT_POST_003",
  }),
  POST_ID_MISSING: async () =>
    viaGateway(await call(system.gateway.url, UserPostService.method.get, { id: "" }), "api"),
  POST_ID_INVALID: async () =>
    viaGateway(await call(system.gateway.url, UserPostService.method.get, { id: "a\u0000" }), "api"),
  POST_NOT_FOUND: async () =>
    viaGateway(await call(system.gateway.url, UserPostService.method.get, { id: "x" }), "api"),
  NOT_POST_AUTHOR: async () =>
    viaGateway(
      await call(
        system.gateway.url,
        UserPostService.method.delete,
        { id: alicePost },
        bearer(await system.token("bob")),
      ),
      "api",
    ),
  ACTOR_MISSING: async () =>
    viaGateway(await call(system.gateway.url, UserPostService.method.delete, { id: alicePost }), "gateway"),
  INTERNAL_CALL_UNAUTHENTICATED: async () =>
    viaGateway(await call(system.api.url, UserPostService.method.get, { id: "x" }), "api"),
  INVALID_ACTOR_ID: async () =>
    viaGateway(
      await call(
        system.api.url,
        UserPostService.method.delete,
        { id: alicePost },
        asGateway(UserPostService.method.delete, "has space"),
      ),
      "api",
    ),
  TOKEN_MALFORMED: async () =>
    viaGateway(
      await call(system.gateway.url, UserPostService.method.get, { id: "x" }, { authorization: "Basic x" }),
      "gateway",
    ),
  TOKEN_INVALID: async () =>
    viaGateway(
      await call(system.gateway.url, UserPostService.method.get, { id: "x" }, bearer(`${aliceToken.slice(0, -4)}AAAA`)),
      "gateway",
    ),
  TOKEN_EXPIRED: async () =>
    viaGateway(
      await call(
        system.gateway.url,
        UserPostService.method.get,
        { id: "x" },
        bearer(
          await new SignJWT({}).setProtectedHeader({ alg: "HS256" }).setSubject("a").setExpirationTime(1).sign(key),
        ),
      ),
      "gateway",
    ),
  TOKEN_NOT_YET_VALID: async () =>
    viaGateway(
      await call(
        system.gateway.url,
        UserPostService.method.get,
        { id: "x" },
        bearer(await new SignJWT({}).setProtectedHeader({ alg: "HS256" }).setSubject("a").setNotBefore("1h").sign(key)),
      ),
      "gateway",
    ),
  STORAGE_UNAVAILABLE: async () =>
    viaGateway(await call(system.gateway.url, UserPostService.method.get, { id: STORAGE_DOWN }), "api"),
  STORAGE_CONFLICT: async () =>
    viaGateway(await call(system.gateway.url, UserPostService.method.get, { id: STORAGE_CONFLICT }), "api"),
  UPSTREAM_UNREACHABLE: async () => {
    // Without active health checks, the call itself finds nothing listening.
    const { gateway, logs } = await gatewayTo(`http://127.0.0.1:${await freePort()}`, {
      upstream: { healthIntervalMs: 0 },
    });
    return { ...(await call(gateway.url, UserPostService.method.get, { id: "x" })), raisedBy: "gateway", logs };
  },
  NO_HEALTHY_UPSTREAM: async () => {
    const { gateway, logs } = await gatewayTo(`http://127.0.0.1:${await freePort()}`);
    // Its one endpoint's health stream cannot connect: the gateway stops being ready.
    await expect.poll(async () => (await fetch(`${gateway.url}/readyz`)).status).toBe(503);
    return { ...(await call(gateway.url, UserPostService.method.get, { id: "x" })), raisedBy: "gateway", logs };
  },
  ...Object.fromEntries(
    (
      [
        ["UPSTREAM_CONNECTION_LOST", "drop"],
        ["UPSTREAM_UNAVAILABLE", "503"],
        ["UPSTREAM_DEADLINE_EXCEEDED", "hang"],
        ["UPSTREAM_METHOD_NOT_FOUND", "404"],
        ["UPSTREAM_HTTP_UNAUTHENTICATED", "401"],
        ["UPSTREAM_HTTP_PERMISSION_DENIED", "403"],
        ["UPSTREAM_PROTOCOL_ERROR", "garbage"],
        ["UPSTREAM_HTTP_ERROR", "418"],
      ] as const
    ).map(([reason, behaviour]) => [
      reason,
      async () => {
        const { gateway, logs } = await brokenPeerGateway();
        const r = await call(gateway.url, UserPostService.method.get, { id: behaviour });
        return { ...r, raisedBy: "gateway" as const, logs };
      },
    ]),
  ),
  RATE_LIMITED: async () => {
    const { gateway, logs } = await gatewayTo(system.api.url, {
      rateLimit: { ...system.gatewayConfig.rateLimit, reads: 1 },
    });
    await call(gateway.url, UserPostService.method.get, { id: "x" });
    return { ...(await call(gateway.url, UserPostService.method.get, { id: "x" })), raisedBy: "gateway", logs };
  },
  OVERLOADED: async () => {
    const { gateway, logs } = await gatewayTo(system.api.url, { maxInFlight: 1, faultInjection: true });
    const slow = call(gateway.url, UserPostService.method.get, { id: "x" }, { "x-bazbii-fault-delay-ms": "300" });
    await new Promise((resolve) => setTimeout(resolve, 50));
    const shed = await call(gateway.url, UserPostService.method.get, { id: "x" });
    await slow;
    return { ...shed, raisedBy: "gateway", logs };
  },
  DEADLINE_EXCEEDED: async () =>
    viaGateway(
      await call(
        system.gateway.url,
        UserPostService.method.get,
        { id: "x" },
        { "x-bazbii-fault-delay-ms": "500" },
        100,
      ),
      "gateway",
    ),
  HEALTH_SERVICE_UNKNOWN: async () =>
    viaGateway(await call(system.api.url, Health.method.check, { service: "nope" }), "api"),
  FAULT_INJECTED: async () =>
    viaGateway(
      await call(system.gateway.url, UserPostService.method.get, { id: "x" }, { "x-bazbii-fault-abort": "aborted" }),
      "api",
    ),
  FAULT_HEADER_INVALID: async () =>
    viaGateway(
      await call(system.gateway.url, UserPostService.method.get, { id: "x" }, { "x-bazbii-fault-abort": "nonsense" }),
      "api",
    ),
  PROTOCOL_ERROR: async () => {
    const requestId = `docs-${crypto.randomUUID()}`;
    const res = await fetch(`${system.gateway.url}/bazbii.feed.v1.HeatmapService/GetHeatmap`, {
      method: "POST",
      headers: { "content-type": "application/json", "x-request-id": requestId },
      body: '{"h3Res":"three"}',
    });
    return { outcome: await asOutcome(res), requestId, raisedBy: "gateway", logs: system.gatewayLogs };
  },
  METHOD_NOT_FOUND: async () => {
    const requestId = `docs-${crypto.randomUUID()}`;
    const res = await fetch(`${system.gateway.url}/bazbii.post.v1.UserPostService/Nope`, {
      method: "POST",
      headers: { "content-type": "application/json", "x-request-id": requestId },
      body: "{}",
    });
    return { outcome: await asOutcome(res), requestId, raisedBy: "gateway", logs: system.gatewayLogs };
  },
  INTERNAL: async () => viaGateway(await call(system.gateway.url, UserPostService.method.get, { id: BROKEN }), "api"),
  REST_ROUTE_NOT_FOUND: async () => {
    const requestId = `docs-${crypto.randomUUID()}`;
    const res = await fetch(`${system.gateway.url}/v1/nowhere`, { headers: { "x-request-id": requestId } });
    return { outcome: restOutcome(res, await res.json()), requestId, raisedBy: "gateway", logs: system.gatewayLogs };
  },
  TOO_MANY_STREAMS: async () => {
    const { gateway, logs } = await gatewayTo(system.api.url, {
      streamLimits: { maxStreams: 100, maxStreamsPerCaller: 1 },
    });
    const first = watchHeatmap("connect-web", gateway.url, { h3Res: 2 });
    await first.message((m) => m.snapshot);
    const refused = await watchEnd(gateway.url);
    first.close();
    return { ...refused, raisedBy: "gateway", logs };
  },
  STREAM_DURATION_REACHED: async () => {
    const { gateway, logs } = await gatewayTo(system.api.url, { maxStreamDurationMs: 200 });
    return { ...(await watchEnd(gateway.url)), raisedBy: "gateway", logs };
  },
  STREAM_DRAINED: async () => {
    // An API server of its own, drained while a watch through the gateway is open.
    const { api, logs, cleanup } = await startApi();
    cleanups.push(async () => {
      await api.close(0);
      await cleanup();
    });
    const { gateway } = await gatewayTo(api.url);
    const requestId = `docs-${crypto.randomUUID()}`;
    const watch = watchHeatmap("connect-web", gateway.url, { h3Res: 2 }, { headers: { "x-request-id": requestId } });
    await watch.message((m) => m.snapshot);
    api.drain();
    return { outcome: streamOutcome(await watch.ended, requestId), requestId, raisedBy: "api", logs };
  },
};

/**
 * A stream's error as an Outcome. Its HTTP status is none of the row's: a
 * stream's errors travel in its end (Connect's end-of-stream message, gRPC's
 * trailers) of a 200 response.
 */
function streamOutcome(end: StreamEnd, requestId: string): Outcome {
  if (end.ok) throw new Error("the stream ended without an error");
  return { ...end, httpStatus: undefined, requestId, headerText: "" };
}

/** How a WatchHeatmap through `gatewayUrl` ends (it must end by itself). */
async function watchEnd(gatewayUrl: string): Promise<{ outcome: Outcome; requestId: string }> {
  const requestId = `docs-${crypto.randomUUID()}`;
  const watch = watchHeatmap("connect-web", gatewayUrl, { h3Res: 2 }, { headers: { "x-request-id": requestId } });
  return { outcome: streamOutcome(await watch.ended, requestId), requestId };
}

/** Documented reasons no test can receive as an answer, and why. */
const unreachable: Record<string, string> = {
  TEXT_NOT_UNICODE: "protobuf-es refuses unpaired surrogates before the domain sees them (PROTOCOL_ERROR)",
  CANCELED: "the caller went away: nobody is left to receive it",
  POST_ALREADY_DELETED: "retired: deleting a deleted post succeeds",
  CIRCUIT_OPEN: "retired: outlier detection per endpoint, NO_HEALTHY_UPSTREAM",
};

async function asOutcome(res: Response): Promise<Outcome> {
  const body = (await res.json()) as { code: string; message: string; details: { type: string; value: string }[] };
  return {
    ok: false,
    code: body.code,
    message: body.message,
    httpStatus: res.status,
    details: body.details,
    requestId: res.headers.get("x-request-id"),
    headerText: "",
  };
}

async function gatewayTo(apiUrl: string, overrides: Parameters<typeof startGatewayFor>[1] = {}) {
  const started = await startGatewayFor(apiUrl, overrides);
  cleanups.push(() => started.gateway.close(0));
  return started;
}

/** A gateway in front of a peer that fails the way the requested id (in the body) says. */
async function brokenPeerGateway() {
  const peer = await startFakeUpstream((peerCall) => {
    const chunks: Buffer[] = [];
    peerCall.req.on("data", (c: Buffer) => chunks.push(c));
    peerCall.req.once("end", () => {
      const text = Buffer.concat(chunks).toString("latin1");
      const what = ["drop", "503", "hang", "404", "401", "403", "garbage", "418"].find((w) => text.includes(w));
      if (what === "drop") peerCall.dropConnection();
      else if (what === "garbage")
        peerCall.respond(200, { "content-type": "application/proto" }, Buffer.from([0xff, 0xff]));
      else if (what !== "hang") peerCall.respond(Number(what), { "content-type": "text/html" }, "<html>proxy</html>");
    });
  });
  cleanups.push(() => peer.close());
  return gatewayTo(peer.url, { defaultTimeoutMs: 300, upstream: { outliers: { consecutiveFailures: 100 } } });
}

describe("docs/errors.md, against real answers", () => {
  it("lists every reason the catalog has, and each one is raised here for real or said why not", async () => {
    const rows = await errorRows();
    expect(rows.size).toBeGreaterThan(30);
    for (const reason of rows.keys()) {
      expect(
        scenarios[reason] !== undefined || unreachable[reason] !== undefined,
        `${reason}: no scenario raises it`,
      ).toBe(true);
    }
  });

  it("gives each error the code, HTTP status, details and log line its row says", async () => {
    const rows = await errorRows();
    const logIds = await logIdRows();
    for (const [reason, raise] of Object.entries(scenarios)) {
      const row = rows.get(reason);
      if (row === undefined) throw new Error(`${reason} is not in docs/errors.md`);
      const { outcome, requestId, raisedBy, logs, logIdOverride } = await raise();
      if (outcome.ok) throw new Error(`${reason}: the call succeeded`);
      const info = detailOf(outcome.details, ErrorInfoSchema);
      expect(info?.reason, reason).toBe(reason);
      const requested = reason === "FAULT_INJECTED";
      const stream = outcome.httpStatus === undefined; // see streamOutcome
      expect({ reason, code: outcome.code, http: stream ? row.http : String(outcome.httpStatus) }).toEqual({
        reason,
        code: requested ? outcome.code : row.code,
        http: requested ? String(outcome.httpStatus) : row.http,
      });
      const types = outcome.details.map((d) => d.type.replace("google.rpc.", "")).sort();
      expect({ reason, details: types }).toEqual({ reason, details: [...row.details].sort() });
      // The raising process's line: the documented ID, with its documented message and level.
      const expectedId = logIdOverride ?? row.logs[raisedBy];
      const line = logs.forRequest(requestId).find((l) => l.log_id === expectedId);
      expect(line, `${reason}: no ${expectedId} line in the ${raisedBy}'s log`).toBeDefined();
      const documented = logIds.get(expectedId as string);
      expect({ reason, msg: line?.msg }).toEqual({ reason, msg: documented?.msg });
      const byCode = documented?.level.startsWith("by code");
      const codeLevel = Object.values(codeTable).find((c) => c.name === outcome.code)?.logLevel;
      expect({ reason, level: line?.level }).toEqual({
        reason,
        level: byCode ? (row.level ?? codeLevel) : documented?.level,
      });
    }
  });
});

describe("the README's Try it", () => {
  it("does what its comments say, run as written against a running gateway", async () => {
    const readme = await readFile("README.md", "utf8");
    const block = /## Try it\n\n```sh\n([\s\S]*?)```/.exec(readme)?.[1];
    if (block === undefined) throw new Error("no Try it block");
    const host = new URL(system.gateway.url).host;
    // Each curl also prints the HTTP status on a line of its own, to check the comments' claims.
    const script = block
      .replaceAll("localhost:8080", host)
      .replaceAll("curl -s ", `curl -s -w '\\nHTTP %{http_code}\\n' `);
    const { stdout } = await promisify(execFile)("bash", ["-euo", "pipefail", "-c", script], { timeout: 60_000 });
    const answers = stdout
      .trim()
      .split(/\nHTTP (\d{3})\n?/)
      .reduce<{ body: string; status: string }[]>((acc, part, i, all) => {
        if (i % 2 === 0 && all[i + 1] !== undefined) acc.push({ body: part, status: all[i + 1] as string });
        return acc;
      }, []);
    expect(answers.map((a) => a.status)).toEqual(["200", "200", "400"]);
    expect(JSON.parse(answers[0]?.body ?? "{}")).toHaveProperty("id");
    expect(JSON.parse(answers[1]?.body ?? "{}")).toHaveProperty("cells");
    // "An error: HTTP 400, code invalid_argument, message "h3_res must be between 0 and 15",
    //  details ErrorInfo, RequestInfo, LocalizedMessage (ja here), BadRequest"
    const error = JSON.parse(answers[2]?.body ?? "{}") as Outcome & { details: { type: string; value: string }[] };
    expect(error).toMatchObject({ code: "invalid_argument", message: "h3_res must be between 0 and 15" });
    expect(error.details.map((d) => d.type)).toEqual([
      "google.rpc.ErrorInfo",
      "google.rpc.RequestInfo",
      "google.rpc.LocalizedMessage",
      "google.rpc.BadRequest",
    ]);
    expect(detailOf(error.details, LocalizedMessageSchema)?.locale).toBe("ja");
  }, 90_000);
});
