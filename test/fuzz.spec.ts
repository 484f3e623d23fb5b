import * as http from "node:http";
import * as http2 from "node:http2";
import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { gatewayConfigFromEnv } from "../src/config/gateway-config.js";
import { ErrorInfoSchema, RequestInfoSchema } from "../src/gen/google/rpc/error_details_pb.js";
import { codeFromName } from "../src/shared/code-table.js";
import { detailOf } from "./helpers/details.js";
import { malformedRequest, summarize } from "./helpers/malformed-requests.js";
import { type RawAnswer, type RawRequest, sendHttp1, sendHttp2 } from "./helpers/raw-rpc.js";
import { type System, startSystem } from "./helpers/system.js";

// Generated malformed requests in every protocol (Connect unary and GET, gRPC,
// gRPC-Web, gRPC-Web text, REST) against the real gateway and API server. A bounded
// run is part of `npm test`; `npm run fuzz` runs FUZZ_RUNS (20,000) of them.
// A failure prints fast-check's seed and the shrunk request: FUZZ_SEED replays it.

const RUNS = Number(process.env.FUZZ_RUNS ?? 300);
const SEED = process.env.FUZZ_SEED === undefined ? undefined : Number(process.env.FUZZ_SEED);
/** Every call's deadline is capped at this, so no answer may come later (plus scheduling slack). */
const MAX_TIMEOUT_MS = 2_000;
const SLACK_MS = 1_000;
/** What must never reach a caller: stack frames, file paths, SQL, connection strings. */
const INTERNALS =
  /\bat [\w.<>]+ \(|\/work\/|node_modules|\bdist\/|\bsrc\/|SELECT |INSERT INTO|postgres(ql)?:\/\/|pglite/i;

let system: System;
let token: string;
let agent: http.Agent;
let session: http2.ClientHttp2Session | undefined;
beforeAll(async () => {
  const defaults = gatewayConfigFromEnv({ NODE_ENV: "test" });
  system = await startSystem({
    gateway: {
      limits: { ...defaults.limits, maxRequestBytes: 64 * 1024 },
      rateLimit: { ...defaults.rateLimit, reads: 10_000_000, writes: 10_000_000 },
      defaultTimeoutMs: MAX_TIMEOUT_MS,
      maxTimeoutMs: MAX_TIMEOUT_MS,
    },
    api: { limits: { ...defaults.limits, maxRequestBytes: 64 * 1024 } },
  });
  token = await system.token("fuzzer");
  agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
}, 60_000);
afterAll(async () => {
  agent?.destroy();
  session?.destroy();
  await system?.close();
});

function h2(): http2.ClientHttp2Session {
  if (session === undefined || session.closed || session.destroyed) {
    session = http2.connect(system.gateway.url);
    session.on("error", () => {});
  }
  return session;
}

function send(req: RawRequest): Promise<RawAnswer> {
  const deadline = MAX_TIMEOUT_MS + SLACK_MS;
  return req.protocol === "grpc" ? sendHttp2(h2(), req, deadline) : sendHttp1(system.gateway.url, agent, req, deadline);
}

/** A well-formed call on the same connection, which must be answered at once. */
async function probe(protocol: RawRequest["protocol"]): Promise<string | undefined> {
  const ok: RawRequest = {
    protocol: protocol === "grpc" ? "grpc" : "connect",
    path: "/bazbii.feed.v1.HeatmapService/GetHeatmap",
    headers:
      protocol === "grpc"
        ? { "content-type": "application/grpc", te: "trailers" }
        : { "content-type": "application/json" },
    body: protocol === "grpc" ? Buffer.from([0, 0, 0, 0, 2, 8, 3]) : Buffer.from('{"h3Res":3}'),
  };
  return (await send(ok).catch((err: Error) => ({ code: `no answer: ${err.message}` }))).code;
}

function detail<T extends typeof ErrorInfoSchema | typeof RequestInfoSchema>(answer: RawAnswer, schema: T) {
  const found = answer.details.filter((d) => d.type === schema.typeName);
  return detailOf(
    found.map((d) => ({ type: d.type, value: Buffer.from(d.value).toString("base64") })),
    schema,
  );
}

/** Everything the issue asks of an answer to a caller's bad input. */
function checkAnswer(req: RawRequest, answer: RawAnswer): void {
  const label = summarize(req);
  expect(answer.ms, `${label}: answered after its deadline`).toBeLessThan(MAX_TIMEOUT_MS + SLACK_MS);
  const requestId = answer.headers["x-request-id"];
  expect(requestId, `${label}: no x-request-id`).toMatch(/^[\w.:-]+$/);
  expect(answer.text, `${label}: internals in the answer`).not.toMatch(INTERNALS);
  if (answer.code === undefined) {
    // Not an RPC answer: only for a request that is no RPC of any protocol: a
    // content type no protocol speaks (415, as Connect and gRPC say; 404 on a
    // path that is no method either), a Connect GET of a method with side
    // effects (405), or a URL longer than any server takes (431: Connect
    // clients send large messages by POST).
    expect([404, 405, 415, 431], `${label}: HTTP ${answer.httpStatus} with no RPC status`).toContain(answer.httpStatus);
    return;
  }
  expect(codeFromName(answer.code) !== undefined || answer.code === "ok", `${label}: code ${answer.code}`).toBe(true);
  expect(["internal", "unknown"], `${label}: ${answer.code} "${answer.message}"`).not.toContain(answer.code);
  if (answer.code === "ok") return;
  expect(detail(answer, ErrorInfoSchema)?.domain, `${label}: no ErrorInfo`).toBe("bazbii.dev");
  expect(detail(answer, RequestInfoSchema)?.requestId, `${label}: RequestInfo`).toBe(requestId);
}

describe("generated malformed requests through the real gateway and API server", () => {
  it(
    `${RUNS} of them: canonical codes with ErrorInfo and a request id, never internal, in time, connections usable, nothing internal shown, no crash`,
    async () => {
      const errorLinesBefore = [...system.apiLogs.lines, ...system.gatewayLogs.lines].length;
      await fc.assert(
        fc.asyncProperty(malformedRequest, fc.boolean(), async (generated, signedIn) => {
          const req: RawRequest = signedIn
            ? { ...generated, headers: { ...generated.headers, authorization: `Bearer ${token}` } }
            : generated;
          // The token is a secret of this run's: the report shows the request without it.
          checkAnswer(req, await send(req));
          // The connection the refusal came on is usable (or was closed, and a new one is).
          expect(await probe(req.protocol), `${req.protocol} ${req.path}: the next call on the connection`).toBe("ok");
        }),
        { numRuns: RUNS, ...(SEED === undefined ? {} : { seed: SEED }), endOnFailure: true },
      );
      // A caller's bad input is logged as the caller's error: no error-level line
      // but for deadlines the caller made too short (deadline_exceeded is server-class).
      const errorLines = [...system.apiLogs.lines, ...system.gatewayLogs.lines]
        .slice(errorLinesBefore)
        .filter((l) => l.level === "error" && l.code !== "deadline_exceeded");
      expect(errorLines.slice(0, 3)).toEqual([]);
      for (const url of [system.gateway.url, system.api.url]) expect((await fetch(`${url}/healthz`)).status).toBe(200);
    },
    Math.max(60_000, RUNS * 100),
  );
});
