import * as tls from "node:tls";
import {
  create,
  type DescMessage,
  type DescMethodUnary,
  fromBinary,
  type MessageInitShape,
  toJson,
} from "@bufbuild/protobuf";
import { base64Decode } from "@bufbuild/protobuf/wire";
import { type Code, ConnectError } from "@connectrpc/connect";
import { createConnectTransport, createGrpcWebTransport } from "@connectrpc/connect-web";
import * as grpc from "@grpc/grpc-js";
import * as protoLoader from "@grpc/proto-loader";
import { StatusSchema } from "../../src/gen/google/rpc/status_pb.js";
import { codeTable } from "../../src/shared/code-table.js";
import { PROTO_INCLUDE_DIRS } from "./proto-dirs.js";

export const protocols = ["connect-json", "connect-binary", "grpc", "grpc-web"] as const;
export type Protocol = (typeof protocols)[number];

/** One error detail as it crossed the wire: type name and the exact bytes, base64. */
export interface WireDetail {
  readonly type: string;
  readonly value: string;
}

export type Outcome =
  | { readonly ok: true; readonly response: unknown; readonly requestId: string | null }
  | {
      readonly ok: false;
      readonly code: string;
      readonly message: string;
      /** Connect unary errors only: the HTTP status. */
      readonly httpStatus: number | undefined;
      readonly details: readonly WireDetail[];
      readonly requestId: string | null;
      /** Every response header and trailer, as text: to prove what is not in them. */
      readonly headerText: string;
    };

function headersText(headers: Headers): string {
  return [...headers].map(([k, v]) => `${k}: ${v}`).join("\n");
}

export interface CallOptions {
  readonly headers?: Record<string, string>;
  readonly timeoutMs?: number;
}

/**
 * Calls a unary method over one of the four protocols, each with its own
 * client implementation: plain fetch (Connect JSON), connect-web (Connect
 * binary, gRPC-Web) and grpc-js with proto-loader (gRPC, independent of
 * connect-es). Returns what the wire said, normalized for comparison.
 */
export function callWire<I extends DescMessage, O extends DescMessage>(
  protocol: Protocol,
  baseUrl: string,
  method: DescMethodUnary<I, O>,
  request: MessageInitShape<I>,
  options: CallOptions = {},
): Promise<Outcome> {
  switch (protocol) {
    case "connect-json":
      return callConnectJson(baseUrl, method, request, options);
    case "connect-binary":
    case "grpc-web":
      return callConnectWeb(protocol, baseUrl, method, request, options);
    case "grpc":
      return callGrpcJs(baseUrl, method, request, options);
  }
}

function codeName(code: Code): string {
  return codeTable[code].name;
}

function b64(bytes: Uint8Array): string {
  return Buffer.from(bytes).toString("base64");
}

async function callConnectJson<I extends DescMessage, O extends DescMessage>(
  baseUrl: string,
  method: DescMethodUnary<I, O>,
  request: MessageInitShape<I>,
  options: CallOptions,
): Promise<Outcome> {
  const headers: Record<string, string> = {
    "content-type": "application/json",
    "connect-protocol-version": "1",
    ...options.headers,
  };
  if (options.timeoutMs !== undefined) headers["connect-timeout-ms"] = String(options.timeoutMs);
  const res = await fetch(`${baseUrl}/${method.parent.typeName}/${method.name}`, {
    method: "POST",
    headers,
    body: JSON.stringify(toJson(method.input, create(method.input, request))),
  });
  const requestId = res.headers.get("x-request-id");
  const body = (await res.json()) as Record<string, unknown>;
  if (res.status === 200) return { ok: true, response: body, requestId };
  const details = ((body.details ?? []) as { type: string; value: string }[]).map((d) => ({
    type: d.type,
    value: b64(base64Decode(d.value)),
  }));
  return {
    ok: false,
    code: String(body.code),
    message: String(body.message ?? ""),
    httpStatus: res.status,
    details,
    requestId,
    headerText: headersText(res.headers),
  };
}

