import { type Client, ConnectError, createClient } from "@connectrpc/connect";
import { createConnectTransport, createGrpcTransport } from "@connectrpc/connect-node";
import { latLngToCell } from "h3-js";
import { UserPostService } from "../../src/gen/bazbii/post/v1/user_post_service_pb.js";
import { codeTable } from "../../src/shared/code-table.js";

/** A failed call as its caller saw it. */
export interface FailedCall {
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

/**
 * Callers that each repeat Create (with a request_id), Get and Delete of their
 * own post until stopped, half over Connect (HTTP/1.1) and half over gRPC, with
 * no retries of their own: what they see failing, the gateway lost.
 */
export function startLoad(
  baseUrl: string,
  tokens: readonly string[],
): { stop(): Promise<LoadResult>; readonly calls: () => number } {
  let running = true;
  let calls = 0;
  const failures: FailedCall[] = [];
  const created = new Map<string, string>();
  const clients: Client<typeof UserPostService>[] = tokens.map((_, i) =>
    createClient(
      UserPostService,
      i % 2 === 0
        ? createConnectTransport({ baseUrl, httpVersion: "1.1", useBinaryFormat: true })
        : createGrpcTransport({ baseUrl }),
    ),
  );
  const callers = tokens.map(async (token, i) => {
    const client = clients[i] as Client<typeof UserPostService>;
    const options = { headers: { authorization: `Bearer ${token}` }, timeoutMs: 5_000 };
    const call = async <T>(method: string, work: () => Promise<T>): Promise<T | undefined> => {
      calls++;
      try {
        return await work();
      } catch (err) {
        const e = ConnectError.from(err);
        failures.push({ method, code: codeTable[e.code]?.name ?? String(e.code), message: e.rawMessage });
        return undefined;
      }
    };
    while (running) {
      const requestId = crypto.randomUUID();
      const h3Index = latLngToCell(-60 + Math.random() * 120, -170 + Math.random() * 340, 9);
      const post = await call("Create", () => client.create({ h3Index, text: "load", requestId }, options));
      if (post === undefined) continue;
      created.set(requestId, post.id);
      await call("Get", () => client.get({ id: post.id }, options));
      await call("Delete", () => client.delete({ id: post.id }, options));
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
