import { create, createFileRegistry, fromBinary } from "@bufbuild/protobuf";
import { FileDescriptorProtoSchema, FileDescriptorSetSchema } from "@bufbuild/protobuf/wkt";
import { Code, ConnectError, createClient } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";
import * as grpc from "@grpc/grpc-js";
import * as protoLoader from "@grpc/proto-loader";
import { Validator } from "@seriousme/openapi-schema-validator";
import { cellToParent, latLngToCell } from "h3-js";
import { type Browser, chromium } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { HeatmapService } from "../src/gen/bazbii/feed/v1/heatmap_service_pb.js";
import { UserPostService } from "../src/gen/bazbii/post/v1/user_post_service_pb.js";
import { callRest, checkAgainstOpenApi, openApiDocument } from "./helpers/rest-client.js";
import { type System, startSystem } from "./helpers/system.js";
import { callWire, closeGrpcClients } from "./helpers/wire-clients.js";

let s: System;
let alice: string;
let bob: string;

beforeAll(async () => {
  s = await startSystem({ api: { faultInjection: true }, gateway: { faultInjection: true } });
  alice = await s.token("alice");
  bob = await s.token("bob");
});
afterAll(async () => {
  closeGrpcClients();
  await s?.close();
});

const bearer = (token: string) => ({ authorization: `Bearer ${token}` });

describe("REST/JSON routes (google.api.http)", () => {
  it("serve every method as Connect JSON does: Create, Get, GetHeatmap, Delete", async () => {
    const h3Index = latLngToCell(48.85, 2.35, 9);
    const created = await callRest(
      s.gateway.url,
      UserPostService.method.create,
      { h3Index, text: "bonjour", requestId: crypto.randomUUID() },
      { headers: bearer(alice) },
    );
    expect(created).toMatchObject({ ok: true, response: { id: expect.any(String) } });
    const id = (created as { response: { id: string } }).response.id;
    const viaRest = await callRest(s.gateway.url, UserPostService.method.get, { id });
    const viaConnect = await callWire("connect-json", s.gateway.url, UserPostService.method.get, { id });
    expect(viaRest.ok && viaRest.response).toEqual(viaConnect.ok && viaConnect.response);
    const heatmapRest = await callRest(s.gateway.url, HeatmapService.method.getHeatmap, { h3Res: 5 });
    const heatmapConnect = await callWire("connect-json", s.gateway.url, HeatmapService.method.getHeatmap, {
      h3Res: 5,
    });
    expect(heatmapRest.ok && heatmapRest.response).toEqual(heatmapConnect.ok && heatmapConnect.response);
    expect(JSON.stringify(heatmapRest)).toContain(cellToParent(h3Index, 5));
    expect(
      await callRest(s.gateway.url, UserPostService.method.delete, { id }, { headers: bearer(alice) }),
    ).toMatchObject({
      ok: true,
      response: {},
    });
  });

  it.each([
    ["an unknown post (not_found)", UserPostService.method.get, { id: "nope" }, {}],
    ["h3_res 16, which the gateway refuses (invalid_argument)", HeatmapService.method.getHeatmap, { h3Res: 16 }, {}],
    [
      "an area that is no cell (invalid_argument from the API server)",
      HeatmapService.method.getHeatmap,
      { h3Res: 3, within: "x" },
      {},
    ],
    [
      "a post with every field wrong (invalid_argument, three violations)",
      UserPostService.method.create,
      { h3Index: "x", text: "", requestId: "\u0000" },
      "alice",
    ],
    ["Delete without a token (unauthenticated)", UserPostService.method.delete, { id: "x" }, {}],
    [
      "an injected unavailable, with RetryInfo and Retry-After",
      UserPostService.method.get,
      { id: "x" },
      { "x-bazbii-fault-abort": "unavailable", "x-bazbii-fault-retry-delay-ms": "1500" },
    ],
  ] as const)(
    "answer %s with the code, message, HTTP status and details of Connect JSON",
    async (_, method, request, extra) => {
      const requestId = `rest-${crypto.randomUUID()}`;
      const headers = { "x-request-id": requestId, ...(extra === "alice" ? bearer(alice) : extra) };
      const rest = await callRest(s.gateway.url, method as never, request as never, { headers });
      const connect = await callWire("connect-json", s.gateway.url, method as never, request as never, { headers });
      expect(rest.ok).toBe(false);
      const pick = (o: typeof rest) =>
        o.ok
          ? o
          : { code: o.code, message: o.message, httpStatus: o.httpStatus, details: o.details, requestId: o.requestId };
      expect(pick(rest)).toEqual(pick(connect));
      if (!rest.ok && rest.code === "unavailable") expect(rest.headerText).toMatch(/^retry-after: 2$/m);
    },
  );

  it("answers Delete of someone else's post with permission_denied, as Connect JSON does", async () => {
    const created = await callRest(
      s.gateway.url,
      UserPostService.method.create,
      { h3Index: latLngToCell(1, 1, 9), text: "mine" },
      { headers: bearer(alice) },
    );
    const id = (created as { response: { id: string } }).response.id;
    const requestId = `rest-${crypto.randomUUID()}`;
    const headers = { ...bearer(bob), "x-request-id": requestId };
    const rest = await callRest(s.gateway.url, UserPostService.method.delete, { id }, { headers });
    const connect = await callWire("connect-json", s.gateway.url, UserPostService.method.delete, { id }, { headers });
    expect(rest).toMatchObject({ ok: false, code: "permission_denied", httpStatus: 403 });
    expect(!rest.ok && rest.details).toEqual(!connect.ok && connect.details);
  });

  it.each([
    ["a body that is not JSON", "POST", "/v1/posts", "{nope", 400, "INVALID_ARGUMENT", "PROTOCOL_ERROR"],
    ["a body field of the wrong type", "POST", "/v1/posts", '{"text": 5}', 400, "INVALID_ARGUMENT", "PROTOCOL_ERROR"],
    [
      "a query parameter that names no field",
      "GET",
      "/v1/heatmap?h3_res=3&colour=red",
      undefined,
      400,
      "INVALID_ARGUMENT",
      "PROTOCOL_ERROR",
    ],
    [
      "a number that is not one",
      "GET",
      "/v1/heatmap?h3_res=three",
      undefined,
      400,
      "INVALID_ARGUMENT",
      "PROTOCOL_ERROR",
    ],
    ["a path no route has", "GET", "/v1/nothing/here", undefined, 404, "NOT_FOUND", "REST_ROUTE_NOT_FOUND"],
    ["a verb the route does not take", "PUT", "/v1/posts/abc", "{}", 404, "NOT_FOUND", "REST_ROUTE_NOT_FOUND"],
  ] as const)("answers %s with a clear error in the same format", async (_, verb, path, body, status, code, reason) => {
    const res = await fetch(`${s.gateway.url}${path}`, {
      method: verb,
      headers: { ...bearer(alice), "content-type": "application/json" },
      ...(body === undefined ? {} : { body }),
    });
    const answer = (await res.json()) as { error: { status: string; details: { "@type": string; reason?: string }[] } };
    expect({ status: res.status, code: answer.error.status }).toEqual({ status, code });
    expect(answer.error.details.find((d) => d["@type"].endsWith("ErrorInfo"))?.reason).toBe(reason);
    expect(res.headers.get("x-request-id")).toBeTruthy();
    checkAgainstOpenApi("GET", "/v1/heatmap", status, answer); // the same RestError schema everywhere
  });
});

