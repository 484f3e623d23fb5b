import type { DescMessage, DescMethodUnary, MessageInitShape } from "@bufbuild/protobuf";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { HeatmapService } from "../src/gen/bazbii/feed/v1/heatmap_service_pb.js";
import { UserPostService } from "../src/gen/bazbii/post/v1/user_post_service_pb.js";
import { ErrorInfoSchema, LocalizedMessageSchema, RequestInfoSchema } from "../src/gen/google/rpc/error_details_pb.js";
import { asGateway } from "./helpers/as-gateway.js";
import { detailOf, detailsText } from "./helpers/details.js";
import { type System, startSystem } from "./helpers/system.js";
import { callWire, closeGrpcClients, type Outcome, protocols } from "./helpers/wire-clients.js";

/** A secret-looking cause, as a database driver might report it. */
const SECRET = "postgres://bazbii:hunter2-s3cret@db.internal:5432/posts";
const FAILING_POST_ID = "force-internal-error";
const H3_CELL = "8928308280fffff";

type Who = "nobody" | "alice" | "bob";

interface SeedCase {
  readonly name: string;
  readonly method: DescMethodUnary<DescMessage, DescMessage>;
  readonly request: () => MessageInitShape<DescMessage>;
  readonly caller: Who;
  readonly code: string;
  readonly message: (requestId: string) => string;
  /** LocalizedMessage (en), where it speaks to the user in other words than the status message. */
  readonly localized?: string;
  readonly httpStatus: number;
  readonly reason: string;
  /** Log ID each process writes for one failed call; undefined when the process never sees it. */
  readonly gatewayLogId: string;
  readonly apiLogId: string;
  /** Does the gateway call the API server for this case? */
  readonly reachesApi: boolean;
}

let system: System;
let alicePostId: string;

const cases: SeedCase[] = [
  {
    name: "h3_res 16",
    method: HeatmapService.method.getHeatmap as never,
    request: () => ({ h3Res: 16 }),
    caller: "nobody",
    code: "invalid_argument",
    message: () => "h3_res must be between 0 and 15",
    httpStatus: 400,
    reason: "H3_RES_OUT_OF_RANGE",
    gatewayLogId: "REQ_002",
    apiLogId: "REQ_003",
    reachesApi: false,
  },
  {
    name: "Create with no token",
    method: UserPostService.method.create as never,
    request: () => ({ h3Index: H3_CELL, text: "hello", requestId: crypto.randomUUID() }),
    caller: "nobody",
    code: "unauthenticated",
    message: () => "actor_id not found in context",
    localized: "you are not signed in: sign in and send Authorization: Bearer <token>",
    httpStatus: 401,
    reason: "ACTOR_MISSING",
    gatewayLogId: "REQ_002",
    apiLogId: "REQ_001",
    reachesApi: false,
  },
  {
    name: "Create with a bad H3 index",
    method: UserPostService.method.create as never,
    request: () => ({ h3Index: "not-a-cell", text: "hello", requestId: crypto.randomUUID() }),
    caller: "alice",
    code: "invalid_argument",
    message: () => "invalid H3 index",
    httpStatus: 400,
    reason: "INVALID_H3_INDEX",
    gatewayLogId: "REQ_012",
    apiLogId: "EVT_POST_003",
    reachesApi: true,
  },
  {
    name: "Get of an unknown id",
    method: UserPostService.method.get as never,
    request: () => ({ id: "no-such-post" }),
    caller: "nobody",
    code: "not_found",
    message: () => "post not found: no-such-post",
    httpStatus: 404,
    reason: "POST_NOT_FOUND",
    gatewayLogId: "REQ_012",
    apiLogId: "REQ_003",
    reachesApi: true,
  },
  {
    name: "Delete of someone else's post",
    method: UserPostService.method.delete as never,
    request: () => ({ id: alicePostId }),
    caller: "bob",
    code: "permission_denied",
    message: () => `only the author of post ${alicePostId} can delete it`,
    httpStatus: 403,
    reason: "NOT_POST_AUTHOR",
    gatewayLogId: "REQ_012",
    apiLogId: "REQ_003",
    reachesApi: true,
  },
  {
    name: "a call with no actor (Delete)",
    method: UserPostService.method.delete as never,
    request: () => ({ id: alicePostId }),
    caller: "nobody",
    code: "unauthenticated",
    message: () => "actor_id not found in context",
    localized: "you are not signed in: sign in and send Authorization: Bearer <token>",
    httpStatus: 401,
    reason: "ACTOR_MISSING",
    gatewayLogId: "REQ_002",
    apiLogId: "REQ_001",
    reachesApi: false,
  },
  {
    name: "a forced internal error",
    method: UserPostService.method.get as never,
    request: () => ({ id: FAILING_POST_ID }),
    caller: "nobody",
    code: "internal",
    message: (requestId) => `the server could not process the request; quote request id ${requestId} to support`,
    httpStatus: 500,
    reason: "INTERNAL",
    gatewayLogId: "REQ_012",
    apiLogId: "REQ_003",
    reachesApi: true,
  },
];

