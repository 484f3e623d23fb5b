import { type ChildProcess, execFile, spawn } from "node:child_process";
import { once } from "node:events";
import { mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { createRequire } from "node:module";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { promisify } from "node:util";
import { create, toBinary } from "@bufbuild/protobuf";
import { GetRequestSchema } from "../gen/bazbii/post/v1/user_post_service_pb.js";

// npm run bench: the gateway hop measured against a direct call and an nginx
// hop, on loopback, every load bounded in time. Prints one table and writes
// bench/results.json. Environment: BENCH_SECONDS (default 5); BENCH_DATABASE_URL
// to give the API server a PostgreSQL server instead of embedded PGlite;
// BENCH_UPSTREAM_PROTOCOL for the gateway's UPSTREAM_PROTOCOL.

const run = promisify(execFile);
const autocannon = createRequire(import.meta.url)("autocannon") as (opts: Record<string, unknown>) => Promise<Cannon>;

interface Cannon {
  requests: { average: number };
  latency: { p50: number; p99: number };
  non2xx: number;
  errors: number;
}

interface Row {
  readonly name: string;
  readonly rps: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
  readonly note?: string;
}

const SECONDS = Number(process.env.BENCH_SECONDS ?? 5);

async function freePort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, "127.0.0.1", r));
  const { port } = s.address() as { port: number };
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

async function waitHealthy(url: string): Promise<void> {
  for (let i = 0; i < 200; i++) {
    if ((await fetch(`${url}/healthz`).catch(() => undefined))?.status === 200) return;
    await sleep(100);
  }
  throw new Error(`${url} did not become healthy`);
}

/**
 * The Node flags `npm start` runs with (package.json's config.node_flags): a
 * small young generation and slow old-generation growth keep the gateway's
 * memory bounded under many connections (bench/README.md).
 */
const nodeFlags: string[] = JSON.parse(await readFile("package.json", "utf8")).config.node_flags.split(" ");

/** Runs a server as `npm start` does, with two malloc arenas like it. */
function start(script: string, env: Record<string, string>): ChildProcess {
  return spawn(process.execPath, [...nodeFlags, `dist/cmd/${script}.js`], {
    env: { PATH: process.env.PATH ?? "", MALLOC_ARENA_MAX: "2", ...env },
    stdio: ["ignore", "ignore", "inherit"],
  });
}

async function rssMb(pid: number): Promise<{ now: number; peak: number }> {
  const status = await readFile(`/proc/${pid}/status`, "utf8");
  const kb = (key: string) => Number(new RegExp(`^${key}:\\s+(\\d+)`, "m").exec(status)?.[1] ?? 0);
  return { now: Math.round(kb("VmRSS") / 1024), peak: Math.round(kb("VmHWM") / 1024) };
}

async function connectJson(
  name: string,
  url: string,
  body: unknown,
  extra: Record<string, unknown> = {},
): Promise<Row> {
  const result = await autocannon({
    url,
    method: "POST",
    headers: { "content-type": "application/json", "connect-protocol-version": "1" },
    body: JSON.stringify(body),
    connections: 50,
    duration: SECONDS,
    ...extra,
  });
  return { name, rps: result.requests.average, p50Ms: result.latency.p50, p99Ms: result.latency.p99 };
}

