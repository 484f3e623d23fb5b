import { fromBinary } from "@bufbuild/protobuf";
import { base64Decode } from "@bufbuild/protobuf/wire";
import { type Code, ConnectError, createClient } from "@connectrpc/connect";
import { createConnectTransport, createGrpcWebTransport } from "@connectrpc/connect-web";
import * as grpc from "@grpc/grpc-js";
import * as protoLoader from "@grpc/proto-loader";
import { HeatmapService } from "../../src/gen/bazbii/feed/v1/heatmap_service_pb.js";
import { StatusSchema } from "../../src/gen/google/rpc/status_pb.js";
import { codeTable } from "../../src/shared/code-table.js";
import { PROTO_INCLUDE_DIRS } from "./proto-dirs.js";
import type { WireDetail } from "./wire-clients.js";

/** The four ways a watcher reaches WatchHeatmap, each with a client of its own. */
export const streamProtocols = ["connect (fetch)", "connect-web", "grpc-js", "grpc-web"] as const;
export type StreamProtocol = (typeof streamProtocols)[number];

export interface WatchMessage {
  readonly snapshot: boolean;
  readonly cells: readonly { readonly h3Index: string; readonly postCount: number }[];
}

/** How a stream ended, as its client saw it. */
export type StreamEnd =
  | { readonly ok: true }
  | { readonly ok: false; readonly code: string; readonly message: string; readonly details: readonly WireDetail[] };

/** A watch in progress: what arrived so far, and how it ended once it has. */
export interface Watch {
  readonly messages: WatchMessage[];
  /** Resolves when the stream ends (never rejects). */
  readonly ended: Promise<StreamEnd>;
  /** Resolves with the first message (from the start) that matches, or rejects after `withinMs`. */
  message(match: (m: WatchMessage) => boolean, withinMs?: number): Promise<WatchMessage>;
  /** Cancels it, as a caller going away does. */
  close(): void;
}

export interface WatchOptions {
  readonly headers?: Record<string, string>;
  readonly timeoutMs?: number;
}

/** Opens WatchHeatmap at `baseUrl` with one of the four clients. */
export function watchHeatmap(
  protocol: StreamProtocol,
  baseUrl: string,
  request: { h3Res: number; within?: string },
  options: WatchOptions = {},
): Watch {
  const messages: WatchMessage[] = [];
  const waiters: { match: (m: WatchMessage) => boolean; resolve: (m: WatchMessage) => void }[] = [];
  const received = (m: WatchMessage): void => {
    messages.push(m);
    for (const w of waiters.splice(0)) w.match(m) ? w.resolve(m) : waiters.push(w);
  };
  const abort = new AbortController();
  const ended = run(protocol, baseUrl, request, options, abort.signal, received);
  return {
    messages,
    ended,
    message(match, withinMs = 2_000) {
      const found = messages.find(match);
      if (found !== undefined) return Promise.resolve(found);
      return new Promise((resolve, reject) => {
        const timer = setTimeout(
          () => reject(new Error(`${protocol}: no such message within ${withinMs} ms: ${JSON.stringify(messages)}`)),
          withinMs,
        );
        waiters.push({
          match,
          resolve: (m) => {
            clearTimeout(timer);
            resolve(m);
          },
        });
      });
    },
    close: () => abort.abort(),
  };
}

function run(
  protocol: StreamProtocol,
  baseUrl: string,
  request: { h3Res: number; within?: string },
  options: WatchOptions,
  signal: AbortSignal,
  received: (m: WatchMessage) => void,
): Promise<StreamEnd> {
  switch (protocol) {
    case "connect (fetch)":
      return watchWithFetch(baseUrl, request, options, signal, received);
    case "connect-web":
    case "grpc-web":
      return watchWithConnectWeb(protocol, baseUrl, request, options, signal, received);
    case "grpc-js":
      return watchWithGrpcJs(baseUrl, request, options, signal, received);
  }
}

function b64(bytes: Uint8Array): string {
  return Buffer.from(bytes).toString("base64");
}

