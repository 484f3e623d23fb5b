import type { DescMessage, DescMethodUnary, MessageInitShape } from "@bufbuild/protobuf";
import { latLngToCell } from "h3-js";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { openStorage } from "../src/adapters/storage/open-storage.js";
import { storageFailure } from "../src/adapters/storage/storage-failure.js";
import { is } from "../src/domain/errors.js";
import { ErrStorageConflict, ErrStorageUnavailable } from "../src/domain/storage-errors.js";
import { HeatmapService } from "../src/gen/bazbii/feed/v1/heatmap_service_pb.js";
import { UserPostService } from "../src/gen/bazbii/post/v1/user_post_service_pb.js";
import {
  BadRequestSchema,
  ErrorInfoSchema,
  LocalizedMessageSchema,
  RetryInfoSchema,
} from "../src/gen/google/rpc/error_details_pb.js";
import { asGateway } from "./helpers/as-gateway.js";
import { detailOf } from "./helpers/details.js";
import { freshPostgresSchema, TEST_DATABASE_URL } from "./helpers/postgres.js";
import { type System, startApi, startGatewayFor, startSystem } from "./helpers/system.js";
import { TcpProxy } from "./helpers/tcp-proxy.js";
import { callWire, closeGrpcClients, type Outcome } from "./helpers/wire-clients.js";

// Domain errors beyond the seed, through the gateway, each with its
// type-specific details (ERROR-MODEL.md).

let system: System;
let auth: Record<string, string>;
beforeAll(async () => {
  system = await startSystem();
  auth = { authorization: `Bearer ${await system.token("erin")}` };
});
afterAll(async () => {
  closeGrpcClients();
  await system?.close();
});

function call<I extends DescMessage, O extends DescMessage>(
  method: DescMethodUnary<I, O>,
  request: MessageInitShape<I>,
  headers: Record<string, string> = auth,
): Promise<Outcome> {
  return callWire("connect-json", system.gateway.url, method, request, { headers });
}

function failed(outcome: Outcome) {
  if (outcome.ok) throw new Error("expected a failure");
  return outcome;
}

const cell = () => latLngToCell(-10 + Math.random() * 20, Math.random() * 50, 8);

describe("text rules", () => {
  it("empty text → invalid_argument with a BadRequest violation on `text`, in Japanese when asked", async () => {
    const outcome = failed(
      await call(
        UserPostService.method.create,
        { h3Index: cell(), text: "   " },
        { ...auth, "accept-language": "ja-JP" },
      ),
    );
    expect(outcome).toMatchObject({ code: "invalid_argument", httpStatus: 400, message: "text must not be empty" });
    expect(detailOf(outcome.details, BadRequestSchema)?.fieldViolations).toEqual([
      expect.objectContaining({ field: "text", reason: "TEXT_EMPTY", description: "text must not be empty" }),
    ]);
    expect(detailOf(outcome.details, LocalizedMessageSchema)).toMatchObject({
      locale: "ja",
      message: "本文を入力してください",
    });
  });

  it("281 characters → invalid_argument naming the limit and the length, also in ErrorInfo.metadata", async () => {
    const outcome = failed(await call(UserPostService.method.create, { h3Index: cell(), text: "あ".repeat(281) }));
    expect(outcome.message).toBe("text must be at most 280 characters; it has 281");
    expect(detailOf(outcome.details, ErrorInfoSchema)).toMatchObject({
      reason: "TEXT_TOO_LONG",
      metadata: { length: "281", maxLength: "280" },
    });
    expect(failed(await call(UserPostService.method.create, { h3Index: cell(), text: "a\u0000b" }))).toMatchObject({
      code: "invalid_argument",
    });
    const ok = await call(UserPostService.method.create, { h3Index: cell(), text: "😀".repeat(280) });
    expect(ok.ok).toBe(true);
  });
});

describe("deleting", () => {
  it("twice by its author succeeds both times (Delete is IDEMPOTENT), and the post stays gone", async () => {
    const created = await call(UserPostService.method.create, { h3Index: cell(), text: "short-lived" });
    if (!created.ok) throw new Error("create failed");
    const { id } = created.response as { id: string };
    expect((await call(UserPostService.method.delete, { id })).ok).toBe(true);
    expect((await call(UserPostService.method.delete, { id })).ok).toBe(true);
    expect(failed(await call(UserPostService.method.get, { id }))).toMatchObject({ code: "not_found" });
    // Someone else still may not, deleted or not.
    const bob = { authorization: `Bearer ${await system.token("bob")}` };
    expect(failed(await call(UserPostService.method.delete, { id }, bob))).toMatchObject({ code: "permission_denied" });
  });

  it("a reused request_id for a different post → failed_precondition", async () => {
    const requestId = crypto.randomUUID();
    expect((await call(UserPostService.method.create, { h3Index: cell(), text: "first", requestId })).ok).toBe(true);
    const reused = failed(await call(UserPostService.method.create, { h3Index: cell(), text: "second", requestId }));
    expect(reused).toMatchObject({ code: "failed_precondition" });
    expect(detailOf(reused.details, ErrorInfoSchema)?.reason).toBe("REQUEST_ID_REUSED");
  });
});