async function grpc(name: string, url: string, bodyFile: string): Promise<Row> {
  const { stdout } = await run("h2load", [
    "-D",
    String(SECONDS),
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
  return {
    name,
    rps,
    p50Ms: ms(lat?.[5], lat?.[6]),
    p99Ms: ms(lat?.[3], lat?.[4]),
    note: "h2load: mean / max latency",
  };
}

async function main(): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), "bazbii-bench-"));
  const children: ChildProcess[] = [];
  try {
    const [apiPort, gatewayPort, nginxHttpPort, nginxGrpcPort] = await Promise.all([
      freePort(),
      freePort(),
      freePort(),
      freePort(),
    ]);
    const api = `http://127.0.0.1:${apiPort}`;
    const gateway = `http://127.0.0.1:${gatewayPort}`;
    const production = {
      NODE_ENV: "production",
      LOG_LEVEL: "info",
      AUTH_JWT_SECRET: "bench-secret-bench-secret-bench-secret!",
      // The load comes from one address: the benchmark measures the hop, not the rate limiter.
      RATE_LIMIT_READS: "100000000",
      RATE_LIMIT_WRITES: "100000000",
    };
    const database =
      process.env.BENCH_DATABASE_URL === undefined ? {} : { DATABASE_URL: process.env.BENCH_DATABASE_URL };
    children.push(
      start("start-api", { ...production, ...database, API_PORT: String(apiPort), DATA_DIR: join(dir, "data") }),
    );
    await waitHealthy(api);
    const startGateway = (logLevel: string): ChildProcess =>
      start("start-gateway", {
        ...production,
        LOG_LEVEL: logLevel,
        GATEWAY_PORT: String(gatewayPort),
        API_URL: api,
        UPSTREAM_PROTOCOL: process.env.BENCH_UPSTREAM_PROTOCOL ?? "connect",
      });
    let gw = startGateway("info");
    children.push(gw);
    await waitHealthy(gateway);

    // nginx as the reference hop: proxy_pass for HTTP/1.1 Connect, grpc_pass for gRPC (h2c).
    await mkdir(join(dir, "nginx", "logs"), { recursive: true });
    await writeFile(
      join(dir, "nginx", "nginx.conf"),
      `worker_processes 1; error_log stderr error; pid ${join(dir, "nginx", "nginx.pid")};
events { worker_connections 4096; }
http {
  access_log off;
  # nginx closes a connection after 1000 requests by default, and h2load does not reconnect.
  keepalive_requests 100000000;
  upstream api_h1 { server 127.0.0.1:${apiPort}; keepalive 64; }
  upstream api_h2 { server 127.0.0.1:${apiPort}; keepalive 64; }
  server { listen 127.0.0.1:${nginxHttpPort}; location / { proxy_pass http://api_h1; proxy_http_version 1.1; proxy_set_header Connection ""; } }
  server { listen 127.0.0.1:${nginxGrpcPort} http2; location / { grpc_pass grpc://api_h2; } }
}`,
    );
    const nginx = spawn(
      "nginx",
      ["-p", join(dir, "nginx"), "-c", join(dir, "nginx", "nginx.conf"), "-g", "daemon off;"],
      {
        stdio: "inherit",
      },
    );
    children.push(nginx);
    await sleep(500);

    // One existing post to read.
    const created = await fetch(`${api}/bazbii.post.v1.UserPostService/Create`, {
      method: "POST",
      headers: { "content-type": "application/json", "x-bazbii-actor-id": "bench" },
      body: JSON.stringify({ h3Index: "8928308280fffff", text: "bench" }),
    });
    const { id } = (await created.json()) as { id: string };
    const path = "/bazbii.post.v1.UserPostService/Get";
    const grpcBody = join(dir, "get.bin");
    const message = toBinary(GetRequestSchema, create(GetRequestSchema, { id }));
    const envelope = Buffer.alloc(5 + message.length);
    envelope.writeUInt32BE(message.length, 1);
    envelope.set(message, 5);
    await writeFile(grpcBody, envelope);

    const rows: Row[] = [];
    const measure = async (row: Promise<Row>) => {
      const r = await row;
      rows.push(r);
      process.stderr.write(`${r.name}: ${r.rps.toFixed(0)} req/s, p50 ${r.p50Ms} ms, p99 ${r.p99Ms} ms\n`);
      return r;
    };
    const directJson = await measure(connectJson("connect-json Get, direct", `${api}${path}`, { id }));
    const gatewayJson = await measure(connectJson("connect-json Get, gateway", `${gateway}${path}`, { id }));
    const nginxJson = await measure(
      connectJson("connect-json Get, nginx", `http://127.0.0.1:${nginxHttpPort}${path}`, { id }),
    );
    const directGrpc = await measure(grpc("grpc Get, direct", `${api}${path}`, grpcBody));
    const gatewayGrpc = await measure(grpc("grpc Get, gateway", `${gateway}${path}`, grpcBody));
    const nginxGrpc = await measure(grpc("grpc Get, nginx", `http://127.0.0.1:${nginxGrpcPort}${path}`, grpcBody));
    const notFound = await measure(
      connectJson("connect-json Get not_found, gateway", `${gateway}${path}`, { id: "missing" }),
    );
    // The API server's own error path, for scale: the gateway cannot be cheaper than it.
    const notFoundDirect = await measure(
      connectJson("connect-json Get not_found, direct", `${api}${path}`, { id: "missing" }),
    );
    const rejected = await measure(
      connectJson("connect-json GetHeatmap h3_res 16, gateway", `${gateway}/bazbii.feed.v1.HeatmapService/GetHeatmap`, {
        h3Res: 16,
      }),
    );
    const rate = Math.max(100, Math.round(directJson.rps * 0.3));
    const directAtRate = await measure(
      connectJson(
        `connect-json Get at ${rate}/s, direct`,
        `${api}${path}`,
        { id },
        { overallRate: rate, connections: 10 },
      ),
    );
    const gatewayAtRate = await measure(
      connectJson(
        `connect-json Get at ${rate}/s, gateway`,
        `${gateway}${path}`,
        { id },
        { overallRate: rate, connections: 10 },
      ),
    );
    await measure(
      connectJson("connect-json Get, gateway, 500 connections", `${gateway}${path}`, { id }, { connections: 500 }),
    );
    const rss = await rssMb(gw.pid as number);

    gw.kill("SIGTERM");
    await once(gw, "exit");
    gw = startGateway("silent");
    children.push(gw);
    await waitHealthy(gateway);
    const silent = await measure(
      connectJson("connect-json Get not_found, gateway, logging off", `${gateway}${path}`, { id: "missing" }),
    );

    const ratios = {
      gatewayOverDirectConnectJson: gatewayJson.rps / directJson.rps,
      gatewayOverDirectGrpc: gatewayGrpc.rps / directGrpc.rps,
      gatewayOverNginxConnectJson: gatewayJson.rps / nginxJson.rps,
      gatewayOverNginxGrpc: gatewayGrpc.rps / nginxGrpc.rps,
      nginxOverDirectConnectJson: nginxJson.rps / directJson.rps,
      errorOverSuccessNotFound: notFound.rps / gatewayJson.rps,
      errorOverSuccessDirect: notFoundDirect.rps / directJson.rps,
      errorOverSuccessRejected: rejected.rps / gatewayJson.rps,
      addedP50Ms: gatewayAtRate.p50Ms - directAtRate.p50Ms,
      addedP99Ms: gatewayAtRate.p99Ms - directAtRate.p99Ms,
      gatewayRssMbAt500Connections: rss.peak,
      infoLoggingCost: 1 - notFound.rps / silent.rps,
    };
    const width = Math.max(...rows.map((r) => r.name.length));
    const lines = [
      `${"load".padEnd(width)}  req/s     p50 ms  p99 ms`,
      ...rows.map(
        (r) =>
          `${r.name.padEnd(width)}  ${r.rps.toFixed(0).padStart(8)}  ${String(r.p50Ms).padStart(6)}  ${String(r.p99Ms).padStart(6)}`,
      ),
      "",
      ...Object.entries(ratios).map(([k, v]) => `${k.padEnd(32)} ${Number.isInteger(v) ? v : v.toFixed(2)}`),
    ];
    process.stdout.write(`${lines.join("\n")}\n`);
    await mkdir("bench", { recursive: true });
    await writeFile(
      "bench/results.json",
      `${JSON.stringify(
        {
          date: new Date().toISOString(),
          seconds: SECONDS,
          cores: (await import("node:os")).cpus().length,
          database: process.env.BENCH_DATABASE_URL === undefined ? "pglite" : "postgres",
          rows,
          ratios,
        },
        null,
        2,
      )}\n`,
    );
  } finally {
    for (const child of children) child.kill("SIGTERM");
    await rm(dir, { recursive: true, force: true });
  }
}

await main();
