import { mkdtemp, readdir, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type Cluster, startCluster } from "../src/cluster/cluster.js";
import { DEVELOPMENT_JWT_SECRET } from "../src/config/gateway-config.js";
import { mintToken } from "../src/gateway/auth.js";
import { startLoad } from "./helpers/load.js";
import { freshPostgresSchema } from "./helpers/postgres.js";
import { freePort, freePortWith, runNpmScript } from "./helpers/process.js";

// The cluster of `npm run cluster`, with real parts: HAProxy in front of two
// gateway processes, three API server processes on the real PostgreSQL, Redis
// and NATS, all on loopback.

let schema: Awaited<ReturnType<typeof freshPostgresSchema>>;
let dir: string;
beforeAll(async () => {
  schema = await freshPostgresSchema();
  dir = await mkdtemp(join(tmpdir(), "bazbii-cluster-"));
});
afterAll(async () => {
  await schema?.drop();
  await rm(dir, { recursive: true, force: true });
});

/**
 * What the servers wrote that a failure would want explained: lines that are not
 * log lines (a crash), errors, and every start and stop, from each log file.
 */
async function whatTheServersSaid(logDir: string): Promise<string> {
  const said: string[] = [];
  for (const file of (await readdir(logDir)).filter((f) => f.endsWith(".log"))) {
    for (const text of (await readFile(join(logDir, file), "utf8")).split("\n")) {
      if (text === "") continue;
      let line: { level?: string; log_id?: string } | undefined;
      try {
        line = JSON.parse(text) as { level?: string; log_id?: string };
      } catch {
        line = undefined;
      }
      const worth =
        line === undefined || line.level === "error" || line.level === "fatal" || line.log_id?.startsWith("SYS");
      if (worth) said.push(`${file}: ${text.slice(0, 300)}`);
    }
  }
  return said.slice(-60).join("\n");
}

async function ports(n: number): Promise<number[]> {
  const out: number[] = [];
  while (out.length < n) {
    const p = await freePort();
    if (!out.includes(p)) out.push(p);
  }
  return out;
}

describe("a rolling restart behind the load balancer", () => {
  let cluster: Cluster | undefined;
  afterAll(async () => cluster?.stop());

  it("loses no call: each API server, then each gateway, SIGTERMed and started again under load", async () => {
    const [lbPort, g1, g2, a1, a2, a3] = (await ports(6)) as [number, number, number, number, number, number];
    cluster = await startCluster({
      host: "127.0.0.1",
      port: lbPort,
      gatewayPorts: [g1, g2],
      apiPorts: [a1, a2, a3],
      databaseUrl: schema.url,
      redisUrl: "redis://127.0.0.1:6379",
      natsUrl: "nats://127.0.0.1:4222",
      dir,
      nodeFlags: { api: [], gateway: [] },
      env: {
        // Long enough for HAProxy's 200 ms checks and the gateways' health watches.
        SHUTDOWN_DRAIN_MS: "1000",
        RATE_LIMIT_READS: "1000000",
        RATE_LIMIT_WRITES: "1000000",
        RATE_LIMIT_REDIS_PREFIX: `bazbii:test:${crypto.randomUUID()}`,
      },
    });
    const tokens = await Promise.all(
      Array.from({ length: 20 }, (_, i) => mintToken(DEVELOPMENT_JWT_SECRET, `roll-${i}`)),
    );
    const load = startLoad(cluster.url, tokens);
    await sleep(500);
    for (let i = 0; i < 3; i++) await cluster.restart("api", i);
    for (let i = 0; i < 2; i++) await cluster.restart("gateway", i);
    await sleep(500);
    const result = await load.stop();
    const failed = result.failures.length === 0 ? "" : await whatTheServersSaid(dir);
    expect(result.failures.slice(0, 5), `the servers said:\n${failed}`).toEqual([]);
    expect(result.calls).toBeGreaterThan(300);
  }, 120_000);
});

describe("npm run cluster", () => {
  it("starts the cluster, says what runs where, serves through the load balancer, and stops it all on SIGTERM", async () => {
    // The command puts the gateways at GATEWAY_PORT + 10 and + 11, the API servers at API_PORT + 0..2.
    const lb = await freePortWith([0, 10, 11]);
    const api = await freePortWith([0, 1, 2]);
    const npm = runNpmScript("cluster", {
      GATEWAY_PORT: String(lb),
      API_PORT: String(api),
      DATABASE_URL: schema.url,
      CLUSTER_DIR: join(dir, "npm"),
    });
    await npm.waitForLine((l) => String(l.text ?? "").startsWith("cluster ready"), 60_000);
    await npm.waitForLine((l) => String(l.text ?? "").startsWith("api-3"));
    const table = npm.lines.map((l) => String(l.text ?? ""));
    expect(table.filter((t) => / (gateway|API server|load balancer) /.test(t))).toHaveLength(6);
    const heatmap = await fetch(`http://127.0.0.1:${lb}/bazbii.feed.v1.HeatmapService/GetHeatmap`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: '{"h3Res":2}',
    });
    expect(heatmap.status).toBe(200);
    npm.child.kill("SIGTERM");
    expect(await npm.exited()).toBe(0);
    for (const port of [lb, lb + 10, lb + 11, api, api + 1, api + 2]) {
      expect(await fetch(`http://127.0.0.1:${port}/healthz`).catch(() => "refused")).toBe("refused");
    }
  }, 90_000);
});