/** The Connect streaming protocol by hand: enveloped JSON both ways, the end in an EndStreamResponse. */
async function watchWithFetch(
  baseUrl: string,
  request: { h3Res: number; within?: string },
  options: WatchOptions,
  signal: AbortSignal,
  received: (m: WatchMessage) => void,
): Promise<StreamEnd> {
  const payload = Buffer.from(JSON.stringify(request));
  const envelope = Buffer.alloc(5 + payload.length);
  envelope.writeUInt32BE(payload.length, 1);
  payload.copy(envelope, 5);
  const headers: Record<string, string> = {
    "content-type": "application/connect+json",
    "connect-protocol-version": "1",
    ...options.headers,
  };
  if (options.timeoutMs !== undefined) headers["connect-timeout-ms"] = String(options.timeoutMs);
  try {
    const res = await fetch(`${baseUrl}/bazbii.feed.v1.HeatmapService/WatchHeatmap`, {
      method: "POST",
      headers,
      body: envelope,
      signal,
    });
    let buffered = Buffer.alloc(0);
    for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
      buffered = Buffer.concat([buffered, chunk]);
      while (buffered.length >= 5 && buffered.length >= 5 + buffered.readUInt32BE(1)) {
        const flags = buffered[0] as number;
        const body = JSON.parse(buffered.subarray(5, 5 + buffered.readUInt32BE(1)).toString("utf8"));
        buffered = buffered.subarray(5 + buffered.readUInt32BE(1));
        if ((flags & 0x02) === 0) {
          received({
            snapshot: body.snapshot === true,
            cells: (body.cells ?? []).map((c: { h3Index: string; postCount?: number }) => ({
              h3Index: c.h3Index,
              postCount: c.postCount ?? 0,
            })),
          });
          continue;
        }
        const error = body.error as { code: string; message?: string; details?: { type: string; value: string }[] };
        if (error === undefined) return { ok: true };
        return {
          ok: false,
          code: error.code,
          message: error.message ?? "",
          details: (error.details ?? []).map((d) => ({ type: d.type, value: b64(base64Decode(d.value)) })),
        };
      }
    }
    return { ok: false, code: "missing end of stream", message: "", details: [] };
  } catch (err) {
    return { ok: false, code: signal.aborted ? "canceled" : String(err), message: "", details: [] };
  }
}

async function watchWithConnectWeb(
  protocol: "connect-web" | "grpc-web",
  baseUrl: string,
  request: { h3Res: number; within?: string },
  options: WatchOptions,
  signal: AbortSignal,
  received: (m: WatchMessage) => void,
): Promise<StreamEnd> {
  const transport = protocol === "grpc-web" ? createGrpcWebTransport({ baseUrl }) : createConnectTransport({ baseUrl });
  const client = createClient(HeatmapService, transport);
  try {
    for await (const m of client.watchHeatmap(request, {
      signal,
      ...(options.headers === undefined ? {} : { headers: options.headers }),
      ...(options.timeoutMs === undefined ? {} : { timeoutMs: options.timeoutMs }),
    })) {
      received({ snapshot: m.snapshot, cells: m.cells.map((c) => ({ h3Index: c.h3Index, postCount: c.postCount })) });
    }
    return { ok: true };
  } catch (thrown) {
    const err = ConnectError.from(thrown);
    return {
      ok: false,
      code: codeTable[err.code].name,
      message: err.rawMessage,
      details: err.details.map((d) => {
        if ("desc" in d) throw new Error("unexpected outgoing detail");
        return { type: d.type, value: b64(d.value) };
      }),
    };
  }
}

const heatmapPackage = protoLoader.loadSync("bazbii/feed/v1/heatmap_service.proto", {
  includeDirs: PROTO_INCLUDE_DIRS,
  defaults: true,
});
const GrpcHeatmapService = (
  grpc.loadPackageDefinition(heatmapPackage) as unknown as {
    bazbii: { feed: { v1: { HeatmapService: grpc.ServiceClientConstructor } } };
  }
).bazbii.feed.v1.HeatmapService;

function watchWithGrpcJs(
  baseUrl: string,
  request: { h3Res: number; within?: string },
  options: WatchOptions,
  signal: AbortSignal,
  received: (m: WatchMessage) => void,
): Promise<StreamEnd> {
  const client = new GrpcHeatmapService(new URL(baseUrl).host, grpc.credentials.createInsecure()) as grpc.Client &
    Record<string, (...args: unknown[]) => grpc.ClientReadableStream<unknown>>;
  const metadata = new grpc.Metadata();
  for (const [k, v] of Object.entries(options.headers ?? {})) metadata.set(k, v);
  const callOptions: grpc.CallOptions =
    options.timeoutMs === undefined ? {} : { deadline: Date.now() + options.timeoutMs };
  const call = client.WatchHeatmap?.({ h3Res: request.h3Res, within: request.within ?? "" }, metadata, callOptions);
  if (call === undefined) throw new Error("no WatchHeatmap in the proto");
  signal.addEventListener("abort", () => call.cancel(), { once: true });
  return new Promise((resolve) => {
    call.on("data", (m: { snapshot: boolean; cells: { h3Index: string; postCount: number }[] }) =>
      received({ snapshot: m.snapshot, cells: m.cells.map((c) => ({ h3Index: c.h3Index, postCount: c.postCount })) }),
    );
    call.on("error", (err: grpc.ServiceError) => {
      client.close();
      const statusBin = err.metadata?.get("grpc-status-details-bin")[0];
      resolve({
        ok: false,
        code: codeTable[err.code as number as Code].name,
        message: err.details,
        details:
          statusBin instanceof Buffer
            ? fromBinary(StatusSchema, statusBin).details.map((any) => ({
                type: any.typeUrl.slice(any.typeUrl.lastIndexOf("/") + 1),
                value: b64(any.value),
              }))
            : [],
      });
    });
    call.on("end", () => {
      client.close();
      resolve({ ok: true });
    });
  });
}
