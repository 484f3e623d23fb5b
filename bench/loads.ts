import { execFile } from "node:child_process";
import { writeFile } from "node:fs/promises";
import { Agent, request } from "node:http";
import { createRequire } from "node:module";
import { setTimeout as sleep } from "node:timers/promises";
import { promisify } from "node:util";

// The load generators. Each returns a Drive: a load that runs for a given
// number of seconds and reports what it measured. A new kind of load is a new
// function returning a Drive.

const run = promisify(execFile);
const autocannon = createRequire(import.meta.url)("autocannon") as (opts: Record<string, unknown>) => Promise<Cannon>;

interface Cannon {
  requests: { average: number; total: number };
  latency: { p50: number; p99: number };
}

/** A load generator's run: requests/s, latency and how many requests were answered. */
export type Drive = (seconds: number) => Promise<{ rps: number; p50Ms: number; p99Ms: number; requests: number }>;

/**
 * Headers a load adds to its calls, made afresh for each round: a direct call
 * to an API server carries a gateway's assertion (good for a minute, longer
 * than any round), for its request id.
 */
export type RoundHeaders = () => Record<string, string>;

const none: RoundHeaders = () => ({});

/** Connect JSON over HTTP/1.1 with autocannon, closed loop: 50 connections, each sending its next call on an answer. */
export function connectJson(
  url: string,
  body: unknown,
  extra: Record<string, unknown> = {},
  roundHeaders: RoundHeaders = none,
): Drive {
  return async (seconds) => {
    const result = await autocannon({
      url,
      method: "POST",
      headers: { "content-type": "application/json", "connect-protocol-version": "1", ...roundHeaders() },
      body: JSON.stringify(body),
      connections: 50,
      duration: seconds,
      ...extra,
    });
    return {
      rps: result.requests.average,
      p50Ms: result.latency.p50,
      p99Ms: result.latency.p99,
      requests: result.requests.total,
    };
  };
}

/**
 * Connect JSON at a fixed rate, open loop: call i is sent at i/rate s whatever
 * the earlier answers do, over keep-alive connections kept from one round to
 * the next, and its latency counts from when it was due, so a stall shows in
 * every call it delays. autocannon's rate limit is not this: each of its
 * connections sends its quota for the second back to back and then waits for
 * the next second (a burst at full speed), and it corrects for coordinated
 * omission with an expected interval of 1 ms whatever the rate, which adds
 * made-up samples to every latency above 1 ms.
 */
export function pacedConnectJson(url: string, body: unknown, rate: number, roundHeaders: RoundHeaders = none): Drive {
  const agent = new Agent({ keepAlive: true, maxSockets: 50 });
  const payload = JSON.stringify(body);
  let headers: Record<string, string | number> = {};
  const call = (): Promise<void> =>
    new Promise((resolve, reject) => {
      const req = request(url, { method: "POST", agent, headers }, (res) => {
        res.resume();
        res.once("end", () =>
          res.statusCode === 200 ? resolve() : reject(new Error(`${url}: HTTP ${res.statusCode}`)),
        );
      });
      req.once("error", reject);
      req.end(payload);
    });
  return async (seconds) => {
    headers = {
      "content-type": "application/json",
      "connect-protocol-version": "1",
      "content-length": Buffer.byteLength(payload),
      ...roundHeaders(),
    };
    const total = Math.round(rate * seconds);
    const latenciesMs: number[] = [];
    const calls: Promise<void>[] = [];
    const start = performance.now();
    while (calls.length < total) {
      const due = Math.min(total, Math.floor(((performance.now() - start) * rate) / 1000) + 1);
      while (calls.length < due) {
        const dueAt = start + (calls.length * 1000) / rate;
        calls.push(call().then(() => void latenciesMs.push(performance.now() - dueAt)));
      }
      await sleep(1);
    }
    await Promise.all(calls);
    const elapsedS = (performance.now() - start) / 1000;
    latenciesMs.sort((a, b) => a - b);
    const quantile = (q: number) =>
      Math.round((latenciesMs[Math.min(total - 1, Math.floor(q * total))] as number) * 100) / 100;
    return { rps: total / elapsedS, p50Ms: quantile(0.5), p99Ms: quantile(0.99), requests: total };
  };
}

/**
 * gRPC over h2c with h2load: 10 connections × 20 streams, each sending the
 * request in `bodyFile` (see writeGrpcBody). h2load reports no percentiles:
 * p50Ms and p99Ms are its mean and maximum latency.
 */
export function grpc(url: string, bodyFile: string, roundHeaders: RoundHeaders = none): Drive {
  return async (seconds) => {
    const extraHeaders = Object.entries(roundHeaders()).flatMap(([k, v]) => ["-H", `${k}: ${v}`]);
    const { stdout } = await run("h2load", [
      ...extraHeaders,
      "-D",
      String(seconds),
      "-c",
      "10",
      "-m",
      "20",
      "-d",
      bodyFile,
      "-H",
      "content-type: application/grpc",
      "-H",
      "te: trailers",
      url,
    ]);
    const rps = Number(/finished in [\d.]+s, ([\d.]+) req\/s/.exec(stdout)?.[1] ?? 0);
    const lat = /time for request:\s+([\d.]+)(us|ms|s)\s+([\d.]+)(us|ms|s)\s+([\d.]+)(us|ms|s)/.exec(stdout);
    const ms = (v?: string, u?: string) => Number(v) * (u === "us" ? 0.001 : u === "s" ? 1000 : 1) || 0;
    const requests = Number(/requests: \d+ total, \d+ started, (\d+) done/.exec(stdout)?.[1] ?? 0);
    return { rps, p50Ms: ms(lat?.[5], lat?.[6]), p99Ms: ms(lat?.[3], lat?.[4]), requests };
  };
}

/** Writes a protobuf message as one gRPC frame (uncompressed, 4-byte length), the body h2load sends. */
export async function writeGrpcBody(path: string, message: Uint8Array): Promise<void> {
  const envelope = Buffer.alloc(5 + message.length);
  envelope.writeUInt32BE(message.length, 1);
  envelope.set(message, 5);
  await writeFile(path, envelope);
}
