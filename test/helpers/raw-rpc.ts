import * as http from "node:http";
import * as http2 from "node:http2";
import { brotliDecompressSync, gunzipSync } from "node:zlib";
import { fromBinary, type JsonValue } from "@bufbuild/protobuf";
import { StatusSchema } from "../../src/gen/google/rpc/status_pb.js";
import { restDetailBytes } from "./rest-client.js";

/** The wire forms a unary RPC can take; each is sent and read by hand here, bytes and all. */
export type RawProtocol = "connect" | "connect-get" | "grpc" | "grpc-web" | "grpc-web-text" | "rest";

export interface RawRequest {
  readonly protocol: RawProtocol;
  /** The HTTP method, for REST (the RPC protocols POST, Connect GET GETs). */
  readonly verb?: string;
  /** Path, with the query for a Connect GET. */
  readonly path: string;
  readonly headers: Readonly<Record<string, string>>;
  readonly body: Uint8Array;
}

export interface RawDetail {
  readonly type: string;
  readonly value: Uint8Array;
}

/** What an answer said, read the way a client of its protocol reads it. */
export interface RawAnswer {
  readonly httpStatus: number;
  readonly headers: http.IncomingHttpHeaders;
  /** "ok", a code's Connect name, or undefined when the answer carries no RPC status. */
  readonly code: string | undefined;
  readonly message: string;
  readonly details: readonly RawDetail[];
  /** Everything the answer said, headers, body and trailers, as text: to search for what must never be in it. */
  readonly text: string;
  /** From the request's first byte to the answer's last. */
  readonly ms: number;
}

const GRPC_CODES = [
  "ok",
  "canceled",
  "unknown",
  "invalid_argument",
  "deadline_exceeded",
  "not_found",
  "already_exists",
  "permission_denied",
  "resource_exhausted",
  "failed_precondition",
  "aborted",
  "out_of_range",
  "unimplemented",
  "internal",
  "unavailable",
  "data_loss",
  "unauthenticated",
];

/** A gRPC envelope: flags, a 4-byte big-endian length, the message. */
export function envelope(message: Uint8Array, flags = 0, declaredLength = message.length): Buffer {
  const head = Buffer.alloc(5);
  head[0] = flags;
  head.writeUInt32BE(declaredLength >>> 0, 1);
  return Buffer.concat([head, message]);
}

/** Sends one request over HTTP/1.1 on `agent` (keep-alive, so connection reuse is tested). */
export function sendHttp1(baseUrl: string, agent: http.Agent, req: RawRequest, timeoutMs = 15_000): Promise<RawAnswer> {
  const started = performance.now();
  return new Promise((resolve, reject) => {
    const isGet = req.protocol === "connect-get";
    const method = req.verb ?? (isGet ? "GET" : "POST");
    // Node frames a POST's body as chunked by itself, not a DELETE's or a PUT's: a length then.
    const headers =
      req.verb === undefined ? req.headers : { ...req.headers, "content-length": String(req.body.length) };
    const request = http.request(baseUrl + req.path, { method, agent, headers, timeout: timeoutMs }, (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (c: Buffer) => chunks.push(c));
      res.once("error", reject);
      res.once("end", () =>
        resolve(readAnswer(req.protocol, res.statusCode ?? 0, res.headers, Buffer.concat(chunks), {}, started)),
      );
    });
    request.once("timeout", () => request.destroy(new Error(`no answer within ${timeoutMs} ms`)));
    request.once("error", reject);
    request.end(isGet ? undefined : req.body);
  });
}

/** Sends one request as a stream of an h2c session (gRPC needs HTTP/2). */
export function sendHttp2(session: http2.ClientHttp2Session, req: RawRequest, timeoutMs = 15_000): Promise<RawAnswer> {
  const started = performance.now();
  return new Promise((resolve, reject) => {
    const isGet = req.protocol === "connect-get";
    const stream = session.request({ ":method": isGet ? "GET" : "POST", ":path": req.path, ...req.headers });
    let headers: http2.IncomingHttpHeaders = {};
    let trailers: http2.IncomingHttpHeaders = {};
    const chunks: Buffer[] = [];
    const timer = setTimeout(() => stream.close(http2.constants.NGHTTP2_CANCEL), timeoutMs);
    stream.on("response", (h) => {
      headers = h;
    });
    stream.on("trailers", (t) => {
      trailers = t;
    });
    stream.on("data", (c: Buffer) => chunks.push(c));
    stream.once("error", () => {});
    stream.once("close", () => {
      clearTimeout(timer);
      if (headers[":status"] === undefined) {
        reject(new Error(`stream closed without an answer (RST_STREAM ${stream.rstCode})`));
        return;
      }
      resolve(readAnswer(req.protocol, Number(headers[":status"]), headers, Buffer.concat(chunks), trailers, started));
    });
    stream.end(isGet ? undefined : req.body);
  });
}

