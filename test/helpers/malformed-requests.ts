import { create, type DescMessage, ScalarType, toBinary, toJsonString } from "@bufbuild/protobuf";
import fc from "fast-check";
import { GetHeatmapRequestSchema } from "../../src/gen/bazbii/feed/v1/heatmap_service_pb.js";
import {
  CreateRequestSchema,
  DeleteRequestSchema,
  GetRequestSchema,
} from "../../src/gen/bazbii/post/v1/user_post_service_pb.js";
import { HealthCheckRequestSchema } from "../../src/gen/health/v1/health_pb.js";
import { envelope, type RawProtocol, type RawRequest } from "./raw-rpc.js";

/** A method the gateway serves, or one it does not. */
interface Target {
  readonly path: string;
  readonly schema: DescMessage | undefined;
}

const targets: readonly Target[] = [
  { path: "/bazbii.feed.v1.HeatmapService/GetHeatmap", schema: GetHeatmapRequestSchema },
  { path: "/bazbii.post.v1.UserPostService/Get", schema: GetRequestSchema },
  { path: "/bazbii.post.v1.UserPostService/Create", schema: CreateRequestSchema },
  { path: "/bazbii.post.v1.UserPostService/Delete", schema: DeleteRequestSchema },
  { path: "/grpc.health.v1.Health/Check", schema: HealthCheckRequestSchema },
  { path: "/bazbii.post.v1.UserPostService/Nope", schema: undefined },
  { path: "/no.such.v1.Service/Method", schema: undefined },
];

/** Strings a careless or hostile caller sends: empty, huge, NUL, control characters, lone surrogates, SQL. */
const nastyString = fc.oneof(
  fc.string({ maxLength: 40 }),
  fc.constantFrom("", "\u0000", "a\u0000b", "\ud800", "'; DROP TABLE posts; --", "8928308280fffff", "%00", "😀"),
  fc.string({ unit: "binary", maxLength: 40 }),
  fc.integer({ min: 100, max: 5000 }).map((n) => "x".repeat(n)),
);

/** A message of the method's request type with hostile field values, before any corruption. */
function messageFor(target: Target): fc.Arbitrary<{ binary: Uint8Array; json: string }> {
  const schema = target.schema ?? GetRequestSchema;
  return fc
    .record({ s1: nastyString, s2: nastyString, s3: nastyString, n: fc.integer({ min: -(2 ** 31), max: 2 ** 31 - 1 }) })
    .map(({ s1, s2, s3, n }) => {
      const init: Record<string, unknown> = {};
      for (const field of schema.fields) {
        if (field.fieldKind !== "scalar") continue;
        init[field.localName] = field.scalar === ScalarType.STRING ? [s1, s2, s3][field.number % 3] : n;
      }
      // Strings protobuf-es cannot encode (lone surrogates) still make a message: it writes U+FFFD.
      const message = create(schema, init as never);
      return { binary: toBinary(schema, message), json: toJsonString(schema, message) };
    });
}

/** Nested start groups deeper than any decoder's recursion limit. */
const deepGroups = fc
  .integer({ min: 50, max: 400 })
  .map((n) => Buffer.concat([Buffer.alloc(n, 123), Buffer.alloc(n, 124)]));

/** Ways to spoil an encoded message. */
function corrupt(bytes: Uint8Array): fc.Arbitrary<Uint8Array> {
  return fc.oneof(
    fc.constant(bytes),
    fc.uint8Array({ maxLength: 64 }),
    deepGroups,
    fc.nat({ max: Math.max(0, bytes.length) }).map((n) => bytes.subarray(0, n)),
    fc.uint8Array({ minLength: 1, maxLength: 8 }).map((junk) => Buffer.concat([bytes, junk])),
    fc.tuple(fc.nat({ max: Math.max(0, bytes.length - 1) }), fc.integer({ min: 0, max: 255 })).map(([at, value]) => {
      const copy = Buffer.from(bytes);
      if (copy.length > 0) copy[at] = value;
      return copy;
    }),
  );
}