/** Reads server-sent events until `until` says stop or the stream ends. */
async function readEvents(
  res: Response,
  until: (events: { event: string; data: unknown }[]) => boolean,
): Promise<{ event: string; data: unknown }[]> {
  const events: { event: string; data: unknown }[] = [];
  const decoder = new TextDecoder();
  let buffered = "";
  for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
    buffered += decoder.decode(chunk, { stream: true });
    let end = buffered.indexOf("\n\n");
    while (end !== -1) {
      const block = buffered.slice(0, end);
      buffered = buffered.slice(end + 2);
      const event = /^event: (.*)$/m.exec(block)?.[1] ?? "message";
      const data = /^data: (.*)$/m.exec(block)?.[1];
      if (data !== undefined) events.push({ event, data: JSON.parse(data) });
      end = buffered.indexOf("\n\n");
    }
    if (until(events)) break;
  }
  return events;
}

describe("GET /v1/heatmap:watch (server-sent events)", () => {
  it("sends the snapshot, then each change, each event as OpenAPI says", async () => {
    const stop = new AbortController();
    const res = await fetch(`${s.gateway.url}/v1/heatmap:watch?h3_res=4`, { signal: stop.signal });
    expect(res.headers.get("content-type")).toBe("text/event-stream");
    const h3Index = latLngToCell(-33.9, 18.4, 9);
    const cell = cellToParent(h3Index, 4);
    let created = false;
    const events = await readEvents(res, (seen) => {
      if (!created && seen.length === 1) {
        created = true;
        void callRest(
          s.gateway.url,
          UserPostService.method.create,
          { h3Index, text: "sse" },
          { headers: bearer(alice) },
        );
      }
      return seen.some((e) => JSON.stringify(e.data).includes(cell));
    });
    stop.abort();
    expect(events[0]?.data).toMatchObject({ snapshot: true });
    for (const e of events) checkAgainstOpenApi("GET", "/v1/heatmap:watch", 200, e.data);
    expect(events.at(-1)?.data).toEqual({ cells: [{ h3Index: cell, postCount: 1 }] });
  });

  it("answers a bad request before any event with an ordinary error, and an error after the first as an error event", async () => {
    const early = await fetch(`${s.gateway.url}/v1/heatmap:watch?h3_res=16`);
    expect(early.status).toBe(400);
    checkAgainstOpenApi("GET", "/v1/heatmap:watch", 400, await early.json());
    const late = await fetch(`${s.gateway.url}/v1/heatmap:watch?h3_res=2`, {
      headers: { "x-bazbii-fault-abort": "unavailable", "x-bazbii-fault-abort-after-messages": "1" },
    });
    const events = await readEvents(late, () => false);
    expect(events.map((e) => e.event)).toEqual(["message", "error"]);
    const error = events[1]?.data as { error: { status: string; details: { "@type": string }[] } };
    checkAgainstOpenApi("GET", "/v1/heatmap", 503, error);
    expect(error.error.status).toBe("UNAVAILABLE");
  });
});