async function callConnectWeb<I extends DescMessage, O extends DescMessage>(
  protocol: "connect-binary" | "grpc-web",
  baseUrl: string,
  method: DescMethodUnary<I, O>,
  request: MessageInitShape<I>,
  options: CallOptions,
): Promise<Outcome> {
  let httpStatus: number | undefined;
  const recordingFetch: typeof fetch = async (input, init) => {
    const res = await fetch(input, init);
    httpStatus = res.status;
    return res;
  };
  const transport =
    protocol === "grpc-web"
      ? createGrpcWebTransport({ baseUrl, fetch: recordingFetch })
      : createConnectTransport({ baseUrl, useBinaryFormat: true, fetch: recordingFetch });
  try {
    const response = await transport.unary(method, undefined, options.timeoutMs, options.headers, request);
    return {
      ok: true,
      response: toJson(method.output, response.message),
      requestId: response.header.get("x-request-id"),
    };
  } catch (thrown) {
    const err = ConnectError.from(thrown);
    const responseHeaders = err.metadata;
    return {
      ok: false,
      code: codeName(err.code),
      message: err.rawMessage,
      httpStatus: protocol === "connect-binary" ? httpStatus : undefined,
      details: err.details.map((d) => {
        if ("desc" in d) throw new Error("unexpected outgoing detail on the client side");
        return { type: d.type, value: b64(d.value) };
      }),
      requestId: responseHeaders.get("x-request-id"),
      headerText: headersText(responseHeaders),
    };
  }
}

const grpcPackages = protoLoader.loadSync(
  ["bazbii/feed/v1/heatmap_service.proto", "bazbii/post/v1/user_post_service.proto"],
  {
    includeDirs: PROTO_INCLUDE_DIRS,
    longs: String,
    enums: String,
    defaults: true,
  },
);
const grpcRoot = grpc.loadPackageDefinition(grpcPackages);

/** A test CA https base URLs are checked against, by grpc-js here and by fetch through Node's default CAs. */
let testCa: Buffer | null = null;

/** Trusts a test CA in every client callWire uses, for https base URLs. */
export function trustTestCa(pem: string): void {
  tls.setDefaultCACertificates([...tls.getCACertificates("default"), pem]);
  testCa = Buffer.from(pem);
}

type GrpcServiceClient = grpc.Client & Record<string, (...args: unknown[]) => grpc.ClientUnaryCall>;
const grpcClients = new Map<string, GrpcServiceClient>();

function grpcClient(baseUrl: string, serviceTypeName: string): GrpcServiceClient {
  const key = `${baseUrl} ${serviceTypeName}`;
  let client = grpcClients.get(key);
  if (client === undefined) {
    let ctor: unknown = grpcRoot;
    for (const part of serviceTypeName.split(".")) ctor = (ctor as Record<string, unknown>)[part];
    const Ctor = ctor as grpc.ServiceClientConstructor;
    const credentials = baseUrl.startsWith("https:")
      ? grpc.credentials.createSsl(testCa)
      : grpc.credentials.createInsecure();
    client = new Ctor(new URL(baseUrl).host, credentials) as unknown as GrpcServiceClient;
    grpcClients.set(key, client);
  }
  return client;
}

/** Closes the grpc-js channels opened by callWire. */
export function closeGrpcClients(): void {
  for (const client of grpcClients.values()) client.close();
  grpcClients.clear();
}

function callGrpcJs<I extends DescMessage, O extends DescMessage>(
  baseUrl: string,
  method: DescMethodUnary<I, O>,
  request: MessageInitShape<I>,
  options: CallOptions,
): Promise<Outcome> {
  const client = grpcClient(baseUrl, method.parent.typeName);
  const metadata = new grpc.Metadata();
  for (const [k, v] of Object.entries(options.headers ?? {})) metadata.set(k, v);
  const callOptions: grpc.CallOptions = {};
  if (options.timeoutMs !== undefined) callOptions.deadline = Date.now() + options.timeoutMs;
  return new Promise((resolve) => {
    let headerRequestId: string | null = null;
    const call = client[method.name]?.(
      // proto-loader's objects use the same lowerCamelCase names as protobuf-es init shapes.
      toJson(method.input, create(method.input, request), { alwaysEmitImplicit: true }),
      metadata,
      callOptions,
      (err: grpc.ServiceError | null, response: unknown) => {
        if (err === null) {
          resolve({ ok: true, response, requestId: headerRequestId });
          return;
        }
        const statusBin = err.metadata?.get("grpc-status-details-bin")[0];
        const details =
          statusBin instanceof Buffer
            ? fromBinary(StatusSchema, statusBin).details.map((any) => ({
                type: any.typeUrl.slice(any.typeUrl.lastIndexOf("/") + 1),
                value: b64(any.value),
              }))
            : [];
        const requestId = err.metadata?.get("x-request-id")[0];
        resolve({
          ok: false,
          code: codeName(err.code as number as Code),
          message: err.details,
          httpStatus: undefined,
          details,
          requestId: typeof requestId === "string" ? requestId : headerRequestId,
          headerText: Object.entries(err.metadata?.getMap() ?? {})
            .map(([k, v]) => `${k}: ${typeof v === "string" ? v : Buffer.from(v).toString("latin1")}`)
            .join("\n"),
        });
      },
    );
    call?.on("metadata", (md: grpc.Metadata) => {
      const id = md.get("x-request-id")[0];
      if (typeof id === "string") headerRequestId = id;
    });
  });
}
