import { type Code, ConnectError, createClient } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";
import * as grpc from "@grpc/grpc-js";
import * as protoLoader from "@grpc/proto-loader";
import { latLngToCell } from "h3-js";
import { UserPostService } from "../../src/gen/bazbii/post/v1/user_post_service_pb.js";
import { codeTable } from "../../src/shared/code-table.js";
import { PROTO_INCLUDE_DIRS } from "./proto-dirs.js";

/** A failed call as its caller saw it. */
export interface FailedCall {
  /** When it failed (Date.now()). */
  readonly at: number;
  readonly method: string;
  readonly code: string;
  readonly message: string;
}

export interface LoadResult {
  readonly calls: number;
  readonly failures: readonly FailedCall[];
  /** Every request_id of a Create the caller saw succeed, with the post's id. */
  readonly created: ReadonlyMap<string, string>;
}

type GrpcPosts = grpc.Client & Record<string, (...args: unknown[]) => grpc.ClientUnaryCall>;

const postsDefinition = protoLoader.loadSync("bazbii/post/v1/user_post_service.proto", {
  includeDirs: PROTO_INCLUDE_DIRS,
  defaults: true,
});
const GrpcUserPostService = (
  grpc.loadPackageDefinition(postsDefinition) as unknown as {
    bazbii: { post: { v1: { UserPostService: grpc.ServiceClientConstructor } } };
  }
).bazbii.post.v1.UserPostService;

/** The three calls a caller makes, over one of two real clients. */
interface PostsCaller {
  create(req: { h3Index: string; text: string; requestId: string }): Promise<{ id: string }>;
  get(req: { id: string }): Promise<unknown>;
  delete(req: { id: string }): Promise<unknown>;
  close(): void;
}

/** connect-es over HTTP/1.1 (Connect binary), without retries: what it sees failing, the gateway lost. */
function connectCaller(baseUrl: string, token: string): PostsCaller {
  const client = createClient(
    UserPostService,
    createConnectTransport({ baseUrl, httpVersion: "1.1", useBinaryFormat: true }),
  );
  const options = { headers: { authorization: `Bearer ${token}` }, timeoutMs: 5_000 };
  return {
    create: (req) => client.create(req, options),
    get: (req) => client.get(req, options),
    delete: (req) => client.delete(req, options),
    close() {},
  };
}

/**
 * grpc-js over one h2c (or TLS) connection, without a service config: it retries
 * nothing but what gRPC retries transparently (a stream refused before it was
 * processed, as a server's GOAWAY can cause), so what it sees failing, the
 * gateway lost. Errors become ConnectErrors with gRPC's code.
 */
function grpcCaller(baseUrl: string, token: string, ca: string | undefined): PostsCaller {
  // Over https, checked against `ca` (grpc-js does not see CAs added to Node's defaults).
  const credentials = baseUrl.startsWith("https:")
    ? grpc.credentials.createSsl(ca === undefined ? null : Buffer.from(ca))
    : grpc.credentials.createInsecure();
  const client = new GrpcUserPostService(new URL(baseUrl).host, credentials) as unknown as GrpcPosts;
  const call = <T>(method: string, req: unknown): Promise<T> =>
    new Promise((resolve, reject) => {
      const metadata = new grpc.Metadata();
      metadata.set("authorization", `Bearer ${token}`);
      client[method]?.(req, metadata, { deadline: Date.now() + 5_000 }, (err: grpc.ServiceError | null, res: T) =>
        err === null ? resolve(res) : reject(new ConnectError(err.details, err.code as number as Code)),
      );
    });
  return {
    create: (req) => call("Create", req),
    get: (req) => call("Get", req),
    delete: (req) => call("Delete", req),
    close: () => client.close(),
  };
}

/**
 * Callers that each repeat Create (with a request_id), Get and Delete of their
 * own post until stopped, half with connect-es over HTTP/1.1 and half with
 * grpc-js over h2c, with no retries of their own: what they see failing, the
 * gateway lost. Over https, `ca` is the CA the gateway's certificate is
 * checked against (connect-es uses Node's defaults, which trustTestCa extends).
 */
export function startLoad(
  baseUrl: string,
  tokens: readonly string[],
  options: { readonly ca?: string } = {},
): { stop(): Promise<LoadResult>; readonly calls: () => number } {
  let running = true;
  let calls = 0;
  const failures: FailedCall[] = [];
  const created = new Map<string, string>();
  const callers = tokens.map(async (token, i) => {
    const client = i % 2 === 0 ? connectCaller(baseUrl, token) : grpcCaller(baseUrl, token, options.ca);
    const call = async <T>(method: string, work: () => Promise<T>): Promise<T | undefined> => {
      calls++;
      try {
        return await work();
      } catch (err) {
        const e = ConnectError.from(err);
        failures.push({
          at: Date.now(),
          method,
          code: codeTable[e.code]?.name ?? String(e.code),
          message: e.rawMessage,
        });
        return undefined;
      }
    };
    try {
      while (running) {
        const requestId = crypto.randomUUID();
        const h3Index = latLngToCell(-60 + Math.random() * 120, -170 + Math.random() * 340, 9);
        const post = await call("Create", () => client.create({ h3Index, text: "load", requestId }));
        if (post === undefined) continue;
        created.set(requestId, post.id);
        await call("Get", () => client.get({ id: post.id }));
        await call("Delete", () => client.delete({ id: post.id }));
      }
    } finally {
      client.close();
    }
  });
  return {
    calls: () => calls,
    async stop() {
      running = false;
      await Promise.all(callers);
      return { calls, failures, created };
    },
  };
}

/** A gauge or counter's value in a Prometheus scrape, by its labels' text. */
export async function metricValue(baseUrl: string, name: string, labels: string): Promise<number | undefined> {
  const text = await (await fetch(`${baseUrl}/metrics`)).text();
  for (const line of text.split("\n")) {
    if (line.startsWith(`${name}{`) && line.includes(labels)) return Number(line.slice(line.lastIndexOf(" ") + 1));
  }
  return undefined;
}

/** Resolves with the milliseconds it took until `check` held, polling every 20 ms; rejects after `withinMs`. */
export async function timeUntil(check: () => Promise<boolean>, withinMs: number): Promise<number> {
  const started = performance.now();
  while (performance.now() - started < withinMs * 3) {
    if (await check()) return performance.now() - started;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  throw new Error(`not within ${withinMs * 3} ms`);
}