describe("/openapi.json and /docs", () => {
  it("serve the generated OpenAPI 3.1 document, which a validator accepts", async () => {
    const served = await (await fetch(`${s.gateway.url}/openapi.json`)).json();
    expect(served).toEqual(openApiDocument);
    const result = await new Validator().validate(served as Parameters<Validator["validate"]>[0]);
    expect(result).toMatchObject({ valid: true });
    expect(Object.keys(openApiDocument.paths).sort()).toEqual([
      "/v1/heatmap",
      "/v1/heatmap:watch",
      "/v1/posts",
      "/v1/posts/{id}",
    ]);
  });

  it("renders the docs page in Chromium, from the npm package only", async () => {
    let browser: Browser | undefined;
    try {
      browser = await chromium.launch({
        executablePath: "/usr/bin/chromium",
        args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"],
      });
      const page = await browser.newPage();
      const outside: string[] = [];
      page.on("request", (r) => {
        if (!r.url().startsWith(s.gateway.url)) outside.push(r.url());
      });
      await page.goto(`${s.gateway.url}/docs`);
      await page.getByText("/v1/posts/{id}").first().waitFor({ timeout: 10_000 });
      expect(await page.getByText("Bazbii API").first().isVisible()).toBe(true);
      expect(outside).toEqual([]);
    } finally {
      await browser?.close();
    }
  });
});

describe("gRPC server reflection", () => {
  const reflectionPackage = protoLoader.loadSync("grpc/reflection/v1/reflection.proto", {
    includeDirs: ["node_modules/@grpc/reflection/build/proto"],
  });
  const Reflection = (
    grpc.loadPackageDefinition(reflectionPackage) as unknown as {
      grpc: { reflection: { v1: { ServerReflection: grpc.ServiceClientConstructor } } };
    }
  ).grpc.reflection.v1.ServerReflection;

  /** One request and its answer on a reflection stream, as grpcurl sends them. */
  function ask(request: Record<string, unknown>): Promise<Record<string, unknown>> {
    const client = new Reflection(new URL(s.gateway.url).host, grpc.credentials.createInsecure());
    return new Promise((resolve, reject) => {
      const call = (
        client as unknown as { ServerReflectionInfo(): grpc.ClientDuplexStream<unknown, unknown> }
      ).ServerReflectionInfo();
      call.on("data", (answer: Record<string, unknown>) => {
        resolve(answer);
        call.end();
        client.close();
      });
      call.on("error", reject);
      call.write(request);
    });
  }

  it("lists the services with grpc-js, fetches their descriptors, and a call built from them succeeds", async () => {
    const listed = (await ask({ listServices: "" })) as { listServicesResponse: { service: { name: string }[] } };
    expect(listed.listServicesResponse.service.map((x) => x.name).sort()).toEqual([
      "bazbii.feed.v1.HeatmapService",
      "bazbii.post.v1.UserPostService",
      "grpc.health.v1.Health",
      "grpc.reflection.v1.ServerReflection",
      "grpc.reflection.v1alpha.ServerReflection",
    ]);
    const found = (await ask({ fileContainingSymbol: "bazbii.post.v1.UserPostService" })) as {
      fileDescriptorResponse: { fileDescriptorProto: Buffer[] };
    };
    // The descriptors alone make a client: no .proto file, no generated code of ours.
    const files = found.fileDescriptorResponse.fileDescriptorProto.map((b) => fromBinary(FileDescriptorProtoSchema, b));
    // A registry is built imports first; the answer has the requested file first.
    const ordered: typeof files = [];
    const add = (name: string): void => {
      const file = files.find((f) => f.name === name);
      if (file === undefined || ordered.includes(file)) return;
      for (const dependency of file.dependency) add(dependency);
      ordered.push(file);
    };
    for (const file of files) add(file.name);
    const set = create(FileDescriptorSetSchema, { file: ordered });
    const registry = createFileRegistry(set);
    const service = registry.getService("bazbii.post.v1.UserPostService");
    if (service === undefined) throw new Error("no UserPostService in the descriptors");
    const client = createClient(
      service,
      createConnectTransport({ baseUrl: s.gateway.url, httpVersion: "2" }),
    ) as unknown as Record<string, (req: unknown) => Promise<unknown>>;
    const err = await (client.get as (req: unknown) => Promise<unknown>)({ id: "from-reflection" }).catch(
      (e: unknown) => e,
    );
    expect(ConnectError.from(err).code).toBe(Code.NotFound);
    const missing = (await ask({ fileContainingSymbol: "no.such.Symbol" })) as { errorResponse: { errorCode: number } };
    expect(missing.errorResponse.errorCode).toBe(Code.NotFound);
  });
});