describe("every violation of a request, in one answer", () => {
  it("a Create with three bad fields → one BadRequest with all three, in field order; the message is the first's", async () => {
    const bad = failed(
      await call(UserPostService.method.create, { h3Index: "nope", text: " ", requestId: "has space" }),
    );
    expect(bad).toMatchObject({ code: "invalid_argument", message: "invalid H3 index" });
    expect(detailOf(bad.details, ErrorInfoSchema)?.reason).toBe("INVALID_H3_INDEX");
    expect(
      detailOf(bad.details, BadRequestSchema)?.fieldViolations.map((v) => ({ field: v.field, reason: v.reason })),
    ).toEqual([
      { field: "h3_index", reason: "INVALID_H3_INDEX" },
      { field: "text", reason: "TEXT_EMPTY" },
      { field: "request_id", reason: "INVALID_REQUEST_ID" },
    ]);
  });

  it("a GetHeatmap with a bad h3_res and a bad area → both, through the gateway as directly", async () => {
    for (const baseUrl of [system.gateway.url, system.api.url]) {
      const bad = failed(
        await callWire(
          "connect-json",
          baseUrl,
          HeatmapService.method.getHeatmap,
          { h3Res: 16, within: "zz" },
          { headers: baseUrl === system.api.url ? asGateway(HeatmapService.method.getHeatmap) : {} },
        ),
      );
      expect(bad.message).toBe("h3_res must be between 0 and 15");
      expect(detailOf(bad.details, BadRequestSchema)?.fieldViolations.map((v) => v.field)).toEqual([
        "h3_res",
        "within",
      ]);
    }
  });
});

describe("text no storage can hold", () => {
  it.each([
    ["Get", UserPostService.method.get],
    ["Delete", UserPostService.method.delete],
  ] as const)("an id with NUL to %s → invalid_argument on `id`, never internal", async (_name, method) => {
    const bad = failed(await call(method as DescMethodUnary<DescMessage, DescMessage>, { id: "a\u0000" }));
    expect(bad).toMatchObject({ code: "invalid_argument", httpStatus: 400 });
    expect(detailOf(bad.details, ErrorInfoSchema)?.reason).toBe("POST_ID_INVALID");
    expect(detailOf(bad.details, BadRequestSchema)?.fieldViolations[0]?.field).toBe("id");
  });

  it("a text with an unpaired surrogate → invalid_argument on `text` (protobuf-es refuses it), never a changed text", async () => {
    const bad = failed(await call(UserPostService.method.create, { h3Index: cell(), text: "a\ud800b" }));
    expect(bad).toMatchObject({ code: "invalid_argument", httpStatus: 400 });
    expect(detailOf(bad.details, BadRequestSchema)?.fieldViolations[0]?.field).toBe("text");
  });
});

describe("storage failures", () => {
  it("a database that becomes unreachable → unavailable with RetryInfo, and service resumes when it is back", async () => {
    const target = new URL(TEST_DATABASE_URL);
    const proxy = await TcpProxy.start({ host: target.hostname, port: Number(target.port || 5432) });
    const schema = await freshPostgresSchema();
    const viaProxy = new URL(schema.url);
    viaProxy.host = `127.0.0.1:${proxy.port}`;
    const storage = await openStorage({
      databaseUrl: viaProxy.toString(),
      dataDir: "unused",
      maxConnections: 2,
      connectTimeoutMs: 1000,
    });
    const { api, cleanup } = await startApi({ wrapStorage: () => storage });
    const { gateway } = await startGatewayFor(api.url);
    try {
      const get = () => callWire("grpc", gateway.url, UserPostService.method.get, { id: "anything" });
      expect(await get()).toMatchObject({ ok: false, code: "not_found" });

      await proxy.cut();
      const down = failed(await get());
      expect(down).toMatchObject({
        code: "unavailable",
        message: "the post store is temporarily unavailable; retry in a moment",
      });
      expect(detailOf(down.details, RetryInfoSchema)?.retryDelay?.seconds).toBe(1n);
      expect(detailOf(down.details, ErrorInfoSchema)?.reason).toBe("STORAGE_UNAVAILABLE");

      await proxy.restore();
      expect(await get()).toMatchObject({ ok: false, code: "not_found" });
    } finally {
      await gateway.close(0);
      await api.close(0);
      await cleanup();
      await proxy.cut();
      await schema.drop();
    }
  });

  it("PostgreSQL's serialization failure and deadlock map to a storage conflict (aborted); other errors stay unmapped", async () => {
    const client = new pg.Client({ connectionString: TEST_DATABASE_URL });
    await client.connect();
    try {
      // Real errors from the real server, not hand-made ones.
      const serialization = await client
        .query("DO $$ BEGIN RAISE EXCEPTION USING ERRCODE = '40001'; END $$")
        .catch((e) => e);
      const deadlock = await client
        .query("DO $$ BEGIN RAISE EXCEPTION USING ERRCODE = '40P01'; END $$")
        .catch((e) => e);
      const syntax = await client.query("SELEC 1").catch((e) => e);
      expect(is(storageFailure(serialization), ErrStorageConflict)).toBe(true);
      expect(is(storageFailure(deadlock), ErrStorageConflict)).toBe(true);
      expect(storageFailure(syntax)).toBe(syntax);
      expect(
        is(
          storageFailure(Object.assign(new Error("connect ECONNREFUSED"), { code: "ECONNREFUSED" })),
          ErrStorageUnavailable,
        ),
      ).toBe(true);
    } finally {
      await client.end();
    }
  });
});