function readAnswer(
  protocol: RawProtocol,
  httpStatus: number,
  headers: http.IncomingHttpHeaders,
  body: Buffer,
  trailers: http.IncomingHttpHeaders,
  started: number,
): RawAnswer {
  const ms = performance.now() - started;
  const text = [JSON.stringify(headers), body.toString("latin1"), JSON.stringify(trailers)].join("\n");
  const base = { httpStatus, headers, ms, text };
  if (protocol === "rest") {
    if (httpStatus === 200) return { ...base, code: "ok", message: "", details: [] };
    // A path outside the REST routes (a client normalizes /v1/.. to /) is answered as an unknown RPC is.
    return { ...base, ...(body.includes('"error":') ? restErrorStatus(body) : connectError(body)) };
  }
  if (protocol === "connect" || protocol === "connect-get") {
    if (httpStatus === 200) return { ...base, code: "ok", message: "", details: [] };
    return { ...base, ...connectError(decompress(body, headers["content-encoding"])) };
  }
  if (protocol === "grpc") {
    const status = headers["grpc-status"] !== undefined ? headers : trailers;
    return { ...base, ...grpcStatus(status) };
  }
  if (httpStatus !== 200) return { ...base, code: undefined, message: "", details: [] };
  if (headers["grpc-status"] !== undefined) return { ...base, ...grpcStatus(headers) };
  const frames = protocol === "grpc-web-text" ? Buffer.from(body.toString("latin1"), "base64") : body;
  const trailer = grpcWebTrailer(frames, headers["grpc-encoding"]);
  return { ...base, text: `${text}\n${frames.toString("latin1")}`, ...grpcStatus(trailer ?? {}) };
}

type Status = Pick<RawAnswer, "code" | "message" | "details">;

function connectError(body: Buffer): Status {
  try {
    const json = JSON.parse(body.toString("utf8")) as { code?: unknown; message?: unknown; details?: unknown };
    const details = Array.isArray(json.details)
      ? (json.details as { type: string; value: string }[]).map((d) => ({
          type: d.type,
          value: Buffer.from(d.value, "base64"),
        }))
      : [];
    return {
      code: typeof json.code === "string" ? json.code : undefined,
      message: String(json.message ?? ""),
      details,
    };
  } catch {
    return { code: undefined, message: "", details: [] };
  }
}

/** Google's JSON error format, details back to bytes as the RPC clients read them. */
function restErrorStatus(body: Buffer): Status {
  try {
    const { error } = JSON.parse(body.toString("utf8")) as {
      error: { status: string; message: string; details: Record<string, JsonValue>[] };
    };
    return {
      code: error.status.toLowerCase(),
      message: error.message,
      details: error.details.map((d) => {
        const { type, value } = restDetailBytes(d);
        return { type, value: Buffer.from(value, "base64") };
      }),
    };
  } catch {
    return { code: undefined, message: "", details: [] };
  }
}

function grpcStatus(source: http.IncomingHttpHeaders): Status {
  const status = source["grpc-status"];
  if (typeof status !== "string") return { code: undefined, message: "", details: [] };
  const code = GRPC_CODES[Number(status)] ?? `grpc-status ${status}`;
  const rawMessage = source["grpc-message"];
  let message = "";
  try {
    message = typeof rawMessage === "string" ? decodeURIComponent(rawMessage) : "";
  } catch {
    message = String(rawMessage);
  }
  const bin = source["grpc-status-details-bin"];
  const details =
    typeof bin === "string"
      ? fromBinary(StatusSchema, Buffer.from(bin, "base64")).details.map((any) => ({
          type: any.typeUrl.slice(any.typeUrl.lastIndexOf("/") + 1),
          value: any.value,
        }))
      : [];
  return { code, message, details };
}

/** A body (or a frame) as its encoding says, as a client of the protocol reads it. */
function decompress(bytes: Buffer, encoding: string | string[] | undefined): Buffer {
  if (encoding === "gzip") return gunzipSync(bytes);
  if (encoding === "br") return brotliDecompressSync(bytes);
  return bytes;
}

/** The trailer frame of a gRPC-Web body, as headers; connect-es compresses it with the messages. */
function grpcWebTrailer(frames: Buffer, encoding: string | string[] | undefined): http.IncomingHttpHeaders | undefined {
  for (let pos = 0; pos + 5 <= frames.length; ) {
    const flags = frames[pos] as number;
    const end = pos + 5 + frames.readUInt32BE(pos + 1);
    if ((flags & 0x80) === 0x80) {
      const out: http.IncomingHttpHeaders = {};
      const data = frames.subarray(pos + 5, end);
      const text = ((flags & 1) === 1 ? decompress(data, encoding) : data).toString("latin1");
      for (const line of text.split("\r\n")) {
        const colon = line.indexOf(":");
        if (colon > 0) out[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim();
      }
      return out;
    }
    pos = end;
  }
  return undefined;
}