function corruptJson(json: string): fc.Arbitrary<string> {
  return fc.oneof(
    fc.constant(json),
    fc.string({ maxLength: 60 }),
    fc.constantFrom("{", "[]", "null", '{"h3Res":"x"}', '{"id":{"a":1}}', '{"h3Res":1e400}', '{"unknownField":1}'),
    fc.integer({ min: 1, max: 3000 }).map((n) => `${"[".repeat(n)}${"]".repeat(n)}`),
    fc.nat({ max: json.length }).map((n) => json.slice(0, n)),
  );
}

/** The 5-byte prefix a gRPC or gRPC-Web message travels in, told the truth or lied. */
function framed(message: Uint8Array): fc.Arbitrary<Uint8Array> {
  return fc.oneof(
    { weight: 3, arbitrary: fc.constant(envelope(message)) },
    fc.constantFrom(1, 2, 0x80, 0xff).map((flags) => envelope(message, flags)),
    fc.integer({ min: -4, max: 10_000_000 }).map((delta) => envelope(message, 0, Math.max(0, message.length + delta))),
    fc.constant(Buffer.from(message)), // no envelope at all
    fc.constant(Buffer.concat([envelope(message), envelope(message)])),
    fc.constant(Buffer.alloc(0)),
  );
}

const timeouts: Record<"connect" | "grpc", fc.Arbitrary<string | undefined>> = {
  connect: fc.constantFrom(undefined, "2000", "1", "0", "-5", "abc", "99999999999", "1.5"),
  grpc: fc.constantFrom(undefined, "2S", "1n", "0m", "abc", "999999999S", "5X", "-1m"),
};

const commonHeaders = fc.record(
  {
    authorization: fc.constantFrom("Bearer a.b.c", "Basic x", "Bearer ", "bearer e30.e30.", "x".repeat(300)),
    "x-request-id": fc.constantFrom("ok-id-1", "", " spaced ", "x".repeat(500), "\u00e9t\u00e9"),
    "accept-language": fc.constantFrom("ja", "*", "xx-YY;q=0.1, ja;q=0.9", ";;;"),
  },
  { requiredKeys: [] },
);

const contentTypes: Record<Exclude<RawProtocol, "connect-get" | "rest">, readonly string[]> = {
  connect: ["application/proto", "application/json", "application/json; charset=utf-8", "application/proto; charset=x"],
  grpc: ["application/grpc", "application/grpc+proto", "application/grpc+json"],
  "grpc-web": ["application/grpc-web", "application/grpc-web+proto", "application/grpc-web+json"],
  "grpc-web-text": ["application/grpc-web-text", "application/grpc-web-text+proto"],
};

/** A request as a failure report shows it: protocol, path, headers and the body's first bytes in hex. */
export function summarize(req: RawRequest): string {
  const body = Buffer.from(req.body);
  const hex = body.subarray(0, 48).toString("hex") + (body.length > 48 ? `… (${body.length} bytes)` : "");
  return `${req.protocol}${req.verb === undefined ? "" : ` ${req.verb}`} ${req.path} ${JSON.stringify(req.headers)} body=${hex}`;
}

/** As a URL carries a string (a lone surrogate, which no URL can, as U+FFFD). */
function percentEncoded(text: string): string {
  return encodeURIComponent(text.toWellFormed());
}

/**
 * A REST call (google.api.http routes) with hostile path segments, query
 * parameters, verbs and JSON bodies; never the watch route, whose good
 * requests are answered by a stream that lasts.
 */
const restRequest: fc.Arbitrary<RawRequest> = fc
  .record({
    verb: fc.constantFrom("GET", "POST", "DELETE", "PUT", "PATCH"),
    segment: fc.oneof(
      nastyString.map(percentEncoded),
      fc.constantFrom("%zz", "%", "..", "a%2Fb", "%00", "%ED%A0%80", ""),
    ),
    value: nastyString.map(percentEncoded),
    key: fc.constantFrom("h3_res", "h3Res", "within", "id", "colour", "h3_res[]", ""),
    path: fc.constantFrom(
      "/v1/posts/{}",
      "/v1/posts",
      "/v1/heatmap?{k}={v}",
      "/v1/heatmap?h3_res={v}&within={v}",
      "/v1/{}",
      "/v1/posts/{}/x",
    ),
    body: corruptJson('{"h3Index":"8928308280fffff","text":"t","requestId":"r"}'),
    headers: commonHeaders,
  })
  .map(({ verb, segment, value, key, path, body, headers }) => ({
    protocol: "rest" as const,
    verb,
    path: path.replace("{}", segment).replaceAll("{v}", value).replace("{k}", encodeURIComponent(key)),
    headers: { ...headers, "content-type": "application/json" },
    body: Buffer.from(body),
  }));