beforeAll(async () => {
  system = await startSystem({
    // The storage fails for one id the way a broken driver would: an unmapped
    // error whose text holds a connection string.
    wrapStorage: (storage) => ({
      ...storage,
      posts: {
        ...storage.posts,
        findById: (id) =>
          id === FAILING_POST_ID
            ? Promise.reject(new Error(`connect ECONNABORTED while talking to ${SECRET}`))
            : storage.posts.findById(id),
      },
    }),
  });
  const created = await callWire(
    "connect-json",
    system.gateway.url,
    UserPostService.method.create,
    {
      h3Index: H3_CELL,
      text: "alice's post",
      requestId: crypto.randomUUID(),
    },
    { headers: { authorization: `Bearer ${await system.token("alice")}` } },
  );
  if (!created.ok) throw new Error(`setup failed: ${JSON.stringify(created)}`);
  alicePostId = (created.response as { id: string }).id;
});

afterAll(async () => {
  closeGrpcClients();
  await system?.close();
});

async function headersFor(
  method: DescMethodUnary<DescMessage, DescMessage>,
  who: Who,
  via: "gateway" | "api",
  requestId: string,
): Promise<Record<string, string>> {
  // Directly, what the gateway sends after verifying a token: its assertion for the actor.
  if (via === "api") return asGateway(method, who === "nobody" ? undefined : who, requestId);
  const headers: Record<string, string> = { "x-request-id": requestId };
  if (who !== "nobody") headers.authorization = `Bearer ${await system.token(who)}`;
  return headers;
}

describe.each(cases)("seed case: $name", (c) => {
  const requestId = `seed-${crypto.randomUUID()}`;
  const outcomes: { label: string; outcome: Outcome }[] = [];

  beforeAll(async () => {
    for (const via of ["gateway", "api"] as const) {
      const baseUrl = via === "gateway" ? system.gateway.url : system.api.url;
      for (const protocol of protocols) {
        const outcome = await callWire(protocol, baseUrl, c.method, c.request(), {
          headers: await headersFor(c.method, c.caller, via, requestId),
        });
        outcomes.push({ label: `${protocol} via ${via}`, outcome });
      }
    }
  });

  it("fails with the expected code, message and HTTP status on all four protocols, via the gateway and direct", () => {
    for (const { label, outcome } of outcomes) {
      expect(outcome.ok, label).toBe(false);
      if (outcome.ok) continue;
      expect({ label, code: outcome.code, message: outcome.message }).toEqual({
        label,
        code: c.code,
        message: c.message(requestId),
      });
      if (label.startsWith("connect-")) expect(outcome.httpStatus, label).toBe(c.httpStatus);
      expect(outcome.requestId, label).toBe(requestId);
    }
  });

  it("carries byte-identical details everywhere: ErrorInfo, RequestInfo and LocalizedMessage at least", () => {
    const failures = outcomes.map(({ label, outcome }) => {
      if (outcome.ok) throw new Error(`${label} succeeded`);
      return { label, details: outcome.details };
    });
    const reference = failures[0]?.details ?? [];
    for (const { label, details } of failures) expect(details, label).toEqual(reference);
    expect(detailOf(reference, ErrorInfoSchema)).toMatchObject({ reason: c.reason, domain: "bazbii.dev" });
    expect(detailOf(reference, RequestInfoSchema)?.requestId).toBe(requestId);
    expect(detailOf(reference, LocalizedMessageSchema)).toMatchObject({
      locale: "en",
      message: c.localized ?? c.message(requestId),
    });
  });

  it("logs each failure once per process, under the expected log ID, with the request id", () => {
    const gatewayLines = system.gatewayLogs.forRequest(requestId);
    expect(gatewayLines.map((l) => l.log_id)).toEqual(protocols.map(() => c.gatewayLogId));
    const apiCalls = protocols.length * (c.reachesApi ? 2 : 1);
    expect(system.apiLogs.forRequest(requestId).map((l) => l.log_id)).toEqual(
      Array.from({ length: apiCalls }, () => c.apiLogId),
    );
    const level = c.code === "internal" ? "error" : "warn";
    for (const line of [...gatewayLines, ...system.apiLogs.forRequest(requestId)]) expect(line.level).toBe(level);
  });
});

describe("the forced internal error", () => {
  it("never shows its cause to any caller, and logs it with the request id", async () => {
    const requestId = `internal-${crypto.randomUUID()}`;
    for (const baseUrl of [system.gateway.url, system.api.url]) {
      for (const protocol of protocols) {
        const outcome = await callWire(
          protocol,
          baseUrl,
          UserPostService.method.get,
          { id: FAILING_POST_ID },
          {
            headers:
              baseUrl === system.api.url
                ? asGateway(UserPostService.method.get, undefined, requestId)
                : { "x-request-id": requestId },
          },
        );
        if (outcome.ok) throw new Error("expected a failure");
        const shown = [outcome.message, detailsText(outcome.details), outcome.headerText].join("\n");
        expect(shown).not.toContain("hunter2");
        expect(shown).not.toContain("db.internal");
      }
    }
    const logged = system.apiLogs.forRequest(requestId).map((l) => JSON.stringify(l));
    expect(logged).toHaveLength(protocols.length * 2);
    for (const line of logged) expect(line).toContain(SECRET);
  });
});
