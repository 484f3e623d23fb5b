import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { cpus, tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { create, toBinary } from "@bufbuild/protobuf";
import { mintToken } from "../src/gateway/auth.js";
import { GetRequestSchema } from "../src/gen/bazbii/post/v1/user_post_service_pb.js";
import { ASSERTION_HEADER, signAssertion } from "../src/shared/internal-assertion.js";
import { accessLineCpuUs } from "./access-log-cost.js";
import { assertionCpuUs } from "./assertion-cost.js";
import { measureFanOut } from "./fan-out.js";
import { connectJson, grpc, pacedConnectJson, writeGrpcBody } from "./loads.js";
import { startOtlpSink } from "./otlp-sink.js";
import { AUTH_JWT_SECRET, INTERNAL_AUTH_SECRET, Processes, rssMb } from "./processes.js";
import { type Load, measureRounds, type Row } from "./rounds.js";

// npm run bench: the gateway hop measured against a direct call and an nginx
// hop, on loopback, every load bounded in time. After a warm-up, every load
// runs in BENCH_ROUNDS rounds (default 5) of BENCH_SECONDS each (default 3;
// BENCH_PACED_SECONDS, default 10, for the loads at a fixed rate, whose p99 needs
// more calls and spans the servers' full garbage collections, seconds apart),
// interleaved, so that what a ratio compares was measured seconds apart; each
// figure is the median over the rounds. Prints one table and writes
// bench/results.json. BENCH_DATABASE_URL gives the API servers a PostgreSQL
// server instead of embedded PGlite; BENCH_UPSTREAM_PROTOCOL sets the
// gateway's UPSTREAM_PROTOCOL. Run from the repository's root, after
// `npm run build`: the servers start from dist/cmd.
//
// This file is the scenario: which servers run, which loads cross them, what
// is compared. A server is one line below (Processes starts it and stops it),
// a load one entry of `load`, naming the servers whose CPU it reports.

const SECONDS = Number(process.env.BENCH_SECONDS ?? 3);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 5);
const PACED_SECONDS = Number(process.env.BENCH_PACED_SECONDS ?? 10);
const WARM_UP_SECONDS = 2;