/** A generated request of one protocol, to one method, malformed in one or more ways. */
export const malformedRequest: fc.Arbitrary<RawRequest> = fc.oneof(
  { weight: 6, arbitrary: rpcRequest() },
  { weight: 1, arbitrary: restRequest },
);

function rpcRequest(): fc.Arbitrary<RawRequest> {
  return fc
    .record({
      protocol: fc.constantFrom<Exclude<RawProtocol, "rest">>(
        "connect",
        "connect-get",
        "grpc",
        "grpc-web",
        "grpc-web-text",
      ),
      target: fc.constantFrom(...targets),
      headers: commonHeaders,
      pick: fc.nat(),
    })
    .chain(({ protocol, target, headers, pick }) =>
      messageFor(target).chain(({ binary, json }) => {
        if (protocol === "connect-get") return connectGet(target, binary, json, headers);
        const contentType = contentTypes[protocol][pick % contentTypes[protocol].length] as string;
        const isJson = contentType.includes("json");
        const message = isJson ? corruptJson(json).map((t) => Buffer.from(t)) : corrupt(binary);
        const body =
          protocol === "connect"
            ? message
            : message
                .chain(framed)
                .map((b) => (protocol === "grpc-web-text" ? Buffer.from(Buffer.from(b).toString("base64")) : b));
        const timeout = protocol === "connect" ? timeouts.connect : timeouts.grpc;
        const encoding = fc.constantFrom(undefined, "gzip", "identity", "br", "zzz");
        return fc.record({ body, timeout, encoding }).map(
          ({ body: bytes, timeout: t, encoding: e }): RawRequest => ({
            protocol,
            path: target.path,
            headers: {
              ...headers,
              "content-type": contentType,
              ...(protocol === "connect" && t !== undefined ? { "connect-timeout-ms": t } : {}),
              ...(protocol !== "connect" && t !== undefined ? { "grpc-timeout": t } : {}),
              ...(protocol === "connect" && e !== undefined ? { "content-encoding": e } : {}),
              ...(protocol !== "connect" && e !== undefined ? { "grpc-encoding": e } : {}),
              ...(protocol === "grpc" ? { te: "trailers" } : {}),
            },
            body: bytes,
          }),
        );
      }),
    )
    .map((req) => Object.assign(req, { [fc.toStringMethod]: () => summarize(req) }));
}

/** A Connect GET (for methods without side effects; others must refuse it) with hostile query parameters. */
function connectGet(
  target: Target,
  binary: Uint8Array,
  json: string,
  headers: Record<string, string>,
): fc.Arbitrary<RawRequest> {
  const message = fc.oneof(
    fc.constant(Buffer.from(binary).toString("base64url")),
    fc.constantFrom("!!!", "====", "a", "%%%", ""),
    fc.string({ maxLength: 30 }),
    corruptJson(json),
  );
  return fc
    .record({
      message,
      encoding: fc.constantFrom("proto", "json", "xml", ""),
      base64: fc.constantFrom("1", "0", "", "yes"),
      connect: fc.constantFrom("v1", "v1", "v2"),
      compression: fc.constantFrom(undefined, "gzip", "zzz"),
    })
    .map(({ message: m, encoding, base64, connect, compression }) => {
      const query = new URLSearchParams({ connect, encoding, base64, message: m });
      if (compression !== undefined) query.set("compression", compression);
      return {
        protocol: "connect-get" as const,
        path: `${target.path}?${query}`,
        headers,
        body: new Uint8Array(),
      };
    });
}
