import { setTimeout as sleep } from "node:timers/promises";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DEVELOPMENT_JWT_SECRET } from "../src/config/gateway-config.js";
import { mintToken } from "../src/gateway/auth.js";
import { metricValue, startLoad, timeUntil } from "./helpers/load.js";
import { freshPostgresSchema } from "./helpers/postgres.js";
import { freePort, type RunningProcess, runEntryPoint } from "./helpers/process.js";

// Three API server processes on the real PostgreSQL behind one gateway
// process, under a bounded load on loopback: what scale-out must survive.

const started = (line: Record<string, unknown>) => line.log_id === "SYS_001";
const running: RunningProcess[] = [];
let schema: Awaited<ReturnType<typeof freshPostgresSchema>>;
let apiPorts: number[];
let gatewayUrl: string;

function startApi(port: number): RunningProcess {
  const api = runEntryPoint("start-api", {
    API_PORT: String(port),
    DATABASE_URL: schema.url,
    SHUTDOWN_DRAIN_MS: "200",
    SHUTDOWN_GRACE_MS: "2000",
  });
  running.push(api);
  return api;
}

beforeAll(async () => {
  schema = await freshPostgresSchema();
  apiPorts = [await freePort(), await freePort(), await freePort()];
  await Promise.all(apiPorts.map((port) => startApi(port).waitForLine(started)));
  const gatewayPort = await freePort();
  const gateway = runEntryPoint("start-gateway", {
    GATEWAY_PORT: String(gatewayPort),
    API_URL: apiPorts.map((p) => `http://127.0.0.1:${p}`).join(","),
    RATE_LIMIT_READS: "1000000",
    RATE_LIMIT_WRITES: "1000000",
  });
  running.push(gateway);
  await gateway.waitForLine(started);
  gatewayUrl = `http://127.0.0.1:${gatewayPort}`;
  await timeUntil(async () => (await fetch(`${gatewayUrl}/readyz`)).status === 200, 5_000);
}, 60_000);

afterAll(async () => {
  for (const p of running) p.child.kill("SIGKILL");
  await schema?.drop();
});

const healthy = (port: number) => () =>
  metricValue(gatewayUrl, "bazbii_upstream_endpoint_healthy", `endpoint="127.0.0.1:${port}"`).then((v) => v === 1);

describe("three API servers behind a gateway, one killed under load", () => {
  it("loses no call of 20 callers (Get, Delete, keyed Create); the dead one is out within 1 s and back within 1 s of its restart; one post per key", async () => {
    for (const port of apiPorts) await timeUntil(healthy(port), 2_000);
    const tokens = await Promise.all(
      Array.from({ length: 20 }, (_, i) => mintToken(DEVELOPMENT_JWT_SECRET, `load-${i}`)),
    );
    const load = startLoad(gatewayUrl, tokens);
    await sleep(1_500);

    const [victimPort] = apiPorts as [number];
    const victim = running.find((p) => p.lines.some((l) => started(l) && String(l.url).endsWith(`:${victimPort}`)));
    victim?.child.kill("SIGKILL");
    const outAfterMs = await timeUntil(async () => !(await healthy(victimPort)()), 1_000);
    await sleep(1_000);

    const restarted = startApi(victimPort);
    await restarted.waitForLine(started);
    const backAfterMs = await timeUntil(healthy(victimPort), 1_000);
    await sleep(1_000);
    const result = await load.stop();

    expect(result.failures.slice(0, 5)).toEqual([]);
    expect(result.calls).toBeGreaterThan(200);
    expect(outAfterMs).toBeLessThan(1_000);
    expect(backAfterMs).toBeLessThan(1_000);
    // The restarted server takes calls again.
    expect(
      await metricValue(gatewayUrl, "rpc_client_call_duration_seconds_count", `server_port="${victimPort}"`),
    ).toBeGreaterThan(0);

    // Exactly once: every key the callers saw succeed names one post, and no key two.
    const db = new pg.Client({ connectionString: schema.url });
    await db.connect();
    try {
      const { rows } = await db.query<{ request_id: string; n: number }>(
        "SELECT request_id, count(*)::int AS n FROM posts GROUP BY actor_id, request_id HAVING count(*) > 1",
      );
      expect(rows).toEqual([]);
      const { rows: stored } = await db.query<{ id: string; request_id: string }>("SELECT id, request_id FROM posts");
      const byKey = new Map(stored.map((r) => [r.request_id, r.id]));
      for (const [key, id] of result.created) expect(byKey.get(key)).toBe(id);
    } finally {
      await db.end();
    }
  }, 60_000);
});
