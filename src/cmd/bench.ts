import { type ChildProcess, execFile, spawn } from "node:child_process";
import { mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { Agent, request } from "node:http";
import { createRequire } from "node:module";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { promisify } from "node:util";
import { create, toBinary } from "@bufbuild/protobuf";
import { GetRequestSchema } from "../gen/bazbii/post/v1/user_post_service_pb.js";

// npm run bench: the gateway hop measured against a direct call and an nginx
// hop, on loopback, every load bounded in time. After a warm-up, every load
// runs in BENCH_ROUNDS rounds (default 5) of BENCH_SECONDS each (default 3;
// BENCH_PACED_SECONDS, default 10, for the loads at a fixed rate, whose p99 needs
// more calls and spans the servers' full garbage collections, seconds apart),
// interleaved, so that what a ratio compares was measured seconds apart; each
// figure is the median over the rounds. Prints one table and writes
// bench/results.json. BENCH_DATABASE_URL gives the API servers a PostgreSQL
// server instead of embedded PGlite; BENCH_UPSTREAM_PROTOCOL sets the
// gateway's UPSTREAM_PROTOCOL.

const run = promisify(execFile);
const autocannon = createRequire(import.meta.url)("autocannon") as (opts: Record<string, unknown>) => Promise<Cannon>;

interface Cannon {
  requests: { average: number; total: number };
  latency: { p50: number; p99: number };
}

/** One load's outcome: throughput, latency and the CPU each of our processes spent per request. */
interface Sample {
  readonly rps: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
  /** CPU time (user + system, all threads) per request, by process name, and the load generator's. */
  readonly cpuUsPerRequest: Record<string, number>;
}

/** A row of the table: the median of a load's samples over the rounds. */
interface Row extends Sample {
  readonly name: string;
  /** Lowest and highest requests/s over the rounds. */
  readonly rpsRange: [number, number];
  readonly note?: string;
}

const SECONDS = Number(process.env.BENCH_SECONDS ?? 3);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 5);
const PACED_SECONDS = Number(process.env.BENCH_PACED_SECONDS ?? 10);
const WARM_UP_SECONDS = 2;

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
 * The Node flags `npm run start:api` and `npm run start:gateway` run with
 * (package.json's config): both keep memory bounded with a small young
 * generation and slow old-generation growth; each keeps V8's garbage collector
 * from taking a core away from the call path in its own way (bench/README.md).
 */
const config = JSON.parse(await readFile("package.json", "utf8")).config;
const nodeFlags: Record<"start-api" | "start-gateway", string[]> = {
  "start-api": config.api_node_flags.split(" "),
  "start-gateway": config.gateway_node_flags.split(" "),
};

/** Runs a server as its npm script does, with two malloc arenas like it. */
function start(script: keyof typeof nodeFlags, env: Record<string, string>): ChildProcess {
  return spawn(process.execPath, [...nodeFlags[script], `dist/cmd/${script}.js`], {
    env: { PATH: process.env.PATH ?? "", MALLOC_ARENA_MAX: "2", ...env },
    stdio: ["ignore", "ignore", "inherit"],
  });
}

async function rssMb(pid: number): Promise<{ now: number; peak: number }> {
  const status = await readFile(`/proc/${pid}/status`, "utf8");
  const kb = (key: string) => Number(new RegExp(`^${key}:\\s+(\\d+)`, "m").exec(status)?.[1] ?? 0);
  return { now: Math.round(kb("VmRSS") / 1024), peak: Math.round(kb("VmHWM") / 1024) };
}

const clockTicksPerSecond = Number((await run("getconf", ["CLK_TCK"])).stdout.trim()) || 100;

/** /proc/<pid>/stat's fields after the command name (which is in parentheses and may hold spaces). */
async function statFields(pid: number | "self"): Promise<string[]> {
  const stat = await readFile(`/proc/${pid}/stat`, "utf8");
  return stat.slice(stat.lastIndexOf(")") + 2).split(" ");
}

/** CPU seconds a process has used so far, all its threads (utime + stime). */
async function cpuSeconds(pid: number): Promise<number> {
  const fields = await statFields(pid);
  return (Number(fields[11]) + Number(fields[12])) / clockTicksPerSecond;
}

/**
 * CPU seconds of the load generators so far: autocannon runs in this process,
 * h2load as a child whose time is added (cutime + cstime) once it has exited.
 * They share the two cores with the servers, so what they spend per request
 * is part of every requests/s figure.
 */
async function loadGeneratorCpuSeconds(): Promise<number> {
  const fields = await statFields("self");
  return fields.slice(11, 15).reduce((sum, ticks) => sum + Number(ticks), 0) / clockTicksPerSecond;
}

const LOAD_GENERATOR = "load generator";

/** A load generator's run: requests/s, latency and how many requests were answered. */
type Drive = (seconds: number) => Promise<{ rps: number; p50Ms: number; p99Ms: number; requests: number }>;

function connectJson(url: string, body: unknown, extra: Record<string, unknown> = {}): Drive {
  return async (seconds) => {
    const result = await autocannon({
      url,
      method: "POST",
      headers: { "content-type": "application/json", "connect-protocol-version": "1" },
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
function pacedConnectJson(url: string, body: unknown, rate: number): Drive {
  const agent = new Agent({ keepAlive: true, maxSockets: 50 });
  const payload = JSON.stringify(body);
  const headers = {
    "content-type": "application/json",
    "connect-protocol-version": "1",
    "content-length": Buffer.byteLength(payload),
  };
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

function grpc(url: string, bodyFile: string): Drive {
  return async (seconds) => {
    const { stdout } = await run("h2load", [
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

interface Load {
  readonly name: string;
  readonly drive: Drive;
  /** Our processes the load's requests cross, whose CPU per request is reported. */
  readonly crosses: readonly ProcessName[];
  /** How long it runs in each round; BENCH_SECONDS when not set. */
  readonly seconds?: number;
  readonly note?: string;
}

type ProcessName = "api" | "gateway" | "api (logging off)" | "gateway (logging off)";

function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 === 1
    ? (sorted[mid] as number)
    : ((sorted[mid - 1] as number) + (sorted[mid] as number)) / 2;
}

async function main(): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), "bazbii-bench-"));
  const children: ChildProcess[] = [];
  try {
    const [apiPort, gatewayPort, quietApiPort, quietGatewayPort, nginxHttpPort, nginxGrpcPort] = await Promise.all([
      freePort(),
      freePort(),
      freePort(),
      freePort(),
      freePort(),
      freePort(),
    ]);
    const api = `http://127.0.0.1:${apiPort}`;
    const gateway = `http://127.0.0.1:${gatewayPort}`;
    const quietApi = `http://127.0.0.1:${quietApiPort}`;
    const quietGateway = `http://127.0.0.1:${quietGatewayPort}`;
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
    const startApi = (port: number, logLevel: string): ChildProcess =>
      start("start-api", {
        ...production,
        ...database,
        LOG_LEVEL: logLevel,
        API_PORT: String(port),
        DATA_DIR: join(dir, `data-${port}`),
      });
    const startGateway = (port: number, logLevel: string, apiUrl: string): ChildProcess =>
      start("start-gateway", {
        ...production,
        LOG_LEVEL: logLevel,
        GATEWAY_PORT: String(port),
        API_URL: apiUrl,
        UPSTREAM_PROTOCOL: process.env.BENCH_UPSTREAM_PROTOCOL ?? "connect",
      });
    // The same stack twice, logging at info and not at all, both up the whole
    // run so that the cost of logging is measured in interleaved loads. One API
    // server at a time: both migrate the same database when it is PostgreSQL.
    const apiProcess = startApi(apiPort, "info");
    children.push(apiProcess);
    await waitHealthy(api);
    const quietApiProcess = startApi(quietApiPort, "silent");
    children.push(quietApiProcess);
    await waitHealthy(quietApi);
    const gatewayProcess = startGateway(gatewayPort, "info", api);
    const quietGatewayProcess = startGateway(quietGatewayPort, "silent", quietApi);
    children.push(gatewayProcess, quietGatewayProcess);
    await Promise.all([waitHealthy(gateway), waitHealthy(quietGateway)]);
    const processes: Record<ProcessName, ChildProcess> = {
      api: apiProcess,
      gateway: gatewayProcess,
      "api (logging off)": quietApiProcess,
      "gateway (logging off)": quietGatewayProcess,
    };

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

    // One existing post to read, stored through each API server (with PGlite each has its own database).
    const createPost = async (apiUrl: string): Promise<string> => {
      const created = await fetch(`${apiUrl}/bazbii.post.v1.UserPostService/Create`, {
        method: "POST",
        headers: { "content-type": "application/json", "x-bazbii-actor-id": "bench" },
        body: JSON.stringify({ h3Index: "8928308280fffff", text: "bench" }),
      });
      return ((await created.json()) as { id: string }).id;
    };
    const id = await createPost(api);
    const quietId = await createPost(quietApi);
    const path = "/bazbii.post.v1.UserPostService/Get";
    const grpcBody = join(dir, "get.bin");
    const message = toBinary(GetRequestSchema, create(GetRequestSchema, { id }));
    const envelope = Buffer.alloc(5 + message.length);
    envelope.writeUInt32BE(message.length, 1);
    envelope.set(message, 5);
    await writeFile(grpcBody, envelope);

    // Measure the direct rate first: the latency loads run at 30% of it. The
    // first pass only warms the API server up (its rate came out 543 and 944
    // calls/s in two runs on one machine); the second sets the rate.
    const directGet = connectJson(`${api}${path}`, { id });
    await directGet(WARM_UP_SECONDS);
    const directRps = (await directGet(WARM_UP_SECONDS)).rps;
    const rate = Math.max(100, Math.round(directRps * 0.3));
    const h3Res16 = { h3Res: 16 };
    const heatmap = "/bazbii.feed.v1.HeatmapService/GetHeatmap";
    const hMs = "h2load: mean / max latency";
    const viaGateway: ProcessName[] = ["api", "gateway"];
    const load = {
      directJson: { name: "connect-json Get, direct", crosses: ["api"], drive: directGet },
      gatewayJson: {
        name: "connect-json Get, gateway",
        crosses: viaGateway,
        drive: connectJson(`${gateway}${path}`, { id }),
      },
      nginxJson: {
        name: "connect-json Get, nginx",
        crosses: ["api"],
        drive: connectJson(`http://127.0.0.1:${nginxHttpPort}${path}`, { id }),
      },
      directGrpc: { name: "grpc Get, direct", crosses: ["api"], drive: grpc(`${api}${path}`, grpcBody), note: hMs },
      gatewayGrpc: {
        name: "grpc Get, gateway",
        crosses: viaGateway,
        drive: grpc(`${gateway}${path}`, grpcBody),
        note: hMs,
      },
      nginxGrpc: {
        name: "grpc Get, nginx",
        crosses: ["api"],
        drive: grpc(`http://127.0.0.1:${nginxGrpcPort}${path}`, grpcBody),
        note: hMs,
      },
      notFound: {
        name: "connect-json Get not_found, gateway",
        crosses: viaGateway,
        drive: connectJson(`${gateway}${path}`, { id: "missing" }),
      },
      // The same two calls through the stack with logging off in both processes: what
      // info logging costs the error path, and what the error path costs without it.
      gatewayJsonQuiet: {
        name: "connect-json Get, gateway, logging off",
        crosses: ["api (logging off)", "gateway (logging off)"],
        drive: connectJson(`${quietGateway}${path}`, { id: quietId }),
      },
      notFoundQuiet: {
        name: "connect-json Get not_found, gateway, logging off",
        crosses: ["api (logging off)", "gateway (logging off)"],
        drive: connectJson(`${quietGateway}${path}`, { id: "missing" }),
      },
      // The API server's own error path, for scale: the gateway cannot be cheaper than it.
      notFoundDirect: {
        name: "connect-json Get not_found, direct",
        crosses: ["api"],
        drive: connectJson(`${api}${path}`, { id: "missing" }),
      },
      rejected: {
        name: "connect-json GetHeatmap h3_res 16, gateway",
        crosses: ["gateway"],
        drive: connectJson(`${gateway}${heatmap}`, h3Res16),
      },
      directAtRate: {
        name: `connect-json Get paced at ${rate}/s, direct`,
        crosses: ["api"],
        drive: pacedConnectJson(`${api}${path}`, { id }, rate),
        seconds: PACED_SECONDS,
      },
      gatewayAtRate: {
        name: `connect-json Get paced at ${rate}/s, gateway`,
        crosses: viaGateway,
        drive: pacedConnectJson(`${gateway}${path}`, { id }, rate),
        seconds: PACED_SECONDS,
      },
    } satisfies Record<string, Load>;
    const loads: Load[] = Object.values(load);
    // The gRPC loads run in a phase of their own, after all rounds of the others:
    // part of what a gRPC load costs the API server (2–3 times a Connect call's
    // CPU) fell on whichever load came next (bench/README.md, eighth session).
    const grpcLoads: Load[] = [load.directGrpc, load.gatewayGrpc, load.nginxGrpc];
    const phases = [loads.filter((l) => !grpcLoads.includes(l)), grpcLoads];

    const measure = async ({ name, drive, crosses, seconds }: Load, round: number): Promise<Sample> => {
      const cpuNow = () =>
        Promise.all([...crosses.map((p) => cpuSeconds(processes[p].pid as number)), loadGeneratorCpuSeconds()]);
      const before = await cpuNow();
      const result = await drive(seconds ?? SECONDS);
      const after = await cpuNow();
      const cpuUsPerRequest: Record<string, number> = {};
      [...crosses, LOAD_GENERATOR].forEach((p, i) => {
        cpuUsPerRequest[p] = Math.round(
          (((after[i] as number) - (before[i] as number)) * 1e6) / Math.max(1, result.requests),
        );
      });
      process.stderr.write(
        `round ${round}/${ROUNDS} ${name}: ${result.rps.toFixed(0)} req/s, p50 ${result.p50Ms} ms, p99 ${result.p99Ms} ms\n`,
      );
      return { ...result, cpuUsPerRequest };
    };

    const samples = new Map<string, Sample[]>(loads.map((l) => [l.name, []]));
    for (const phase of phases) {
      // JIT warm-up: every path once, unrecorded, so round 1 does not measure compilation.
      process.stderr.write(`warm-up: ${phase.length} loads of ${WARM_UP_SECONDS} s\n`);
      for (const { drive } of phase) await drive(WARM_UP_SECONDS);
      for (let round = 1; round <= ROUNDS; round++) {
        for (const l of phase) samples.get(l.name)?.push(await measure(l, round));
      }
    }
    await connectJson(`${gateway}${path}`, { id }, { connections: 500 })(SECONDS);
    const rss = await rssMb(gatewayProcess.pid as number);
    // The API server has no memory target; its peak over the run says what its Node flags cost.
    const apiRss = await rssMb(apiProcess.pid as number);

    const rows: Row[] = loads.map(({ name, note, crosses }) => {
      const s = samples.get(name) ?? [];
      const rps = s.map((x) => x.rps);
      const cpu: Record<string, number> = {};
      for (const p of [...crosses, LOAD_GENERATOR]) cpu[p] = median(s.map((x) => x.cpuUsPerRequest[p] as number));
      return {
        name,
        rps: median(rps),
        rpsRange: [Math.min(...rps), Math.max(...rps)],
        p50Ms: median(s.map((x) => x.p50Ms)),
        p99Ms: median(s.map((x) => x.p99Ms)),
        cpuUsPerRequest: cpu,
        ...(note === undefined ? {} : { note }),
      };
    });
    // A ratio is taken within each round (its two loads seconds apart), then the median over rounds.
    const perRound = (a: Load, b: Load, f: (x: Sample, y: Sample) => number): number => {
      const ys = samples.get(b.name) ?? [];
      return median((samples.get(a.name) ?? []).map((x, i) => f(x, ys[i] as Sample)));
    };
    const rpsRatio = (a: Load, b: Load) => perRound(a, b, (x, y) => x.rps / y.rps);
    const ratios = {
      gatewayOverDirectConnectJson: rpsRatio(load.gatewayJson, load.directJson),
      gatewayOverDirectGrpc: rpsRatio(load.gatewayGrpc, load.directGrpc),
      gatewayOverNginxConnectJson: rpsRatio(load.gatewayJson, load.nginxJson),
      gatewayOverNginxGrpc: rpsRatio(load.gatewayGrpc, load.nginxGrpc),
      nginxOverDirectConnectJson: rpsRatio(load.nginxJson, load.directJson),
      errorOverSuccessNotFound: rpsRatio(load.notFound, load.gatewayJson),
      errorOverSuccessNotFoundLoggingOff: rpsRatio(load.notFoundQuiet, load.gatewayJsonQuiet),
      errorOverSuccessDirect: rpsRatio(load.notFoundDirect, load.directJson),
      errorOverSuccessRejected: rpsRatio(load.rejected, load.gatewayJson),
      addedP50Ms: perRound(load.gatewayAtRate, load.directAtRate, (x, y) => x.p50Ms - y.p50Ms),
      addedP99Ms: perRound(load.gatewayAtRate, load.directAtRate, (x, y) => x.p99Ms - y.p99Ms),
      gatewayRssMbAt500Connections: rss.peak,
      apiRssMbPeak: apiRss.peak,
      infoLoggingCost: perRound(load.notFound, load.notFoundQuiet, (x, y) => 1 - x.rps / y.rps),
    };

    const width = Math.max(...rows.map((r) => r.name.length));
    const cpuText = (r: Row) =>
      Object.entries(r.cpuUsPerRequest)
        .map(([name, us]) => `${name} ${us}`)
        .join(", ");
    const lines = [
      `${ROUNDS} rounds of ${SECONDS} s per load (${PACED_SECONDS} s at a fixed rate); medians (req/s range over the rounds); CPU µs per request`,
      "",
      `${"load".padEnd(width)}  req/s   (range)         p50 ms  p99 ms  CPU µs/request`,
      ...rows.map(
        (r) =>
          `${r.name.padEnd(width)}  ${r.rps.toFixed(0).padStart(6)}  ${`(${r.rpsRange.map((v) => v.toFixed(0)).join("–")})`.padEnd(14)}  ${String(r.p50Ms).padStart(6)}  ${String(r.p99Ms).padStart(6)}  ${cpuText(r)}`,
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
          pacedSeconds: PACED_SECONDS,
          rounds: ROUNDS,
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
