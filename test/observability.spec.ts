import { execFile } from "node:child_process";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { latLngToCell } from "h3-js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { HeatmapService } from "../src/gen/bazbii/feed/v1/heatmap_service_pb.js";
import { UserPostService } from "../src/gen/bazbii/post/v1/user_post_service_pb.js";
import { codeFromName, codeTable } from "../src/shared/code-table.js";
import { summarizeErrors } from "../src/shared/logging/error-summary.js";
import { type System, startSystem } from "./helpers/system.js";
import { callWire, closeGrpcClients } from "./helpers/wire-clients.js";

const run = promisify(execFile);

let system: System;
let token: string;

/**
 * A scripted mix of calls through the gateway: 2 ok creates and 1 over the
 * write limit, 3 not_found, 2 rejected h3_res, 1 without token, 1 bad token.
 */
async function scriptedMix(): Promise<void> {
  const auth = { authorization: `Bearer ${token}` };
  for (let i = 0; i < 3; i++) {
    const request = { h3Index: latLngToCell(1, 1 + i, 9), text: `mix ${i}` };
    const outcome = await callWire("grpc", system.gateway.url, UserPostService.method.create, request, {
      headers: auth,
    });
    expect(outcome.ok).toBe(i < 2);
  }
  for (let i = 0; i < 3; i++)
    await callWire("connect-json", system.gateway.url, UserPostService.method.get, { id: `missing-${i}` });
  for (let i = 0; i < 2; i++)
    await callWire("grpc-web", system.gateway.url, HeatmapService.method.getHeatmap, { h3Res: 99 });
  await callWire("connect-binary", system.gateway.url, UserPostService.method.delete, { id: "x" });
  await callWire(
    "connect-json",
    system.gateway.url,
    UserPostService.method.get,
    { id: "x" },
    {
      headers: { authorization: `Bearer ${token}tampered` },
    },
  );
}

beforeAll(async () => {
  system = await startSystem({
    gateway: { rateLimit: { windowSeconds: 60, reads: 100, writes: 2, redisUrl: undefined, redisKeyPrefix: "mix" } },
  });
  token = await system.token("olivia");
  await scriptedMix();
});
afterAll(async () => {
  closeGrpcClients();
  await system?.close();
});

async function scrape(url: string): Promise<string> {
  const res = await fetch(`${url}/metrics`);
  expect(res.status).toBe(200);
  expect(res.headers.get("content-type")).toContain("text/plain");
  return res.text();
}

/** The value of one sample line of a Prometheus scrape, 0 when absent. */
function sample(text: string, name: string, labels: Record<string, string>): number {
  const line = text
    .split("\n")
    .find((l) => l.startsWith(`${name}{`) && Object.entries(labels).every(([k, v]) => l.includes(`${k}="${v}"`)));
  return line === undefined ? 0 : Number(line.slice(line.lastIndexOf(" ") + 1));
}

describe("GET /metrics after a scripted mix of calls", () => {
  it("counts the gateway's calls per method and canonical code", async () => {
    const text = await scrape(system.gateway.url);
    const count = (method: string, code: string) =>
      sample(text, "rpc_server_call_duration_seconds_count", { rpc_method: method, rpc_response_status_code: code });
    expect(count("Create", "ok")).toBe(2);
    expect(count("Create", "resource_exhausted")).toBe(1);
    expect(sample(text, "bazbii_rate_limit_rejections_total", { rpc_method: "Create", limit: "writes" })).toBe(1);
    expect(count("Get", "not_found")).toBe(3);
    expect(count("GetHeatmap", "invalid_argument")).toBe(2);
    expect(count("Delete", "unauthenticated")).toBe(1);
    expect(count("Get", "unauthenticated")).toBe(1);
    // Upstream calls: the rejected ones never left the gateway.
    const upstream = (method: string, code: string) =>
      sample(text, "rpc_client_call_duration_seconds_count", { rpc_method: method, rpc_response_status_code: code });
    expect(upstream("Create", "ok")).toBe(2);
    expect(upstream("Get", "not_found")).toBe(3);
    expect(upstream("GetHeatmap", "invalid_argument")).toBe(0);
    expect(text).toMatch(/^process_resident_memory_bytes\{process="gateway"\} \d+/m);
  });

  it("counts the API server's calls with the reason as error_type", async () => {
    const text = await scrape(system.api.url);
    expect(
      sample(text, "rpc_server_call_duration_seconds_count", {
        rpc_method: "Get",
        rpc_response_status_code: "not_found",
        error_type: "POST_NOT_FOUND",
        process: "api",
      }),
    ).toBe(3);
    expect(
      sample(text, "rpc_server_call_duration_seconds_count", { rpc_method: "Create", rpc_response_status_code: "ok" }),
    ).toBe(2);
  });
});