async function main(): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), "bazbii-bench-"));
  const processes = new Processes(dir, {
    databaseUrl: process.env.BENCH_DATABASE_URL,
    upstreamProtocol: process.env.BENCH_UPSTREAM_PROTOCOL ?? "connect",
  });
  try {
    // The same stack twice, logging at info and not at all, both up the whole
    // run so that the cost of logging is measured in interleaved loads. One API
    // server at a time: both migrate the same database when it is PostgreSQL.
    const api = await processes.apiServer("api", "info");
    const quietApi = await processes.apiServer("api (logging off)", "silent");
    const [gateway, quietGateway] = await Promise.all([
      processes.gateway("gateway", "info", api),
      processes.gateway("gateway (logging off)", "silent", quietApi),
    ]);
    // A gateway's assertion for the direct calls: afresh each round (good for a minute), and
    // for nginx one that lasts the run (signed as if an hour from now: only exp is checked).
    const path = "/bazbii.post.v1.UserPostService/Get";
    const asGateway = (rpcMethod: string, actorId?: string, now = Date.now()) => {
      const requestId = `bench-${crypto.randomUUID()}`;
      const token = signAssertion(INTERNAL_AUTH_SECRET, { actorId, rpcMethod, requestId }, now);
      return { "x-request-id": requestId, [ASSERTION_HEADER]: token };
    };
    const direct = () => asGateway(path.slice(1));
    const forNginx = asGateway(path.slice(1), undefined, Date.now() + 3_600_000);
    // nginx as the reference hop.
    const nginx = await processes.nginx(api, {
      requestId: forNginx["x-request-id"],
      token: forNginx[ASSERTION_HEADER] as string,
    });
    // The same API server as three endpoints (its loopback addresses): what balancing, health
    // and pools for three cost the gateway per call. And the cluster's hop: HAProxy, then a gateway.
    const gateway3 = await processes.gateway("gateway, 3 endpoints", "info", api, { endpoints: 3 });
    // The same stack over TLS: HTTPS at the gateway's port, mutual TLS to its API server.
    const tls = await processes.tls();
    const tlsApi = await processes.apiServer("api (mutual TLS)", "info", tls);
    const tlsGateway = await processes.gateway("gateway (TLS)", "info", tlsApi, { tls });
    const haproxy = await processes.haproxy([gateway]);
    // Embedded PGlite as npm start runs it, on a fresh data directory, with its small settings and
    // with PGlite's own: the peak of the first start (initdb), the memory once healthy and idle, and,
    // after the rounds, the peak over the run and the calls/s side by side.
    const embedded = await processes.embeddedApiServer("api on PGlite, small", "small");
    const embeddedStart = await rssMb(embedded.pid);
    const pgliteOwn = await processes.embeddedApiServer("api on PGlite, its own settings", "pglite");
    const pgliteOwnStart = await rssMb(pgliteOwn.pid);
    await sleep(3_000);
    const embeddedHealthy = await rssMb(embedded.pid);
    const pgliteOwnHealthy = await rssMb(pgliteOwn.pid);
    // What operators turn on: every call traced (sampled 100%, exported to a collector that keeps
    // up), and an access line for every call. For a successful Get the production stack's default
    // (ACCESS_LOG=errors) writes no access line: beside it, "on" is the access log's whole cost.
    const sink = await startOtlpSink();
    const traced = { OTEL_EXPORTER_OTLP_ENDPOINT: sink.url, OTEL_TRACES_SAMPLER: "always_on" };
    const tracedApi = await processes.apiServer("api (traced)", "info", undefined, traced);
    const tracedGateway = await processes.gateway("gateway (traced)", "info", tracedApi, { env: traced });
    const accessLogged = { ACCESS_LOG: "on" };
    const accessLogApi = await processes.apiServer("api (access log on)", "info", undefined, accessLogged);
    const accessLogGateway = await processes.gateway("gateway (access log on)", "info", accessLogApi, {
      env: accessLogged,
    });

    // One existing post to read, stored through each API server (with PGlite each has its own database).
    const createPost = async (apiUrl: string): Promise<string> => {
      const created = await fetch(`${apiUrl}/bazbii.post.v1.UserPostService/Create`, {
        method: "POST",
        headers: { "content-type": "application/json", ...asGateway("bazbii.post.v1.UserPostService/Create", "bench") },
        body: JSON.stringify({ h3Index: "8928308280fffff", text: "bench" }),
      });
      return ((await created.json()) as { id: string }).id;
    };
    const id = await createPost(api.url);
    const quietId = await createPost(quietApi.url);
    const tracedId = await createPost(tracedApi.url);
    const accessLogId = await createPost(accessLogApi.url);
    const embeddedId = await createPost(embedded.url);
    const pgliteOwnId = await createPost(pgliteOwn.url);
    // Through the gateway, with a bearer token: the API server wants the gateway's client certificate.
    const tlsCreated = await fetch(`${tlsGateway.url}/bazbii.post.v1.UserPostService/Create`, {
      method: "POST",
      headers: {
        "content-type": "application/json",
        authorization: `Bearer ${await mintToken(AUTH_JWT_SECRET, "bench")}`,
      },
      body: JSON.stringify({ h3Index: "8928308280fffff", text: "bench" }),
    });
    const tlsId = ((await tlsCreated.json()) as { id: string }).id;
    const grpcBody = join(dir, "get.bin");
    await writeGrpcBody(grpcBody, toBinary(GetRequestSchema, create(GetRequestSchema, { id })));
    const tlsGrpcBody = join(dir, "get-tls.bin");
    await writeGrpcBody(tlsGrpcBody, toBinary(GetRequestSchema, create(GetRequestSchema, { id: tlsId })));

    // Measure the direct rate first: the latency loads run at 30% of it. The
    // first pass only warms the API server up (its rate came out 543 and 944
    // calls/s in two runs on one machine); the second sets the rate.
    const directGet = connectJson(`${api.url}${path}`, { id }, {}, direct);
    await directGet(WARM_UP_SECONDS);
    const directRps = (await directGet(WARM_UP_SECONDS)).rps;
    const rate = Math.max(100, Math.round(directRps * 0.3));
    const h3Res16 = { h3Res: 16 };
    const heatmap = "/bazbii.feed.v1.HeatmapService/GetHeatmap";
    const hMs = "h2load: mean / max latency";
    const viaGateway = [api, gateway];
    const load = {
      directJson: { name: "connect-json Get, direct", crosses: [api], drive: directGet },
      gatewayJson: {
        name: "connect-json Get, gateway",
        crosses: viaGateway,
        drive: connectJson(`${gateway.url}${path}`, { id }),
      },
      // Beside the plain stack's, and just after it in every round: what tracing every call, and an
      // access line for every call, cost.
      tracedJson: {
        name: "connect-json Get, gateway, traced 100%",
        crosses: [tracedApi, tracedGateway],
        drive: connectJson(`${tracedGateway.url}${path}`, { id: tracedId }),
      },
      accessLogJson: {
        name: "connect-json Get, gateway, access log on",
        crosses: [accessLogApi, accessLogGateway],
        drive: connectJson(`${accessLogGateway.url}${path}`, { id: accessLogId }),
      },
      nginxJson: {
        name: "connect-json Get, nginx",
        crosses: [api],
        drive: connectJson(`${nginx.connectUrl}${path}`, { id }),
      },
      gateway3Json: {
        name: "connect-json Get, gateway with 3 endpoints",
        crosses: [api, gateway3],
        drive: connectJson(`${gateway3.url}${path}`, { id }),
      },
      clusterJson: {
        name: "connect-json Get, haproxy + gateway",
        crosses: [api, gateway, haproxy],
        drive: connectJson(`${haproxy.url}${path}`, { id }),
      },
      // TLS at the public port and mutual TLS on the hop, beside the same calls over cleartext.
      tlsJson: {
        name: "connect-json Get, gateway, TLS both hops",
        crosses: [tlsApi, tlsGateway],
        drive: connectJson(`${tlsGateway.url}${path}`, { id: tlsId }),
      },
      directGrpc: {
        name: "grpc Get, direct",
        crosses: [api],
        drive: grpc(`${api.url}${path}`, grpcBody, direct),
        note: hMs,
      },
      gatewayGrpc: {
        name: "grpc Get, gateway",
        crosses: viaGateway,
        drive: grpc(`${gateway.url}${path}`, grpcBody),
        note: hMs,
      },
      nginxGrpc: {
        name: "grpc Get, nginx",
        crosses: [api],
        drive: grpc(`${nginx.grpcUrl}${path}`, grpcBody),
        note: hMs,
      },
      tlsGrpc: {
        name: "grpc Get, gateway, TLS both hops",
        crosses: [tlsApi, tlsGateway],
        drive: grpc(`${tlsGateway.url}${path}`, tlsGrpcBody),
        note: hMs,
      },
      embeddedJson: {
        name: "connect-json Get, direct, PGlite small",
        crosses: [embedded],
        drive: connectJson(`${embedded.url}${path}`, { id: embeddedId }, {}, direct),
      },
      pgliteOwnJson: {
        name: "connect-json Get, direct, PGlite's own settings",
        crosses: [pgliteOwn],
        drive: connectJson(`${pgliteOwn.url}${path}`, { id: pgliteOwnId }, {}, direct),
      },
      notFound: {
        name: "connect-json Get not_found, gateway",
        crosses: viaGateway,
        drive: connectJson(`${gateway.url}${path}`, { id: "missing" }),
      },
      // The same two calls through the stack with logging off in both processes: what
      // info logging costs the error path, and what the error path costs without it.
      gatewayJsonQuiet: {
        name: "connect-json Get, gateway, logging off",
        crosses: [quietApi, quietGateway],
        drive: connectJson(`${quietGateway.url}${path}`, { id: quietId }),
      },
      notFoundQuiet: {
        name: "connect-json Get not_found, gateway, logging off",
        crosses: [quietApi, quietGateway],
        drive: connectJson(`${quietGateway.url}${path}`, { id: "missing" }),
      },
      // The API server's own error path, for scale: the gateway cannot be cheaper than it.
      notFoundDirect: {
        name: "connect-json Get not_found, direct",
        crosses: [api],
        drive: connectJson(`${api.url}${path}`, { id: "missing" }, {}, direct),
      },
      rejected: {
        name: "connect-json GetHeatmap h3_res 16, gateway",
        crosses: [gateway],
        drive: connectJson(`${gateway.url}${heatmap}`, h3Res16),
      },
      directAtRate: {
        name: `connect-json Get paced at ${rate}/s, direct`,
        crosses: [api],
        drive: pacedConnectJson(`${api.url}${path}`, { id }, rate, direct),
        seconds: PACED_SECONDS,
      },
      gatewayAtRate: {
        name: `connect-json Get paced at ${rate}/s, gateway`,
        crosses: viaGateway,
        drive: pacedConnectJson(`${gateway.url}${path}`, { id }, rate),
        seconds: PACED_SECONDS,
      },
    } satisfies Record<string, Load>;
    const loads: Load[] = Object.values(load);
    // The gRPC loads run in a phase of their own, after all rounds of the others:
    // part of what a gRPC load costs the API server (2–3 times a Connect call's
    // CPU) fell on whichever load came next (bench/README.md).
    const grpcLoads: Load[] = [load.directGrpc, load.gatewayGrpc, load.nginxGrpc, load.tlsGrpc];
    // So do the embedded PGlite loads, last: a PGlite server keeps compiling and collecting for a
    // while after its load, on the cores the next load needs.
    const pgliteLoads: Load[] = [load.embeddedJson, load.pgliteOwnJson];
    const phases = [loads.filter((l) => !grpcLoads.includes(l) && !pgliteLoads.includes(l)), grpcLoads, pgliteLoads];
    const measured = await measureRounds(phases, { rounds: ROUNDS, seconds: SECONDS, warmUpSeconds: WARM_UP_SECONDS });

    // The gateway's memory under many callers: its peak RSS is the figure.
    await connectJson(`${gateway.url}${path}`, { id }, { connections: 500 })(SECONDS);
    const rss = await rssMb(gateway.pid);
    // The API server has no memory target; its peak over the run says what its Node flags cost.
    const apiRss = await rssMb(api.pid);

    // Last, as its thousand streams would weigh on the peaks above: update fan-out, 1,000 watchers
    // through the gateway, a post at a time.
    const fanOut = await measureFanOut(gateway.url, await mintToken(AUTH_JWT_SECRET, "fan-out"));

    const [embeddedRun, pgliteOwnRun] = [await rssMb(embedded.pid), await rssMb(pgliteOwn.pid)];

    const rows = loads.map((l) => measured.row(l));
    // The signed assertion: what signing (gateway) and verifying (API server) one costs, against
    // the CPU both processes spend on a call.
    const assertionUs = assertionCpuUs();
    const hopRow = measured.row(load.gatewayJson);
    const hopCpuUs = (hopRow.cpuUsPerRequest[gateway.name] ?? 0) + (hopRow.cpuUsPerRequest[api.name] ?? 0);
    const ratios = {
      gatewayOverDirectConnectJson: measured.rpsRatio(load.gatewayJson, load.directJson),
      gatewayOverDirectGrpc: measured.rpsRatio(load.gatewayGrpc, load.directGrpc),
      gatewayOverNginxConnectJson: measured.rpsRatio(load.gatewayJson, load.nginxJson),
      gatewayOverNginxGrpc: measured.rpsRatio(load.gatewayGrpc, load.nginxGrpc),
      nginxOverDirectConnectJson: measured.rpsRatio(load.nginxJson, load.directJson),
      clusterOverDirectConnectJson: measured.rpsRatio(load.clusterJson, load.directJson),
      tlsOverCleartextConnectJson: measured.rpsRatio(load.tlsJson, load.gatewayJson),
      tlsOverCleartextGrpc: measured.rpsRatio(load.tlsGrpc, load.gatewayGrpc),
      gatewayCpuPerCallTlsOverCleartext: measured.perRound(
        load.tlsJson,
        load.gatewayJson,
        (x, y) => (x.cpuUsPerRequest[tlsGateway.name] ?? 0) / (y.cpuUsPerRequest[gateway.name] ?? 1),
      ),
      tracingOnOverOffConnectJson: measured.rpsRatio(load.tracedJson, load.gatewayJson),
      tracingCpuUsPerCall: measured.perRound(
        load.tracedJson,
        load.gatewayJson,
        (x, y) =>
          (x.cpuUsPerRequest[tracedGateway.name] ?? 0) +
          (x.cpuUsPerRequest[tracedApi.name] ?? 0) -
          (y.cpuUsPerRequest[gateway.name] ?? 0) -
          (y.cpuUsPerRequest[api.name] ?? 0),
      ),
      accessLogOnOverOffConnectJson: measured.rpsRatio(load.accessLogJson, load.gatewayJson),
      accessLineCpuUs: accessLineCpuUs(),
      accessLogCpuUsPerCall: measured.perRound(
        load.accessLogJson,
        load.gatewayJson,
        (x, y) =>
          (x.cpuUsPerRequest[accessLogGateway.name] ?? 0) +
          (x.cpuUsPerRequest[accessLogApi.name] ?? 0) -
          (y.cpuUsPerRequest[gateway.name] ?? 0) -
          (y.cpuUsPerRequest[api.name] ?? 0),
      ),
      pgliteSmallRssMbFirstStartPeak: embeddedStart.peak,
      pgliteSmallRssMbHealthy: embeddedHealthy.now,
      pgliteSmallRssMbPeakOverRun: embeddedRun.peak,
      pgliteOwnRssMbFirstStartPeak: pgliteOwnStart.peak,
      pgliteOwnRssMbHealthy: pgliteOwnHealthy.now,
      pgliteOwnRssMbPeakOverRun: pgliteOwnRun.peak,
      pgliteSmallOverOwnConnectJson: measured.rpsRatio(load.embeddedJson, load.pgliteOwnJson),
      assertionCpuUsPerCall: assertionUs,
      assertionShareOfCallCpu: Math.round((assertionUs / hopCpuUs) * 1000) / 1000,
      gatewayCpuPerCallThreeEndpointsOverOne: measured.perRound(
        load.gateway3Json,
        load.gatewayJson,
        (x, y) => (x.cpuUsPerRequest[gateway3.name] ?? 0) / (y.cpuUsPerRequest[gateway.name] ?? 1),
      ),
      errorOverSuccessNotFound: measured.rpsRatio(load.notFound, load.gatewayJson),
      errorOverSuccessNotFoundLoggingOff: measured.rpsRatio(load.notFoundQuiet, load.gatewayJsonQuiet),
      errorOverSuccessDirect: measured.rpsRatio(load.notFoundDirect, load.directJson),
      errorOverSuccessRejected: measured.rpsRatio(load.rejected, load.gatewayJson),
      addedP50Ms: measured.perRound(load.gatewayAtRate, load.directAtRate, (x, y) => x.p50Ms - y.p50Ms),
      addedP99Ms: measured.perRound(load.gatewayAtRate, load.directAtRate, (x, y) => x.p99Ms - y.p99Ms),
      gatewayRssMbAt500Connections: rss.peak,
      apiRssMbPeak: apiRss.peak,
      fanOutWatchers: fanOut.watchers,
      fanOutP50Ms: fanOut.p50Ms,
      fanOutP99Ms: fanOut.p99Ms,
      infoLoggingCost: measured.perRound(load.notFound, load.notFoundQuiet, (x, y) => 1 - x.rps / y.rps),
    };

    if (sink.exportedBytes() === 0) throw new Error("the traced stack exported no span");
    sink.close();
    process.stdout.write(table(rows, ratios));
    await mkdir("bench", { recursive: true });
    await writeFile(
      "bench/results.json",
      `${JSON.stringify(
        {
          date: new Date().toISOString(),
          seconds: SECONDS,
          pacedSeconds: PACED_SECONDS,
          rounds: ROUNDS,
          cores: cpus().length,
          database: process.env.BENCH_DATABASE_URL === undefined ? "pglite" : "postgres",
          rows,
          ratios,
        },
        null,
        2,
      )}\n`,
    );
  } finally {
    processes.stopAll();
    await rm(dir, { recursive: true, force: true });
  }
}

/** The rows, then the ratios, as printed on stdout. */
function table(rows: readonly Row[], ratios: Record<string, number>): string {
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
  return `${lines.join("\n")}\n`;
}

await main();