describe("log discipline", () => {
  it("shares one trace id across both processes, the caller's when it sent traceparent", async () => {
    const traceId = "4bf92f3577b34da6a3ce929d0e0e4736";
    const requestId = `trace-${crypto.randomUUID()}`;
    await callWire(
      "connect-json",
      system.gateway.url,
      UserPostService.method.get,
      { id: "nope" },
      {
        headers: { traceparent: `00-${traceId}-00f067aa0ba902b7-01`, "x-request-id": requestId },
      },
    );
    const lines = [...system.gatewayLogs.forRequest(requestId), ...system.apiLogs.forRequest(requestId)];
    expect(lines.map((l) => l.log_id).sort()).toEqual(["REQ_003", "REQ_012"]);
    for (const line of lines) expect(line.trace_id).toBe(traceId);

    const fresh = `trace-${crypto.randomUUID()}`;
    await callWire(
      "grpc",
      system.gateway.url,
      UserPostService.method.get,
      { id: "nope" },
      { headers: { "x-request-id": fresh } },
    );
    const [gatewayLine] = system.gatewayLogs.forRequest(fresh);
    const [apiLine] = system.apiLogs.forRequest(fresh);
    expect(gatewayLine?.trace_id).toMatch(/^[0-9a-f]{32}$/);
    expect(apiLine?.trace_id).toBe(gatewayLine?.trace_id);
  });

  it("gives every warn and error line a log ID, a request id and a trace id, logs no call twice, and never logs a token", () => {
    for (const logs of [system.gatewayLogs, system.apiLogs]) {
      const problems = logs.lines.filter((l) => l.level === "warn" || l.level === "error");
      expect(problems.length).toBeGreaterThan(0);
      for (const line of problems) {
        expect(line.log_id, JSON.stringify(line)).toMatch(/^[A-Z]+(_[A-Z]+)?_\d{3}$/);
        expect(line.request_id).toBeTypeOf("string");
        expect(line.trace_id).toBeTypeOf("string");
        const code = codeFromName(String(line.code));
        expect(code, "code field").toBeDefined();
        if (code !== undefined) expect(line.level).toBe(codeTable[code].logLevel);
      }
      const perRequest = new Map<string, number>();
      for (const line of problems)
        perRequest.set(`${line.request_id}`, (perRequest.get(`${line.request_id}`) ?? 0) + 1);
      expect([...perRequest.values()].every((n) => n === 1)).toBe(true);
      expect(logs.text()).not.toContain(token.split(".")[2]);
      expect(logs.text()).not.toMatch(/bearer /i);
    }
  });
});

describe("npm run errors:top", () => {
  it("aggregates a log file by log ID and reason", async () => {
    const dir = await mkdtemp(join(tmpdir(), "bazbii-errors-top-"));
    try {
      const file = join(dir, "gateway.log");
      await writeFile(file, `${system.gatewayLogs.lines.map((l) => JSON.stringify(l)).join("\n")}\nnot json\n`);
      const { stdout } = await run(process.execPath, ["dist/cmd/errors-top.js", file]);
      const [header, ...rows] = stdout.trim().split("\n");
      expect(header).toMatch(/^count\s+per min\s+log_id\s+reason\s+first seen\s+last seen\s+sample$/);
      expect(rows.find((r) => r.includes("POST_NOT_FOUND"))).toMatch(/^\d+\s+[\d.]+\s+REQ_012\s+POST_NOT_FOUND\s/);
      const groups = summarizeErrors((await readFile(file, "utf8")).split("\n"));
      expect(groups.find((g) => g.reason === "H3_RES_OUT_OF_RANGE")).toMatchObject({ logId: "REQ_002", count: 2 });
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe("alert rules", () => {
  it("pass promtool's unit tests", async () => {
    const { stdout } = await run("promtool", ["test", "rules", "alerts.test.yml"], { cwd: "deploy/prometheus" });
    expect(stdout).toContain("SUCCESS");
  });

  it("use only metrics our servers really emit", async () => {
    const rules = await readFile("deploy/prometheus/alerts.yml", "utf8");
    const used = new Set([...rules.matchAll(/\b((?:rpc|bazbii)_[a-z_]+)\b/g)].map((m) => m[1] as string));
    expect(used.size).toBeGreaterThan(0);
    const scraped = `${await scrape(system.gateway.url)}\n${await scrape(system.api.url)}`;
    // Every name is a metric (a sample line starts with it) or a label of one.
    for (const name of used) expect(scraped, name).toMatch(new RegExp(`^${name}\\{|[{,]${name}="`, "m"));
  });
});

describe("the Grafana dashboard (deploy/grafana)", () => {
  /** Every PromQL query of the dashboard, its variables and Grafana's interval filled in. */
  async function dashboardQueries(): Promise<string[]> {
    const dashboard = JSON.parse(await readFile("deploy/grafana/bazbii-gateway.json", "utf8")) as {
      panels: { targets: { expr: string }[] }[];
    };
    return dashboard.panels
      .flatMap((p) => p.targets.map((t) => t.expr))
      .map((expr) => expr.replaceAll("$__rate_interval", "5m").replace(/\$[a-z_]+/g, ".*"));
  }

  it("asks only for metrics a real scrape of a gateway and an API server declares", async () => {
    const queries = await dashboardQueries();
    expect(queries.length).toBeGreaterThan(10);
    const scraped = `${await scrape(system.gateway.url)}\n${await scrape(system.api.url)}`;
    const names = new Set(
      queries.flatMap((q) => [...q.matchAll(/\b((?:rpc|bazbii)_[a-z_]+)\b/g)].map((m) => m[1] as string)),
    );
    // Every name is a metric the servers declare (its samples may not have come yet) or a label of one.
    for (const name of names) {
      const family = name.replace(/_(bucket|count|sum)$/, "");
      expect(scraped, name).toMatch(new RegExp(`^# TYPE ${family} |[{,]${name}="`, "m"));
    }
  });

  it("is valid PromQL: promtool checks every query as a recording rule", async () => {
    const dir = await mkdtemp(join(tmpdir(), "bazbii-dashboard-"));
    try {
      const rules = (await dashboardQueries()).map(
        (q, i) => `      - record: dashboard:query_${i}\n        expr: '${q}'`,
      );
      await writeFile(
        join(dir, "dashboard.rules.yml"),
        `groups:\n  - name: dashboard\n    rules:\n${rules.join("\n")}\n`,
      );
      const { stdout } = await run("promtool", ["check", "rules", join(dir, "dashboard.rules.yml")]);
      expect(stdout).toContain(`SUCCESS: ${rules.length} rules found`);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
